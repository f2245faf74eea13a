/**
 * SQLite errors (which are busy, which mean a failing disk, how they become LifelineErrors)
 * and waiting for another process's write lock without freezing this one.
 *
 * SQLite's own `busy_timeout` waits inside the (synchronous) better-sqlite3 call: the whole
 * event loop stops — no heartbeats, no reads from sockets — for as long as another node holds
 * the lock, up to the timeout. Its sleeps also grow quickly (1, 2, 5, 10 … 100 ms), so under
 * steady contention a waiter keeps waking up too late and can lose the race for hundreds of
 * milliseconds (measured with bench/store.ts, `sqlite-4p`: a worst case of 0.74 s).
 *
 * `BusyQueue` instead runs operations in call order; one refused with SQLITE_BUSY is retried
 * asynchronously — first on the next turns of the event loop (a competing transaction takes
 * tens of microseconds), then after 1, 2, 4, 8 ms (jittered) — until its deadline. Operations
 * called meanwhile wait behind it, so this process's operations still take effect in the
 * order they were called. With nothing queued an operation runs at once, synchronously, as a
 * plain better-sqlite3 call would.
 */
import { performance } from "node:perf_hooks";
import { LifelineError } from "../errors.ts";

/** SQLITE_BUSY and its extended codes: another connection holds the lock. */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

/** SQLite result codes that mean the file or the disk is in trouble, not the request. */
const DISK_ERRORS = /^SQLITE_(IOERR|FULL|CORRUPT|NOTADB|CANTOPEN|READONLY|PROTOCOL|NOLFS)/;

/** The file or the disk is in trouble (not the request): `healthy()` turns false. */
export function isDiskError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && DISK_ERRORS.test(code);
}

/** SQLite errors become LifelineErrors (LL_STORE_BUSY when the lock wait timed out, else
 *  LL_STORE_FAILED) with the original as `cause`. */
export function wrap(err: unknown): unknown {
  if (err instanceof LifelineError) return err;
  if (isBusy(err)) {
    return new LifelineError("LL_STORE_BUSY", "SQLite store: another process held the write lock too long", {
      cause: err,
    });
  }
  const code = (err as { code?: unknown }).code;
  const msg = err instanceof Error ? err.message : String(err);
  return new LifelineError(
    "LL_STORE_FAILED",
    `SQLite store: ${msg}${typeof code === "string" ? ` (${code})` : ""}`,
    {
      cause: err,
    },
  );
}

/** How long to wait before retry `attempt` (0-based). */
function pause(attempt: number): Promise<void> {
  if (attempt < 3) return new Promise((resolve) => setImmediate(resolve));
  const ms = Math.min(1 << (attempt - 3), 8) * (0.5 + Math.random());
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class BusyQueue {
  private pending = 0;
  private tail: Promise<unknown> = Promise.resolve();

  /** @param timeoutMs how long one operation may wait for the lock before its busy error is thrown. */
  constructor(private readonly timeoutMs: number) {}

  /** Operations queued or waiting for the lock. */
  get size(): number {
    return this.pending;
  }

  /**
   * Runs `fn` now when nothing is queued, otherwise after everything queued before it;
   * retries it while it throws a busy error, until the deadline.
   */
  run<T>(fn: () => T): Promise<T> {
    const deadline = performance.now() + this.timeoutMs;
    if (this.pending === 0) {
      try {
        return Promise.resolve(fn());
      } catch (err) {
        if (!isBusy(err)) return Promise.reject(err);
      }
    }
    this.pending++;
    const done = this.tail
      .then(() => this.retry(fn, deadline))
      .finally(() => {
        this.pending--;
      });
    this.tail = done.catch(() => {});
    return done;
  }

  /** Resolves once every operation queued so far has finished. */
  async idle(): Promise<void> {
    while (this.pending > 0) await this.tail;
  }

  private async retry<T>(fn: () => T, deadline: number): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw err;
        await pause(attempt);
      }
    }
  }
}
