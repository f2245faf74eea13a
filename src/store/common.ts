/**
 * Pieces every store implementation shares: the rules of `claim`/`sweep` expiry, effect
 * validation (done before a transaction starts, so a malformed effect can never leave half a
 * commit behind), and the `watch` listener set.
 */
import { LifelineError } from "../errors.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import type { Change, CommitRequest, Effect, SessionRecord } from "./types.ts";

/** Options every store accepts. */
export interface StoreBaseOptions {
  /** Where errors thrown by `watch` listeners are logged (they never reach the store's caller). */
  logger?: Logger;
}

/** A session expired before `now`: it may be swept and can no longer be claimed. */
export function isExpired(record: Pick<SessionRecord, "expiresAt">, now: number): boolean {
  return record.expiresAt !== null && record.expiresAt < now;
}

function invalid(message: string): LifelineError {
  return new LifelineError("LL_STORE_INVALID", message);
}

function checkName(what: string, value: unknown): void {
  if (typeof value !== "string" || value.length === 0) throw invalid(`${what} must be a non-empty string`);
}

function checkBytes(what: string, value: unknown): void {
  if (!(value instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
}

function checkSeq(what: string, value: unknown): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(`${what} must be a non-negative integer`);
  }
}

/** Validates one effect; throws LL_STORE_INVALID naming the first bad field. */
export function checkEffect(effect: Effect, index: number): void {
  const at = `effects[${index}]`;
  switch (effect?.kind) {
    case "push":
      checkName(`${at}.session`, effect.session);
      checkBytes(`${at}.payload`, effect.payload);
      return;
    case "publish":
      checkName(`${at}.topic`, effect.topic);
      checkBytes(`${at}.payload`, effect.payload);
      return;
    case "subscribe":
      checkName(`${at}.session`, effect.session);
      checkName(`${at}.topic`, effect.topic);
      if (effect.after !== "end") checkSeq(`${at}.after`, effect.after);
      return;
    case "unsubscribe":
      checkName(`${at}.session`, effect.session);
      checkName(`${at}.topic`, effect.topic);
      return;
    default:
      throw invalid(`${at}.kind must be push, publish, subscribe or unsubscribe`);
  }
}

/** Validates a whole commit request before anything is written. */
export function checkCommit(request: CommitRequest): void {
  checkName("session", request.session);
  checkSeq("epoch", request.epoch);
  checkSeq("seq", request.seq);
  checkBytes("reply", request.reply);
  if (!Array.isArray(request.effects)) throw invalid("effects must be an array");
  request.effects.forEach(checkEffect);
}

/** Validates a record given to `createSession`. */
export function checkRecord(record: SessionRecord): void {
  checkName("id", record.id);
  if (typeof record.tokenHash !== "string") throw invalid("tokenHash must be a string");
  for (const k of ["createdAt", "lastClientSeq", "lastPushSeq", "ackedPushSeq", "ttl", "epoch"] as const) {
    checkSeq(k, record[k]);
  }
  if (record.expiresAt !== null) checkSeq("expiresAt", record.expiresAt);
  if (record.owner !== null && typeof record.owner !== "string")
    throw invalid("owner must be a string or null");
}

/** What one commit or deliver changed, for `watch` listeners. */
export interface Touched {
  sessions: Set<string>;
  topics: Set<string>;
}

/**
 * The listeners of `watch`. `notify` runs them in a microtask, after the write that caused
 * it has committed and before any timer fires; a listener that throws is logged and does not
 * keep the others from running.
 */
export class Watchers {
  private readonly listeners = new Set<(change: Change) => void>();

  constructor(private readonly logger: Logger = silentLogger) {}

  get size(): number {
    return this.listeners.size;
  }

  /** Adds a listener; returns the function that removes it. */
  add(listener: (change: Change) => void): () => void {
    // A wrapper, so the same function watched twice is called twice and unwatched once.
    const wrapped = (change: Change) => listener(change);
    this.listeners.add(wrapped);
    return () => {
      this.listeners.delete(wrapped);
    };
  }

  clear(): void {
    this.listeners.clear();
  }

  /** Tells listeners about the sessions that got pushes and the topics that got entries. */
  touched(t: Touched): void {
    if (this.listeners.size === 0) return;
    if (t.sessions.size > 0) this.notify({ kind: "sessions", ids: [...t.sessions] });
    if (t.topics.size > 0) this.notify({ kind: "topics", topics: [...t.topics] });
  }

  notify(change: Change): void {
    if (this.listeners.size === 0) return;
    queueMicrotask(() => {
      for (const listener of [...this.listeners]) {
        if (!this.listeners.has(listener)) continue; // removed by an earlier listener
        try {
          listener(change);
        } catch (err) {
          this.logger.error({ event: "store-listener-error", err }, "a store watch listener threw");
        }
      }
    });
  }
}
