/**
 * Broken builds of the Raft core, for showing that the simulator's checkers and the figure tests
 * catch the classic Raft bugs. The production core in `src/raft/` has no switch for any of them:
 * a bug is a source edit applied to a temporary copy of the whole `src/raft/` folder (so its
 * relative imports still work), and the caller imports the copy's simulator or `RaftNode` from
 * there, the way the Jepsen harness makes its broken builds (`snapshotSource` in
 * scripts/jepsen/nodes.ts).
 *
 * ```ts
 * await using core = await brokenCore("commitPreviousTermByCount");
 * const result = core.simulator.runSimulation({ ...DEFAULT_OPTIONS, seed: 3 });
 * ```
 *
 * @module
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import type { SourceEdit } from "../../scripts/jepsen/nodes.ts";
import type * as RaftModule from "../../src/raft/raft.ts";
import type * as SimulatorModule from "../../src/raft/sim/simulator.ts";

/** One classic Raft bug as edits to files of `src/raft/` (`file` is relative to that folder). */
export interface CoreBug {
  /** What the broken core does wrong, and which rule that breaks. */
  readonly summary: string;
  readonly edits: readonly SourceEdit[];
}

/**
 * The bugs. Each `from` must occur exactly once in its file; keep the edits small, so that the
 * broken core differs from the real one only in the rule the bug breaks.
 */
export const CORE_BUGS = {
  voteBeforePersist: {
    summary: "a vote for another node is answered but never reported in the hard state of the " +
      "Ready, so it is not persisted and a restarted node can vote again in the same term " +
      "(§5.1 Figure 2)",
    // The vote a candidate gives itself is still persisted; only votes granted to others are lost.
    edits: [{
      file: "raft.ts",
      from: "return { term: this.#term, vote: this.#vote, commit: this.#log.committed };",
      to: "return { term: this.#term, vote: this.#vote === this.id ? this.id : NONE, " +
        "commit: this.#log.committed };",
    }],
  },
  commitPreviousTermByCount: {
    summary: "a leader commits an earlier term's entry by counting its replicas (what §5.4.2, " +
      "Figure 8, forbids)",
    edits: [{
      file: "raft.ts",
      from: "    if (this.#log.term(index) !== this.#term) return false;\n",
      to: "",
    }],
  },
  readIndexBeforeOwnTermCommit: {
    summary: "a new leader answers ReadIndex before it has committed an entry of its own term, " +
      "so it may not know the commit index yet (thesis §6.4 step 1)",
    edits: [{
      file: "raft.ts",
      from: "if (!this.#committedInOwnTerm()) {",
      to: "if (false) {",
    }],
  },
  noCheckQuorumStepDown: {
    summary: "a leader that hears from no quorum for an election timeout stays leader " +
      "(check-quorum, thesis §6.2)",
    // The quorum reading is still taken (it resets the followers' activity flags); only the
    // step-down is gone.
    edits: [{
      file: "raft.ts",
      from: "if (this.#cfg.checkQuorum && !this.#quorumActive()) {\n" +
        "        this.#becomeFollower(this.#term, NONE);\n" +
        "        return;\n" +
        "      }",
      to: "if (this.#cfg.checkQuorum) this.#quorumActive();",
    }],
  },
} satisfies Record<string, CoreBug>;

export type CoreBugName = keyof typeof CORE_BUGS;

/** Whether `name` is one of `CORE_BUGS`. */
export function isCoreBugName(name: string): name is CoreBugName {
  return Object.hasOwn(CORE_BUGS, name);
}

/** An edited copy of the core; disposing it deletes the copy. */
export interface EditedCore extends AsyncDisposable {
  /** The copy of `src/raft/` (under the repository's git-ignored `.tmp/`). */
  readonly path: string;
  /** The copy's `src/raft/sim/simulator.ts`: its `runSimulation` drives the copy's `RaftNode`. */
  readonly simulator: typeof SimulatorModule;
  /** The copy's `src/raft/raft.ts`. */
  readonly raft: typeof RaftModule;
}

/** A copy of the core with bugs in it. */
export interface BrokenCore extends EditedCore {
  readonly bugs: readonly CoreBugName[];
}

const SRC = fileURLToPath(new URL("../../src", import.meta.url));
const RAFT_SRC = `${SRC}/raft`;
/** Inside the repository (git-ignored), so the copy resolves imports through its deno.json. */
const SCRATCH = fileURLToPath(new URL("../../.tmp", import.meta.url));

/**
 * The core with the edits of every bug in `bugs`, made once per call: use it with `await using`,
 * so the copy is deleted afterwards.
 */
export async function brokenCore(...bugs: CoreBugName[]): Promise<BrokenCore> {
  if (bugs.length === 0) throw new Error("brokenCore needs at least one bug name");
  const core = await editedCore(bugs.flatMap((name) => CORE_BUGS[name].edits));
  return {
    bugs,
    path: core.path,
    simulator: core.simulator,
    raft: core.raft,
    [Symbol.asyncDispose]: () => core[Symbol.asyncDispose](),
  };
}

/**
 * Copies `src/raft/`, applies `edits` in order to the copy and imports the copy's simulator and
 * `RaftNode`. Throws, naming the file and the text, if an edit's `from` is not in the source
 * exactly once (the core changed under the edit: update the edit in `CORE_BUGS`); the copy is
 * deleted then too.
 */
export async function editedCore(edits: readonly SourceEdit[]): Promise<EditedCore> {
  await Deno.mkdir(SCRATCH, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: SCRATCH, prefix: "broken-core-" });
  const remove = () => Deno.remove(dir, { recursive: true });
  try {
    const path = `${dir}/raft`;
    await copyFolder(RAFT_SRC, path);
    // The core imports the base layer beside it (src/prng.ts; tests/architecture_test.ts keeps
    // it to that): copy those files too.
    for await (const entry of Deno.readDir(SRC)) {
      if (entry.isFile && entry.name.endsWith(".ts")) {
        await Deno.copyFile(`${SRC}/${entry.name}`, `${dir}/${entry.name}`);
      }
    }
    for (const edit of edits) await applyEdit(path, edit);
    const root = pathToFileURL(`${path}/`);
    const simulator: typeof SimulatorModule = await import(
      new URL("sim/simulator.ts", root).href
    );
    const raft: typeof RaftModule = await import(new URL("raft.ts", root).href);
    return { path, simulator, raft, [Symbol.asyncDispose]: remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

async function copyFolder(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const source = `${from}/${entry.name}`;
    const target = `${to}/${entry.name}`;
    if (entry.isDirectory) await copyFolder(source, target);
    else await Deno.copyFile(source, target);
  }
}

async function applyEdit(copy: string, edit: SourceEdit): Promise<void> {
  const path = `${copy}/${edit.file}`;
  const text = await Deno.readTextFile(path);
  const found = text.split(edit.from).length - 1;
  if (found !== 1) {
    throw new Error(
      `src/raft/${edit.file} contains the text the edit changes ${found} times, not once ` +
        `(update the edit in tests/raft/broken_core.ts): ${edit.from}`,
    );
  }
  await Deno.writeTextFile(path, text.replace(edit.from, () => edit.to));
}
