/**
 * `SqliteStore`: the session store in one SQLite file (better-sqlite3), shared by every node
 * on the machine. Each node process opens its own connection to the same file.
 *
 * - WAL journal: readers never block the writer nor the writer the readers; writers take
 *   turns on the file's write lock. A write that finds the lock taken by another process
 *   waits for it up to `busyTimeoutMs` (default 5 s) — asynchronously, through BusyQueue
 *   (sqlite-queue.ts), so the event loop keeps serving heartbeats and sockets meanwhile.
 *   SQLite's own `busy_timeout` (which would block the event loop) is only used while
 *   opening, when several processes may race to create the schema.
 * - Operations of one SqliteStore take effect in the order they were called.
 * - Every read-modify-write (`commit`, `deliver`, `claim`, `ackPushes`, `sweep`...) runs in a
 *   BEGIN IMMEDIATE transaction: the write lock is taken before the first read, so the
 *   fencing epoch and the sequence checked are the ones the transaction writes over, and no
 *   transaction ever has to upgrade a read lock (the classic SQLITE_BUSY deadlock).
 * - `watch`: this connection's own commits notify listeners directly (after the commit, in a
 *   microtask, as MemoryStore does); other processes' commits are noticed by polling
 *   `PRAGMA data_version` on an unref()'d timer, reported as `{ kind: "any" }`.
 */
import Database from "better-sqlite3";
import { LifelineError } from "../errors.ts";
import { checkCommit, checkRecord, type StoreBaseOptions, type Touched, Watchers } from "./common.ts";
import { encodeDelivery } from "./delivery.ts";
import { BusyQueue, isDiskError, wrap } from "./sqlite-queue.ts";
import { type EntryRow, migrate, type SessionRow, statements, toBuffer, toRecord } from "./sqlite-schema.ts";
import {
  type Change,
  type CommitRequest,
  type CommitResult,
  OWNER_LEASE,
  type PushRecord,
  REPLY_WINDOW,
  type SessionRecord,
  type Store,
  type Subscription,
  type TopicEntry,
} from "./types.ts";

export interface SqliteStoreOptions extends StoreBaseOptions {
  /** How long an operation waits for another connection's write lock before failing with
   *  LL_STORE_BUSY, ms. Default 5000. The wait does not block the event loop. */
  busyTimeoutMs?: number;
  /** How often `watch` polls `PRAGMA data_version` for other processes' commits, ms. Default 25. */
  pollIntervalMs?: number;
}

export class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly description: string;
  /** The file (or `:memory:`). */
  readonly path: string;

  private readonly db: Database.Database;
  private readonly s: ReturnType<typeof statements>;
  /** better-sqlite3's transaction wrapper, made once: `.immediate(fn)` runs fn in BEGIN IMMEDIATE. */
  private readonly txRunner: Database.Transaction<(fn: () => unknown) => unknown>;
  private readonly watchers: Watchers;
  private readonly pollMs: number;
  private poller: NodeJS.Timeout | undefined;
  private lastVersion = 0;
  private diskError: unknown;
  private readonly queue: BusyQueue;
  private closing = false;

  constructor(path: string, opts: SqliteStoreOptions = {}) {
    this.path = path;
    const busy = opts.busyTimeoutMs ?? 5000;
    this.pollMs = opts.pollIntervalMs ?? 25;
    this.watchers = new Watchers(opts.logger);
    this.queue = new BusyQueue(busy);
    try {
      this.db = new Database(path, { timeout: busy });
    } catch (err) {
      throw new LifelineError(
        "LL_STORE_OPEN",
        `cannot open SQLite store ${path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    try {
      this.db.pragma(`busy_timeout = ${busy}`);
      const mode = this.db.pragma("journal_mode = WAL", { simple: true });
      if (mode !== "wal" && path !== ":memory:") {
        throw new Error(`the file system refused WAL mode (journal_mode is ${String(mode)})`);
      }
      // NORMAL in WAL mode: a commit is written to the WAL but not fsync'ed; the WAL is
      // synced at checkpoints. A crashed or SIGKILLed process loses nothing (the OS has the
      // pages); an OS crash or power cut may roll back the last commits, never corrupt the
      // file. FULL would fsync every commit, several times slower. Every node on the machine
      // goes down with the machine, so the sessions those commits served are lost anyway.
      this.db.pragma("synchronous = NORMAL");
      this.db.pragma("journal_size_limit = 67108864"); // truncate the WAL back to 64 MiB after checkpoints
      migrate(this.db);
      this.s = statements(this.db);
      this.txRunner = this.db.transaction((fn: () => unknown) => fn());
      // From now on SQLITE_BUSY comes back at once and BusyQueue waits without blocking.
      this.db.pragma("busy_timeout = 0");
    } catch (err) {
      this.db.close();
      if (err instanceof LifelineError) throw err;
      throw new LifelineError(
        "LL_STORE_OPEN",
        `cannot open SQLite store ${path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    this.description = `sqlite ${path}`;
  }

  async createSession(record: SessionRecord): Promise<void> {
    checkRecord(record);
    await this.op("write", () => {
      try {
        this.s.insertSession.run(record);
      } catch (err) {
        if ((err as { code?: string }).code?.startsWith("SQLITE_CONSTRAINT")) {
          throw new LifelineError("LL_STORE_EXISTS", `session ${record.id} already exists`);
        }
        throw err;
      }
    });
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const row = await this.op("read", () => this.s.getSession.get(id) as SessionRow | undefined);
    return row ? toRecord(row) : undefined;
  }

  async claim(
    id: string,
    owner: string,
    now: number,
    expectEpoch?: number,
  ): Promise<SessionRecord | undefined> {
    const expect = expectEpoch ?? null;
    const row = await this.op(
      "write",
      () => this.s.claim.get({ owner, id, now, lease: OWNER_LEASE, expect }) as SessionRow | undefined,
    );
    return row ? toRecord(row) : undefined;
  }

  async renew(owner: string, now: number): Promise<number> {
    return await this.op("write", () => this.s.renew.run({ owner, now, lease: OWNER_LEASE }).changes);
  }

  async release(id: string, epoch: number, expiresAt: number): Promise<void> {
    await this.op("write", () => this.s.release.run(expiresAt, id, epoch));
  }

  async sweep(now: number): Promise<string[]> {
    return await this.op("write", () =>
      this.tx(() => {
        const ids = this.s.expired.all(now) as string[];
        for (const id of ids) this.deleteRows(id);
        return ids;
      }),
    );
  }

  async deleteSession(id: string): Promise<void> {
    await this.op("write", () => this.tx(() => this.deleteRows(id)));
  }

  async reply(session: string, seq: number): Promise<Uint8Array | undefined> {
    return await this.op("read", () => this.s.reply.get(session, seq) as Buffer | undefined);
  }

  async commit(req: CommitRequest): Promise<CommitResult> {
    checkCommit(req);
    const touched: Touched = { sessions: new Set(), topics: new Set() };
    const result = await this.op("write", () => this.tx(() => this.commitTx(req, touched)));
    if (result.status === "committed") this.watchers.touched(touched);
    return result;
  }

  async pushes(session: string, after: number, limit: number): Promise<PushRecord[]> {
    if (limit <= 0) return [];
    const rows = await this.op(
      "read",
      () => this.s.pushes.all(session, after, limit) as Array<{ seq: number; payload: Buffer }>,
    );
    return rows.map((r) => ({ session, seq: r.seq, payload: r.payload }));
  }

  async ackPushes(session: string, epoch: number, upTo: number): Promise<void> {
    await this.op("write", () =>
      this.tx(() => {
        const row = this.s.getSession.get(session) as SessionRow | undefined;
        if (!row || row.epoch !== epoch) return;
        const to = Math.min(upTo, row.last_push_seq);
        if (to <= row.acked_push_seq) return;
        this.s.ackPushes.run(session, to);
        this.s.setAcked.run(to, session);
      }),
    );
  }

  async pushHeads(sessions: readonly string[]): Promise<Map<string, number>> {
    const heads = new Map<string, number>();
    if (sessions.length === 0) return heads;
    const rows = await this.op(
      "read",
      () => this.s.pushHeads.all(JSON.stringify(sessions)) as Array<{ id: string; last_push_seq: number }>,
    );
    for (const r of rows) heads.set(r.id, r.last_push_seq);
    return heads;
  }

  async readTopic(topic: string, after: number, limit: number): Promise<TopicEntry[]> {
    if (limit <= 0) return [];
    const rows = await this.op("read", () => this.s.readTopic.all(topic, after, limit) as EntryRow[]);
    return rows.map((r) => ({ topic, offset: r.off, payload: r.payload, at: r.at }));
  }

  async topicHead(topic: string): Promise<number> {
    return await this.op("read", () => (this.s.topicHead.get(topic) as number | undefined) ?? 0);
  }

  async subscriptions(session: string): Promise<Subscription[]> {
    const rows = await this.op(
      "read",
      () => this.s.subs.all(session) as Array<{ topic: string; off: number }>,
    );
    return rows.map((r) => ({ session, topic: r.topic, offset: r.off }));
  }

  async deliver(session: string, epoch: number, limit: number): Promise<PushRecord[]> {
    if (limit <= 0) return [];
    const out = await this.op("write", () =>
      this.tx(() => {
        const row = this.s.getSession.get(session) as SessionRow | undefined;
        if (!row || row.epoch !== epoch) return [];
        const pushes: PushRecord[] = [];
        let head = row.last_push_seq;
        for (const sub of this.s.subs.all(session) as Array<{ topic: string; off: number }>) {
          if (pushes.length >= limit) break;
          const entries = this.s.readTopic.all(sub.topic, sub.off, limit - pushes.length) as EntryRow[];
          if (entries.length === 0) continue;
          for (const e of entries) {
            head += 1;
            const payload = encodeDelivery({ topic: sub.topic, offset: e.off, payload: e.payload, at: e.at });
            this.s.insertPush.run(session, head, payload);
            pushes.push({ session, seq: head, payload });
          }
          this.s.upsertSub.run(session, sub.topic, entries[entries.length - 1]!.off);
        }
        if (pushes.length > 0) this.s.setPushHead.run(head, session);
        return pushes;
      }),
    );
    if (out.length > 0) this.watchers.touched({ sessions: new Set([session]), topics: new Set() });
    return out;
  }

  watch(listener: (change: Change) => void): () => void {
    const remove = this.watchers.add(listener);
    if (!this.poller && this.db.open && !this.closing) {
      this.lastVersion = this.s.dataVersion.get() as number;
      this.poller = setInterval(() => this.poll(), this.pollMs);
      this.poller.unref();
    }
    return () => {
      remove();
      if (this.watchers.size === 0) this.stopPolling();
    };
  }

  healthy(): boolean {
    return !this.closing && this.db.open && this.diskError === undefined;
  }

  /** Stops watching, lets operations already called finish, then closes the connection. */
  async close(): Promise<void> {
    this.closing = true;
    this.stopPolling();
    this.watchers.clear();
    await this.queue.idle();
    if (this.db.open) this.db.close();
  }

  /** The body of `commit`, inside its BEGIN IMMEDIATE transaction. */
  private commitTx(req: CommitRequest, touched: Touched): CommitResult {
    const row = this.s.getSession.get(req.session) as SessionRow | undefined;
    if (!row) return { status: "unknown-session" };
    if (row.epoch !== req.epoch) return { status: "fenced" };
    const last = row.last_client_seq;
    if (req.seq <= last) {
      return { status: "duplicate", reply: this.s.reply.get(req.session, req.seq) as Buffer | undefined };
    }
    if (req.seq !== last + 1) return { status: "gap", expected: last + 1 };

    // Push heads of the sessions pushed to, read once and written back once at the end.
    const heads = new Map<string, number>([[req.session, row.last_push_seq]]);
    const exists = (id: string): boolean => {
      if (heads.has(id)) return true;
      const head = this.s.pushHead.get(id) as number | undefined;
      if (head !== undefined) heads.set(id, head);
      return head !== undefined;
    };
    const pushes: PushRecord[] = [];
    const published: Array<{ topic: string; offset: number }> = [];
    const at = Date.now();
    for (const e of req.effects) {
      if (e.kind === "push") {
        if (!exists(e.session)) continue; // the session is gone: nobody to deliver to
        const seq = heads.get(e.session)! + 1;
        heads.set(e.session, seq);
        const payload = toBuffer(e.payload);
        this.s.insertPush.run(e.session, seq, payload);
        pushes.push({ session: e.session, seq, payload: Buffer.from(payload) });
        touched.sessions.add(e.session);
      } else if (e.kind === "publish") {
        const offset = this.s.bumpTopic.get(e.topic) as number;
        this.s.insertEntry.run(e.topic, offset, toBuffer(e.payload), at);
        published.push({ topic: e.topic, offset });
        touched.topics.add(e.topic);
      } else if (e.kind === "subscribe") {
        if (!exists(e.session)) continue;
        const after =
          e.after === "end" ? ((this.s.topicHead.get(e.topic) as number | undefined) ?? 0) : e.after;
        this.s.upsertSub.run(e.session, e.topic, after);
      } else {
        this.s.deleteSub.run(e.session, e.topic);
      }
    }
    for (const [id, head] of heads) {
      if (id !== req.session) this.s.setPushHead.run(head, id);
    }
    this.s.setClientSeq.run(req.seq, heads.get(req.session)!, req.session);
    this.s.insertReply.run(req.session, req.seq, toBuffer(req.reply));
    this.s.pruneReplies.run(req.session, req.seq - REPLY_WINDOW);
    return { status: "committed", pushes, published };
  }

  private deleteRows(id: string): void {
    this.s.delReplies.run(id);
    this.s.delPushes.run(id);
    this.s.delSubs.run(id);
    this.s.delSession.run(id);
  }

  /** Runs `fn` in a BEGIN IMMEDIATE transaction (rolled back if it throws). */
  private tx<T>(fn: () => T): T {
    return this.txRunner.immediate(fn) as T;
  }

  /**
   * Runs one synchronous operation through the BusyQueue: in call order, retried while
   * another process holds the write lock. Writes remember whether they failed for the disk's
   * sake (see `healthy`). Errors come out as LifelineErrors.
   */
  private op<T>(kind: "read" | "write", fn: () => T): Promise<T> {
    if (this.closing) return Promise.reject(this.closedError());
    return this.queue
      .run(() => {
        if (!this.db.open) throw this.closedError();
        if (kind === "read") return fn();
        try {
          const out = fn();
          this.diskError = undefined;
          return out;
        } catch (err) {
          if (isDiskError(err)) this.diskError = err;
          throw err;
        }
      })
      .catch((err: unknown) => {
        throw wrap(err);
      });
  }

  private closedError(): LifelineError {
    return new LifelineError("LL_STORE_CLOSED", `the SQLite store ${this.path} is closed`);
  }

  private poll(): void {
    if (!this.db.open) {
      this.stopPolling();
      return;
    }
    try {
      const v = this.s.dataVersion.get() as number;
      if (v === this.lastVersion) return;
      this.lastVersion = v;
      this.watchers.notify({ kind: "any" });
    } catch {
      // A busy or failing file: the next poll tries again; writes report the error.
    }
  }

  private stopPolling(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }
}
