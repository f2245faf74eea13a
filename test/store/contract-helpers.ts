/**
 * Helpers shared by the store contract suites (test/store/contract*.ts): a per-test store
 * fixture, session records, bytes, and a waiting helper that polls instead of sleeping.
 */
import { afterEach, beforeEach, expect } from "vitest";
import type {
  Change,
  CommitRequest,
  CommitResult,
  Effect,
  SessionRecord,
  Store,
} from "../../src/store/types.ts";

/** Makes a fresh, empty store; `cleanup` closes it (it may already be closed) and removes its files. */
export type MakeStore = () => Promise<{ store: Store; cleanup(): Promise<void> }>;

/** A fresh store for every test of the enclosing `describe`. */
export function useStore(make: MakeStore): { readonly store: Store } {
  let current: Awaited<ReturnType<MakeStore>> | undefined;
  beforeEach(async () => {
    current = await make();
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  return {
    get store(): Store {
      if (!current) throw new Error("no store outside a test");
      return current.store;
    },
  };
}

/** A session record as a node creates it: not held by anyone yet. */
export function record(id: string, over: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id,
    tokenHash: "ab".repeat(32),
    createdAt: 1_700_000_000_000,
    lastClientSeq: 0,
    lastPushSeq: 0,
    ackedPushSeq: 0,
    ttl: 30_000,
    expiresAt: null,
    owner: null,
    epoch: 0,
    ...over,
  };
}

/** Creates a session and claims it for node `n1`; returns the claim's epoch. */
export async function held(store: Store, id: string, over: Partial<SessionRecord> = {}): Promise<number> {
  await store.createSession(record(id, over));
  const claimed = await store.claim(id, "n1", Date.now());
  if (!claimed) throw new Error(`cannot claim ${id}`);
  return claimed.epoch;
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);

export const push = (session: string, payload: string): Effect => ({
  kind: "push",
  session,
  payload: bytes(payload),
});
export const publish = (topic: string, payload: string): Effect => ({
  kind: "publish",
  topic,
  payload: bytes(payload),
});

/** Commits message `seq` with reply `r<seq>`. */
export function commit(
  store: Store,
  session: string,
  epoch: number,
  seq: number,
  effects: Effect[] = [],
  reply: Uint8Array = bytes(`r${seq}`),
): Promise<CommitResult> {
  const req: CommitRequest = { session, epoch, seq, reply, effects };
  return store.commit(req);
}

/** Commits and asserts it was committed; returns the result narrowed. */
export async function committed(
  store: Store,
  session: string,
  epoch: number,
  seq: number,
  effects: Effect[] = [],
): Promise<Extract<CommitResult, { status: "committed" }>> {
  const r = await commit(store, session, epoch, seq, effects);
  expect(r.status).toBe("committed");
  return r as Extract<CommitResult, { status: "committed" }>;
}

/** Polls `cond` every 10 ms until it holds; fails after `timeoutMs` (generous: loaded CI machines). */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Records every change a store reports. */
export function recordChanges(store: Store): { changes: Change[]; stop: () => void } {
  const changes: Change[] = [];
  const stop = store.watch((c) => changes.push(c));
  return { changes, stop };
}

/** Sessions named in the recorded `sessions` changes. */
export const sessionsIn = (changes: Change[]): string[] =>
  changes.flatMap((c) => (c.kind === "sessions" ? c.ids : []));
/** Topics named in the recorded `topics` changes. */
export const topicsIn = (changes: Change[]): string[] =>
  changes.flatMap((c) => (c.kind === "topics" ? c.topics : []));

/** Lets pending microtasks and a timer tick run. */
export const settle = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));
