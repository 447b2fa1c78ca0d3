/**
 * The sequential model of one idempotency key's job, for the linearizability checker.
 *
 * A key names at most one live job at a time: `create` with the key makes one (201, a new id)
 * or returns the live one (200, replayed); `delete` frees the key. Operations by id (`get`
 * linearizable, `cancel`, `delete`) belong to the key whose create returned that id. The
 * scheduler moves a job on by itself (a one-off completes after its delivery), so the model
 * keeps only the phase a client can tell apart: `open` (pending, in progress, paused),
 * `finished` (completed, failed, missed: one-off jobs only, reached at any moment) and
 * `cancelled`.
 *
 * A create whose outcome is unknown makes a job whose id nobody saw (`"?"`); the first later
 * operation that shows that id (a replay, a get, cancel or delete answered as found) may bind it.
 *
 * @module
 */
import type { Model } from "./wgl.ts";

export type Phase = "open" | "finished" | "cancelled";

/** What a client asked. */
export type JobOpInput =
  | { f: "create"; recurring: boolean }
  | { f: "get"; id: string }
  | { f: "cancel"; id: string }
  | { f: "delete"; id: string };

/** What it was answered (undefined in the history when unknown). */
export type JobOpOutput =
  | { f: "create"; id: string; created: boolean }
  | { f: "get"; found: false }
  | { f: "get"; found: true; phase: Phase }
  | { f: "cancel"; code: 200 | 404 | 409 }
  | { f: "delete"; code: 200 | 404 };

/** The key's live job, if any. */
export interface KeyState {
  /** Its id, "?" when created by an operation whose answer was lost, null when none. */
  cur: string | null;
  phase: Phase;
  recurring: boolean;
}

const UNSEEN = "?";

/** The phase a job status shows. */
export function phaseOf(status: string): Phase {
  if (status === "cancelled") return "cancelled";
  if (status === "completed" || status === "failed" || status === "missed") return "finished";
  return "open";
}

/** `s` and every state the scheduler can move it to on its own. */
function spontaneous(s: KeyState): KeyState[] {
  if (s.cur !== null && !s.recurring && s.phase === "open") {
    return [s, { ...s, phase: "finished" }];
  }
  return [s];
}

/** The states in which `id` names the live job (binding an unseen id), and those where not. */
function byId(s: KeyState, id: string): { live: KeyState[]; other: KeyState[] } {
  if (s.cur === id) return { live: [s], other: [] };
  if (s.cur === UNSEEN) return { live: [{ ...s, cur: id }], other: [s] };
  return { live: [], other: [s] };
}

function stepOne(s: KeyState, input: JobOpInput, output: JobOpOutput | undefined): KeyState[] {
  if (output !== undefined && output.f !== input.f) return [];
  switch (input.f) {
    case "create": {
      const out = output as Extract<JobOpOutput, { f: "create" }> | undefined;
      if (s.cur === null) {
        if (out === undefined) return [{ cur: UNSEEN, phase: "open", recurring: input.recurring }];
        return out.created ? [{ cur: out.id, phase: "open", recurring: input.recurring }] : [];
      }
      if (out === undefined) return [s];
      if (out.created) return [];
      return byId(s, out.id).live;
    }
    case "get": {
      const out = output as Extract<JobOpOutput, { f: "get" }> | undefined;
      const { live, other } = byId(s, input.id);
      if (out === undefined) return [...live, ...other];
      if (!out.found) return other;
      return live.filter((l) => l.phase === out.phase);
    }
    case "cancel": {
      const out = output as Extract<JobOpOutput, { f: "cancel" }> | undefined;
      const { live, other } = byId(s, input.id);
      const next: KeyState[] = [];
      if (out === undefined || out.code === 404) next.push(...other);
      for (const l of live) {
        const code = l.phase === "open" ? 200 : 409;
        if (out !== undefined && out.code !== code) continue;
        next.push(code === 200 ? { ...l, phase: "cancelled" } : l);
      }
      return next;
    }
    case "delete": {
      const out = output as Extract<JobOpOutput, { f: "delete" }> | undefined;
      const { live, other } = byId(s, input.id);
      const next: KeyState[] = [];
      if (out === undefined || out.code === 404) next.push(...other);
      if (out === undefined || out.code === 200) {
        for (const l of live) next.push({ cur: null, phase: "open", recurring: l.recurring });
      }
      return next;
    }
  }
}

/** The model of one key's job; see the module comment. */
export const jobModel: Model<KeyState, JobOpInput, JobOpOutput> = {
  init: () => [{ cur: null, phase: "open", recurring: false }],
  step: (s, input, output) => spontaneous(s).flatMap((p) => stepOne(p, input, output)),
  key: (s) => s.cur === null ? "none" : `${s.cur}/${s.phase}/${s.recurring ? "r" : "o"}`,
};
