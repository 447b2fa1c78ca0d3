/**
 * The broken cores are what the bug tests say they are: each bug's edits apply to today's core
 * and change its source, a stale edit fails loudly, and no copy outlives its use.
 */
import { assert } from "./assert.ts";
import { brokenCore, CORE_BUGS, type CoreBugName, editedCore } from "./broken_core.ts";

const REAL_RAFT = new URL("../../src/raft/raft.ts", import.meta.url);

Deno.test("each bug's edits apply once to today's core, and the copy is deleted after use", async () => {
  const real = await Deno.readTextFile(REAL_RAFT);
  for (const name of Object.keys(CORE_BUGS) as CoreBugName[]) {
    let path: string;
    {
      await using core = await brokenCore(name);
      path = core.path;
      const edited = await Deno.readTextFile(`${path}/raft.ts`);
      assert(edited !== real, `${name} leaves raft.ts as it is`);
      for (const edit of CORE_BUGS[name].edits) {
        assert(!edited.includes(edit.from), `${name}: the copy still has the text it replaces`);
      }
      assert(core.raft.RaftNode !== undefined && core.simulator.runSimulation !== undefined);
    }
    const gone = await Deno.stat(path).then(() => false, (e) => e instanceof Deno.errors.NotFound);
    assert(gone, `${path} is still there after dispose`);
  }
});

Deno.test("an edit whose text is not in the core fails naming the file and the text", async () => {
  const from = "this text is not in the Raft core";
  const error = await editedCore([{ file: "raft.ts", from, to: "" }]).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert(error instanceof Error, "the stale edit was applied");
  assert(error.message.includes("src/raft/raft.ts"), error.message);
  assert(error.message.includes(from), error.message);
});

Deno.test("an edit whose text occurs more than once is refused as ambiguous", async () => {
  const error = await editedCore([{ file: "raft.ts", from: "this.", to: "" }]).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert(error instanceof Error, "the ambiguous edit was applied");
  const times = /contains the text the edit changes (\d+) times/.exec(error.message)?.[1];
  assert(Number(times) > 1, error.message);
});
