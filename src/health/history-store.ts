/**
 * `HistoryStore`: lasting history. Every check result and state transition the engine
 * records is also written to one SQLite file (better-sqlite3), so that a restarted monitor
 * shows the history and trends it had (see `HealthEngine`'s `history` option).
 *
 * - WAL journal, `synchronous = NORMAL`: a commit reaches the WAL without an fsync; a
 *   crashed monitor loses nothing the OS had, an OS crash may lose the last commits, never
 *   the file. History is not worth an fsync per batch.
 * - Writes are batched: `recordResult` / `recordTransition` only buffer in memory; the buffer
 *   is written in one transaction `flushInterval` (1 s) after its first row, when it reaches
 *   `MAX_BATCH` rows, and on `flush()` / `close()`. Hundreds of targets checked every second
 *   cost one small transaction a second. A crash loses at most that second.
 * - Nothing ever throws into the engine once the file is open: a failed flush (another
 *   process holding the lock, a full disk) is logged, the rows stay buffered (at most
 *   `MAX_PENDING`, oldest dropped first) and the next flush tries again.
 * - Retention: `prune(now)` deletes results and transitions older than `retention`, and the
 *   results of a target beyond its newest `maxResultsPerTarget`. It runs when the file is
 *   opened and then after a flush at most every `pruneInterval` (10 min). The history of a
 *   target removed from the configuration is kept (re-added, it gets its history back) until
 *   retention removes it; its counters row goes once the target has written nothing for a
 *   whole retention period.
 * - Counters: per target, the totals `TargetHistory.counters()` reports (results, failures)
 *   and the failures by error kind, are kept in a small `history_targets` table updated with
 *   each batch — not recomputed from rows, since those are pruned: the totals cover the whole
 *   life of the file ("since the monitor started", across restarts), as before.
 *
 * Tables are prefixed `history_` so the file may be shared with other Lifeline data.
 */
import Database from "better-sqlite3";
import { LifelineError } from "../errors.ts";
import { type Clock, systemClock, type Timer } from "../util/clock.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { type HistoryCounters, isCounted, type SavedHistory } from "./history.ts";
import { ERROR_KINDS, type ErrorKind } from "./kinds.ts";
import type { CheckResult, CheckStatus, Evidence, TargetState, Transition } from "./types.ts";

/** Where lasting history goes and how long it stays. Every duration in milliseconds. */
export interface HistoryOptions {
  /** The SQLite file (created if missing), or `:memory:` (gone at close; for tests). */
  path: string;
  /**
   * How long results and transitions are kept, ms. Default 7 days (`DEFAULT_RETENTION`).
   * Longer keeps older trends (MTTR/MTBF, flaps) across restarts and costs disk: a result row
   * is about 100–150 bytes, so a target checked every 2 s writes about 5 MB a day of results
   * (bounded by `maxResultsPerTarget`); transitions are few. Restoring reads only the newest
   * `historyResults` / `historyTransitions` rows per target, so a long retention does not
   * slow a restart. Trends look back at most 24 h; a retention below that shortens them.
   */
  retention?: number;
  /**
   * Most results kept per target, whatever their age. Default 20 000 (at one check every 2 s,
   * about 11 h; about 3 MB per target). 0: no limit, only `retention`. Results beyond the
   * `historyResults` newest are not restored; they are kept for whoever reads the file.
   */
  maxResultsPerTarget?: number;
  /** Longest time a recorded row waits in memory before it is written, ms. Default 1000. */
  flushInterval?: number;
  /** Least time between two prunes, ms. Default 600 000 (10 min). Each prune deletes what
   *  was written during about that long: longer means fewer, larger deletions. */
  pruneInterval?: number;
}

export const DEFAULT_RETENTION = 7 * 24 * 3_600_000;
export const DEFAULT_MAX_RESULTS_PER_TARGET = 20_000;
export const DEFAULT_FLUSH_INTERVAL = 1000;
export const DEFAULT_PRUNE_INTERVAL = 600_000;
/** A buffer this large is written at once, without waiting for the interval. */
const MAX_BATCH = 5000;
/** Rows kept in memory while writes fail; beyond it the oldest are dropped. */
const MAX_PENDING = 100_000;

export interface HistoryStoreDeps {
  /** `wall()` stamps and prunes; `timeout` and `now()` drive flushes. Default: the system clock. */
  clock?: Clock;
  logger?: Logger;
}

/** Rows deleted by one `prune`. */
export interface PruneReport {
  results: number;
  transitions: number;
  /** Counters rows of targets that wrote nothing for a whole retention period. */
  targets: number;
}

const MIGRATIONS: readonly string[] = [
  // 1: the first schema.
  `
  CREATE TABLE history_results (
    id         INTEGER PRIMARY KEY,   -- insertion order: breaks ties of equal 'at'
    target     TEXT NOT NULL,
    check_name TEXT NOT NULL,
    at         REAL NOT NULL,         -- wall ms since the epoch
    status     TEXT NOT NULL,
    latency    REAL NOT NULL,
    timeout    REAL NOT NULL,
    kind       TEXT,
    errno      TEXT,
    message    TEXT NOT NULL,
    flags      INTEGER NOT NULL,      -- FLAGS bits
    spoiled    TEXT,
    detail     TEXT                   -- JSON
  );
  CREATE INDEX history_results_target_at ON history_results (target, at);

  CREATE TABLE history_transitions (
    id       INTEGER PRIMARY KEY,
    target   TEXT NOT NULL,
    at       REAL NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    reason   TEXT NOT NULL,
    kind     TEXT,
    errno    TEXT,
    evidence TEXT NOT NULL            -- JSON
  );
  CREATE INDEX history_transitions_target_at ON history_transitions (target, at);

  -- Totals per target over the life of the file (see the module comment).
  CREATE TABLE history_targets (
    target   TEXT PRIMARY KEY,
    results  INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    errors   TEXT NOT NULL,           -- JSON: { kind: count }
    last_at  REAL NOT NULL            -- wall ms of the last batch that touched the target
  );
  `,
];

const SCHEMA_VERSION = MIGRATIONS.length;

/** Boolean fields of a CheckResult, one bit each in `flags`. */
const FLAGS = ["local", "conclusive", "provisional", "late", "passive", "selfTimed"] as const;

interface ResultRow {
  target: string;
  check_name: string;
  at: number;
  status: string;
  latency: number;
  timeout: number;
  kind: string | null;
  errno: string | null;
  message: string;
  flags: number;
  spoiled: string | null;
  detail: string | null;
}

interface TransitionRow {
  target: string;
  at: number;
  from_state: string;
  to_state: string;
  reason: string;
  kind: string | null;
  errno: string | null;
  evidence: string;
}

interface TargetRow {
  target: string;
  results: number;
  failures: number;
  errors: string;
  last_at: number;
}

function toResultRow(r: CheckResult): ResultRow {
  let flags = 0;
  FLAGS.forEach((f, i) => {
    if (r[f]) flags |= 1 << i;
  });
  return {
    target: r.target,
    check_name: r.check,
    at: r.at,
    status: r.status,
    latency: r.latency,
    timeout: r.timeout,
    kind: r.kind ?? null,
    errno: r.errno ?? null,
    message: r.message,
    flags,
    spoiled: r.spoiled ?? null,
    detail: r.detail === undefined ? null : JSON.stringify(r.detail),
  };
}

function fromResultRow(row: ResultRow): CheckResult {
  const r: CheckResult = {
    target: row.target,
    check: row.check_name,
    at: row.at,
    status: row.status as CheckStatus,
    latency: row.latency,
    timeout: row.timeout,
    message: row.message,
  };
  if (row.kind !== null) r.kind = row.kind as ErrorKind;
  if (row.errno !== null) r.errno = row.errno;
  FLAGS.forEach((f, i) => {
    if (row.flags & (1 << i)) r[f] = true;
  });
  if (row.spoiled !== null) r.spoiled = row.spoiled;
  if (row.detail !== null) r.detail = JSON.parse(row.detail) as Record<string, unknown>;
  return r;
}

function fromTransitionRow(row: TransitionRow): Transition {
  const t: Transition = {
    target: row.target,
    from: row.from_state as TargetState,
    to: row.to_state as TargetState,
    at: row.at,
    reason: row.reason,
    evidence: JSON.parse(row.evidence) as Evidence,
  };
  if (row.kind !== null) t.kind = row.kind as ErrorKind;
  if (row.errno !== null) t.errno = row.errno;
  return t;
}

function migrate(db: Database.Database): void {
  const run = db.transaction(() => {
    db.exec(
      "CREATE TABLE IF NOT EXISTS history_schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    );
    const found =
      (db.prepare("SELECT coalesce(max(version), 0) FROM history_schema_version").pluck().get() as number) ??
      0;
    if (found > SCHEMA_VERSION) {
      throw new LifelineError(
        "LL_HISTORY_SCHEMA",
        `the history file's schema is version ${found}, newer than this Lifeline understands (${SCHEMA_VERSION}); upgrade Lifeline`,
      );
    }
    const record = db.prepare("INSERT INTO history_schema_version (version, applied_at) VALUES (?, ?)");
    for (let v = found + 1; v <= SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v - 1]!);
      record.run(v, Date.now());
    }
  });
  run.immediate();
}

/** Opens the file in WAL mode and brings its schema up to date. */
function open(path: string): { db: Database.Database; s: ReturnType<typeof statements> } {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { timeout: 5000 });
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal" && path !== ":memory:")
      throw new Error(`the file system refused WAL mode (journal_mode is ${String(mode)})`);
    db.pragma("synchronous = NORMAL");
    migrate(db);
    const s = statements(db);
    // Opening may wait for another process creating the schema; later writes never block
    // the event loop: a busy flush is retried at the next one.
    db.pragma("busy_timeout = 0");
    return { db, s };
  } catch (err) {
    db?.close();
    if (err instanceof LifelineError) throw err;
    throw new LifelineError(
      "LL_HISTORY_OPEN",
      `cannot open history file ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

function statements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertResult: p(`INSERT INTO history_results (target, check_name, at, status, latency, timeout, kind,
      errno, message, flags, spoiled, detail) VALUES (@target, @check_name, @at, @status, @latency, @timeout,
      @kind, @errno, @message, @flags, @spoiled, @detail)`),
    insertTransition: p(`INSERT INTO history_transitions (target, at, from_state, to_state, reason, kind,
      errno, evidence) VALUES (@target, @at, @from_state, @to_state, @reason, @kind, @errno, @evidence)`),
    getTarget: p("SELECT * FROM history_targets WHERE target = ?"),
    upsertTarget: p(`INSERT INTO history_targets (target, results, failures, errors, last_at)
      VALUES (@target, @results, @failures, @errors, @last_at)
      ON CONFLICT (target) DO UPDATE SET results = results + excluded.results,
        failures = failures + excluded.failures, errors = excluded.errors, last_at = excluded.last_at`),
    // Newest first (LIMIT keeps the newest), reversed by the caller.
    results: p(`SELECT target, check_name, at, status, latency, timeout, kind, errno, message, flags, spoiled,
      detail FROM history_results WHERE target = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?`),
    transitions: p(`SELECT target, at, from_state, to_state, reason, kind, errno, evidence
      FROM history_transitions WHERE target = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?`),
    targets: p(`SELECT target FROM history_targets UNION SELECT DISTINCT target FROM history_transitions
      ORDER BY 1`).pluck(),
    pruneResults: p("DELETE FROM history_results WHERE target = ? AND at < ?"),
    capAt: p("SELECT at FROM history_results WHERE target = ? ORDER BY at DESC LIMIT 1 OFFSET ?").pluck(),
    pruneTransitions: p("DELETE FROM history_transitions WHERE target = ? AND at < ?"),
    pruneTargets: p("DELETE FROM history_targets WHERE last_at < ?"),
  };
}

/** Lasting history in one SQLite file; see the module comment. */
export class HistoryStore {
  readonly path: string;
  /** ms. */
  readonly retention: number;
  readonly maxResultsPerTarget: number;
  private readonly flushInterval: number;
  private readonly pruneInterval: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly db: Database.Database;
  private readonly s: ReturnType<typeof statements>;
  private pendingResults: CheckResult[] = [];
  private pendingTransitions: Transition[] = [];
  private timer: Timer | undefined;
  private lastPrune = 0;
  private failing = false;
  private isClosed = false;
  /** Rows dropped because writes kept failing. */
  dropped = 0;

  constructor(options: HistoryOptions, deps: HistoryStoreDeps = {}) {
    this.path = options.path;
    this.retention = options.retention ?? DEFAULT_RETENTION;
    this.maxResultsPerTarget = options.maxResultsPerTarget ?? DEFAULT_MAX_RESULTS_PER_TARGET;
    this.flushInterval = options.flushInterval ?? DEFAULT_FLUSH_INTERVAL;
    this.pruneInterval = options.pruneInterval ?? DEFAULT_PRUNE_INTERVAL;
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? silentLogger;
    if (!(this.retention > 0)) throw new RangeError("history retention must be a positive duration");
    if (!Number.isInteger(this.maxResultsPerTarget) || this.maxResultsPerTarget < 0)
      throw new RangeError("maxResultsPerTarget must be a non-negative integer");
    ({ db: this.db, s: this.s } = open(this.path));
    this.prune();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Rows waiting in memory. */
  get pending(): number {
    return this.pendingResults.length + this.pendingTransitions.length;
  }

  /** Buffers a result; it is written with the next batch. */
  recordResult(result: CheckResult): void {
    if (this.isClosed) return;
    this.pendingResults.push(result);
    this.buffered();
  }

  /** Buffers a transition; it is written with the next batch. */
  recordTransition(transition: Transition): void {
    if (this.isClosed) return;
    this.pendingTransitions.push(transition);
    this.buffered();
  }

  /** Writes every buffered row in one transaction. False if the write failed (rows kept). */
  flush(): boolean {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.isClosed) return true;
    if (this.pending > 0 && !this.write()) {
      this.schedule();
      return false;
    }
    if (this.clock.now() - this.lastPrune >= this.pruneInterval) this.prune();
    return true;
  }

  /**
   * The stored history of a target from `since` (wall ms, inclusive), oldest first, at most
   * the newest `limits.results` results and `limits.transitions` transitions (default: all).
   * Rows of the target still buffered are flushed first, so they are included.
   */
  load(
    target: string,
    since: number,
    limits: { results?: number; transitions?: number } = {},
  ): { results: CheckResult[]; transitions: Transition[] } {
    if (this.isClosed) throw new LifelineError("LL_HISTORY_CLOSED", "the history store is closed");
    if (this.holds(target)) this.flush();
    const results = (this.s.results.all(target, since, limits.results ?? -1) as ResultRow[])
      .reverse()
      .map(fromResultRow);
    const transitions = (this.s.transitions.all(target, since, limits.transitions ?? -1) as TransitionRow[])
      .reverse()
      .map(fromTransitionRow);
    return { results, transitions };
  }

  /** The totals of a target over the life of the file; undefined if it has none. */
  counters(target: string): HistoryCounters | undefined {
    if (this.isClosed) throw new LifelineError("LL_HISTORY_CLOSED", "the history store is closed");
    if (this.holds(target)) this.flush();
    const row = this.s.getTarget.get(target) as TargetRow | undefined;
    if (!row) return undefined;
    return { results: row.results, failures: row.failures, errors: parseErrors(row.errors) };
  }

  /** What a target added now gets back: its history within retention, and its counters. */
  restore(target: string, limits: { results: number; transitions: number }): SavedHistory {
    const saved: SavedHistory = this.load(target, this.clock.wall() - this.retention, limits);
    const counters = this.counters(target);
    if (counters) saved.counters = counters;
    return saved;
  }

  /** Targets with stored history, sorted. */
  targets(): string[] {
    if (this.isClosed) return [];
    this.flush();
    return this.s.targets.all() as string[];
  }

  /**
   * Deletes what is older than `now - retention` (wall ms) and each target's results beyond
   * the newest `maxResultsPerTarget`. One transaction per target, so another process waits
   * for the write lock at most as long as one target takes. Buffered rows are written first.
   */
  prune(now = this.clock.wall()): PruneReport {
    const report: PruneReport = { results: 0, transitions: 0, targets: 0 };
    if (this.isClosed) return report;
    this.lastPrune = this.clock.now();
    if (this.pending > 0 && !this.write()) return report;
    const cutoff = now - this.retention;
    try {
      for (const target of this.s.targets.all() as string[]) {
        this.db.transaction(() => {
          report.results += this.s.pruneResults.run(target, cutoff).changes;
          report.transitions += this.s.pruneTransitions.run(target, cutoff).changes;
          if (this.maxResultsPerTarget > 0) {
            // The `at` of the newest row to keep; rows sharing it are all kept (a few above
            // the cap at most).
            const at = this.s.capAt.get(target, this.maxResultsPerTarget - 1) as number | undefined;
            if (at !== undefined) report.results += this.s.pruneResults.run(target, at).changes;
          }
        })();
      }
      report.targets = this.s.pruneTargets.run(cutoff).changes;
    } catch (err) {
      this.logger.warn(
        { event: "history-prune-failed", path: this.path, err: (err as Error).message },
        `history: pruning ${this.path} failed; will retry in ${this.pruneInterval} ms`,
      );
    }
    return report;
  }

  /** Writes what is buffered and closes the file. Later records are ignored. */
  close(): void {
    if (this.isClosed) return;
    this.timer?.cancel();
    this.timer = undefined;
    if (this.pending > 0 && !this.write()) {
      this.logger.error(
        { event: "history-lost", path: this.path, rows: this.pending },
        `history: ${this.pending} row(s) could not be written to ${this.path} before closing`,
      );
    }
    this.isClosed = true;
    this.pendingResults = [];
    this.pendingTransitions = [];
    this.db.close();
  }

  /** Whether rows of `target` wait in the buffer. */
  private holds(target: string): boolean {
    return (
      this.pendingResults.some((r) => r.target === target) ||
      this.pendingTransitions.some((t) => t.target === target)
    );
  }

  private buffered(): void {
    if (this.pending >= MAX_BATCH && !this.failing) this.flush();
    else this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.isClosed) return;
    this.timer = this.clock.timeout(this.flushInterval, () => {
      this.timer = undefined;
      this.flush();
    });
  }

  /** One transaction for the whole buffer; on failure the rows stay (bounded). */
  private write(): boolean {
    const results = this.pendingResults;
    const transitions = this.pendingTransitions;
    try {
      this.db.transaction(() => {
        const touched = new Map<
          string,
          { results: number; failures: number; errors: Map<ErrorKind, number> }
        >();
        const touch = (target: string) => {
          let c = touched.get(target);
          if (!c) {
            c = { results: 0, failures: 0, errors: new Map() };
            touched.set(target, c);
          }
          return c;
        };
        for (const r of results) {
          this.s.insertResult.run(toResultRow(r));
          const c = touch(r.target);
          if (!isCounted(r)) continue;
          c.results++;
          if (r.status === "fail") {
            c.failures++;
            if (r.kind) c.errors.set(r.kind, (c.errors.get(r.kind) ?? 0) + 1);
          }
        }
        for (const t of transitions) {
          this.s.insertTransition.run({
            target: t.target,
            at: t.at,
            from_state: t.from,
            to_state: t.to,
            reason: t.reason,
            kind: t.kind ?? null,
            errno: t.errno ?? null,
            evidence: JSON.stringify(t.evidence ?? {}),
          });
          touch(t.target);
        }
        const now = this.clock.wall();
        for (const [target, c] of touched) {
          const row = this.s.getTarget.get(target) as TargetRow | undefined;
          const errors = row ? parseErrors(row.errors) : {};
          for (const [k, n] of c.errors) errors[k] = (errors[k] ?? 0) + n;
          this.s.upsertTarget.run({
            target,
            results: c.results,
            failures: c.failures,
            errors: JSON.stringify(errors),
            last_at: now,
          });
        }
      })();
    } catch (err) {
      if (!this.failing) {
        this.logger.warn(
          { event: "history-write-failed", path: this.path, err: (err as Error).message },
          `history: writing to ${this.path} failed; rows are kept in memory and retried`,
        );
      }
      this.failing = true;
      const excess = this.pending - MAX_PENDING;
      if (excess > 0) {
        // Drop the oldest results first: transitions are few and carry the trends.
        const fromResults = Math.min(excess, this.pendingResults.length);
        this.pendingResults.splice(0, fromResults);
        this.pendingTransitions.splice(0, excess - fromResults);
        this.dropped += excess;
      }
      return false;
    }
    if (this.failing) {
      this.logger.info({ event: "history-write-resumed", path: this.path }, `history: writing resumed`);
      this.failing = false;
    }
    this.pendingResults = [];
    this.pendingTransitions = [];
    return true;
  }
}

function parseErrors(json: string): Partial<Record<ErrorKind, number>> {
  const parsed = JSON.parse(json) as Record<string, number>;
  const out: Partial<Record<ErrorKind, number>> = {};
  for (const k of ERROR_KINDS) if (typeof parsed[k] === "number") out[k] = parsed[k];
  return out;
}
