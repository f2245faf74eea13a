/**
 * The SQLite store's schema, its migrations, and the statements the store prepares.
 *
 * `schema_version` holds one row per migration applied. Migration n (1-based) takes the
 * schema from version n - 1 to n; `migrate` applies the missing ones in one BEGIN IMMEDIATE
 * transaction, so several processes opening a new file at once create it exactly once.
 * A file written by a newer Lifeline (a version above ours) is refused rather than guessed at.
 * Never edit a released migration: append a new one.
 */
import type Database from "better-sqlite3";
import { LifelineError } from "../errors.ts";
import type { SessionRecord } from "./types.ts";

const MIGRATIONS: readonly string[] = [
  // 1: the first schema.
  `
  CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    token_hash      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_client_seq INTEGER NOT NULL,
    last_push_seq   INTEGER NOT NULL,
    acked_push_seq  INTEGER NOT NULL,
    ttl             INTEGER NOT NULL,
    expires_at      INTEGER,            -- while a node holds it: its lease (renewed); else the TTL
    owner           TEXT,
    epoch           INTEGER NOT NULL
  );
  CREATE INDEX sessions_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;

  -- The latest REPLY_WINDOW replies of each session (older ones are pruned by commit).
  CREATE TABLE replies (
    session TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (session, seq)
  );

  -- Unacknowledged pushes.
  CREATE TABLE pushes (
    session TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (session, seq)
  );

  -- The last offset given out per topic, kept apart from the entries so that offsets are
  -- never reused even if entries are trimmed one day.
  CREATE TABLE topics (
    topic TEXT PRIMARY KEY,
    head  INTEGER NOT NULL
  );

  CREATE TABLE topic_entries (
    topic   TEXT NOT NULL,
    off     INTEGER NOT NULL,
    payload BLOB NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (topic, off)
  );

  CREATE TABLE subscriptions (
    session TEXT NOT NULL,
    topic   TEXT NOT NULL,
    off     INTEGER NOT NULL,             -- offset of the last entry delivered
    PRIMARY KEY (session, topic)
  );
  `,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to SCHEMA_VERSION; returns the version it found. */
export function migrate(db: Database.Database): number {
  const run = db.transaction((): number => {
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    );
    const found =
      (db.prepare("SELECT coalesce(max(version), 0) FROM schema_version").pluck().get() as number) ?? 0;
    if (found > SCHEMA_VERSION) {
      throw new LifelineError(
        "LL_STORE_SCHEMA",
        `the store's schema is version ${found}, newer than this Lifeline understands (${SCHEMA_VERSION}); upgrade Lifeline`,
      );
    }
    const record = db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)");
    for (let v = found + 1; v <= SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v - 1]!);
      record.run(v, Date.now());
    }
    return found;
  });
  return run.immediate();
}

/** A `topic_entries` row as `readTopic` selects it. */
export interface EntryRow {
  off: number;
  payload: Buffer;
  at: number;
}

/** A Uint8Array as the Buffer better-sqlite3 binds as a BLOB, without copying. */
export const toBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A `sessions` row. */
export interface SessionRow {
  id: string;
  token_hash: string;
  created_at: number;
  last_client_seq: number;
  last_push_seq: number;
  acked_push_seq: number;
  ttl: number;
  expires_at: number | null;
  owner: string | null;
  epoch: number;
}

/** Turns a `sessions` row into the record the Store interface speaks. */
export function toRecord(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    tokenHash: r.token_hash,
    createdAt: r.created_at,
    lastClientSeq: r.last_client_seq,
    lastPushSeq: r.last_push_seq,
    ackedPushSeq: r.acked_push_seq,
    ttl: r.ttl,
    expiresAt: r.expires_at,
    owner: r.owner,
    epoch: r.epoch,
  };
}

/** Prepares every statement SqliteStore runs, once per connection. */
export function statements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertSession: p(`INSERT INTO sessions (id, token_hash, created_at, last_client_seq, last_push_seq,
      acked_push_seq, ttl, expires_at, owner, epoch) VALUES (@id, @tokenHash, @createdAt, @lastClientSeq,
      @lastPushSeq, @ackedPushSeq, @ttl, @expiresAt, @owner, @epoch)`),
    getSession: p("SELECT * FROM sessions WHERE id = ?"),
    claim: p(`UPDATE sessions SET epoch = epoch + 1, owner = @owner, expires_at = @now + ttl + @lease
      WHERE id = @id AND (expires_at IS NULL OR expires_at >= @now) AND (@expect IS NULL OR epoch = @expect)
      RETURNING *`),
    renew: p("UPDATE sessions SET expires_at = @now + ttl + @lease WHERE owner = @owner"),
    release: p("UPDATE sessions SET owner = NULL, expires_at = ? WHERE id = ? AND epoch = ?"),
    expired: p("SELECT id FROM sessions WHERE expires_at < ? ORDER BY id").pluck(),
    delReplies: p("DELETE FROM replies WHERE session = ?"),
    delPushes: p("DELETE FROM pushes WHERE session = ?"),
    delSubs: p("DELETE FROM subscriptions WHERE session = ?"),
    delSession: p("DELETE FROM sessions WHERE id = ?"),
    reply: p("SELECT payload FROM replies WHERE session = ? AND seq = ?").pluck(),
    insertReply: p("INSERT OR REPLACE INTO replies (session, seq, payload) VALUES (?, ?, ?)"),
    pruneReplies: p("DELETE FROM replies WHERE session = ? AND seq <= ?"),
    setClientSeq: p("UPDATE sessions SET last_client_seq = ?, last_push_seq = ? WHERE id = ?"),
    pushHead: p("SELECT last_push_seq FROM sessions WHERE id = ?").pluck(),
    setPushHead: p("UPDATE sessions SET last_push_seq = ? WHERE id = ?"),
    insertPush: p("INSERT INTO pushes (session, seq, payload) VALUES (?, ?, ?)"),
    pushes: p("SELECT seq, payload FROM pushes WHERE session = ? AND seq > ? ORDER BY seq LIMIT ?"),
    ackPushes: p("DELETE FROM pushes WHERE session = ? AND seq <= ?"),
    setAcked: p("UPDATE sessions SET acked_push_seq = ? WHERE id = ?"),
    pushHeads: p("SELECT id, last_push_seq FROM sessions WHERE id IN (SELECT value FROM json_each(?))"),
    bumpTopic: p(`INSERT INTO topics (topic, head) VALUES (?, 1)
      ON CONFLICT (topic) DO UPDATE SET head = head + 1 RETURNING head`).pluck(),
    topicHead: p("SELECT head FROM topics WHERE topic = ?").pluck(),
    insertEntry: p("INSERT INTO topic_entries (topic, off, payload, at) VALUES (?, ?, ?, ?)"),
    readTopic: p(
      "SELECT off, payload, at FROM topic_entries WHERE topic = ? AND off > ? ORDER BY off LIMIT ?",
    ),
    subs: p("SELECT topic, off FROM subscriptions WHERE session = ? ORDER BY topic"),
    upsertSub: p(`INSERT INTO subscriptions (session, topic, off) VALUES (?, ?, ?)
      ON CONFLICT (session, topic) DO UPDATE SET off = excluded.off`),
    deleteSub: p("DELETE FROM subscriptions WHERE session = ? AND topic = ?"),
    dataVersion: p("PRAGMA data_version").pluck(),
  };
}
