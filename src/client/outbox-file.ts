import Database from "better-sqlite3";
import { LifelineError } from "../errors.ts";
import type { OutboxEntry } from "./outbox.ts";

/** What a client must remember to resume its session after a restart. */
export interface SavedSession {
  id: string;
  token: string;
  /**
   * The session's claim epoch as last seen (WELCOME): resumes claim only that epoch. Absent
   * in files written before epochs: the first resume then claims whatever the epoch.
   */
  epoch?: number;
  /** Highest PUSH sequence handed to the application. */
  lastPushSeq: number;
  /** Highest MSG sequence assigned. */
  lastSeq: number;
  /** Topics subscribed to (so their deliveries are decoded). */
  topics?: string[];
}

/**
 * The durable outbox: a SQLite file (WAL, synchronous=NORMAL) holding the session and every
 * message not yet acknowledged. One client process per file (it takes an exclusive lock, so
 * two clients cannot resume the same session and fence each other forever).
 *
 * Writes are synchronous: when `send()` returns, the message is in the file.
 */
export class OutboxFile {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(readonly path: string) {
    try {
      // No busy wait: a file another client holds fails at once, without blocking the loop.
      this.db = new Database(path, { timeout: 0 });
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.pragma("locking_mode = EXCLUSIVE");
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, seq INTEGER, payload BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS state (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      `);
      // Take the exclusive lock now: a second client on the same file fails here, at once.
      this.db.exec("BEGIN IMMEDIATE; COMMIT;");
    } catch (err) {
      throw new LifelineError(
        "LL_OUTBOX_FILE",
        `cannot open the outbox file ${path}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    this.stmts = {
      add: this.db.prepare("INSERT INTO outbox (id, seq, payload) VALUES (?, ?, ?)"),
      assign: this.db.prepare("UPDATE outbox SET seq = ? WHERE id = ?"),
      remove: this.db.prepare("DELETE FROM outbox WHERE id = ?"),
      removeUpTo: this.db.prepare("DELETE FROM outbox WHERE seq IS NOT NULL AND seq <= ?"),
      load: this.db.prepare("SELECT id, seq, payload FROM outbox ORDER BY id"),
      get: this.db.prepare("SELECT v FROM state WHERE k = 'session'"),
      put: this.db.prepare(
        "INSERT INTO state (k, v) VALUES ('session', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
      ),
      forget: this.db.prepare("DELETE FROM state WHERE k = 'session'"),
    };
  }

  /** Runs `fn`'s writes in one transaction. */
  write(fn: () => void): void {
    this.db.transaction(fn)();
  }

  add(e: OutboxEntry): void {
    this.stmts.add.run(
      e.id,
      e.seq ?? null,
      Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.length),
    );
  }

  assign(id: number, seq: number): void {
    this.stmts.assign.run(seq, id);
  }

  remove(id: number): void {
    this.stmts.remove.run(id);
  }

  removeUpTo(seq: number): void {
    this.stmts.removeUpTo.run(seq);
  }

  /** Messages held, oldest first: sent ones (with seq) come before unsent ones. */
  load(): OutboxEntry[] {
    const rows = this.stmts.load.all() as Array<{ id: number; seq: number | null; payload: Buffer }>;
    return rows.map((r) => ({ id: r.id, seq: r.seq ?? undefined, payload: new Uint8Array(r.payload) }));
  }

  session(): SavedSession | undefined {
    const row = this.stmts.get.get() as { v: string } | undefined;
    return row ? (JSON.parse(row.v) as SavedSession) : undefined;
  }

  saveSession(s: SavedSession | undefined): void {
    if (s) this.stmts.put.run(JSON.stringify(s));
    else this.stmts.forget.run();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
