/**
 * SqliteStore: the store contract on a temporary file, plus what only the SQLite store
 * promises — the native module loads, WAL mode, the schema version table, data surviving a
 * reopen, atomicity against a real failure inside the transaction, and `healthy()`.
 * Several instances and processes on one file: sqlite-shared.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { SCHEMA_VERSION } from "../../src/store/sqlite-schema.ts";
import { storeContract } from "./contract.ts";
import { bytes, commit, committed, held, publish, push, record, text } from "./contract-helpers.ts";

storeContract("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-store-"));
  const store = new SqliteStore(join(dir, "store.db"));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe("better-sqlite3", () => {
  it("loads its native module and has the SQLite features the store uses", () => {
    const db = new Database(":memory:");
    try {
      const version = db.prepare("SELECT sqlite_version()").pluck().get() as string;
      const [major, minor] = version.split(".").map(Number);
      expect(major! * 1000 + minor!).toBeGreaterThanOrEqual(3035); // RETURNING and upserts
      expect(db.prepare("SELECT count(*) FROM json_each('[1,2]')").pluck().get()).toBe(2);
    } finally {
      db.close();
    }
  });
});

describe("SqliteStore", () => {
  let dir: string;
  let file: string;
  const open: SqliteStore[] = [];
  const openStore = (): SqliteStore => {
    const s = new SqliteStore(file);
    open.push(s);
    return s;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lifeline-store-"));
    file = join(dir, "store.db");
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("puts the file in WAL mode and records the schema version", () => {
    const store = openStore();
    expect(store.kind).toBe("sqlite");
    expect(store.description).toContain(file);
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.prepare("SELECT max(version) FROM schema_version").pluck().get()).toBe(SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it("keeps everything across close and reopen", async () => {
    const a = openStore();
    const e = await held(a, "s1");
    await committed(a, "s1", e, 1, [
      push("s1", "p"),
      publish("t", "x"),
      { kind: "subscribe", session: "s1", topic: "t", after: 0 },
    ]);
    await a.close();
    const b = openStore();
    expect(await b.getSession("s1")).toMatchObject({ epoch: e, lastClientSeq: 1, lastPushSeq: 1 });
    expect(text(await b.reply("s1", 1))).toBe("r1");
    expect((await b.pushes("s1", 0, 10)).map((p) => text(p.payload))).toEqual(["p"]);
    expect(await b.topicHead("t")).toBe(1);
    expect(await b.subscriptions("s1")).toEqual([{ session: "s1", topic: "t", offset: 0 }]);
  });

  it("refuses a file written by a newer schema, and a file that is not a database", () => {
    openStore();
    const db = new Database(file);
    db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)").run(SCHEMA_VERSION + 1);
    db.close();
    expect(() => new SqliteStore(file)).toThrow(expect.objectContaining({ code: "LL_STORE_SCHEMA" }));
    expect(() => new SqliteStore(join(dir, "missing-dir", "x.db"))).toThrow(
      expect.objectContaining({ code: "LL_STORE_OPEN" }),
    );
  });

  it("rolls back a commit that fails inside its transaction: no reply, no effect", async () => {
    const store = openStore();
    const e = await held(store, "s1");
    await store.createSession(record("s2"));
    // Another connection makes every insert of an entry of topic "boom" fail, as a full disk or a
    // constraint would, after the commit has already written pushes, an entry and a subscription.
    const db = new Database(file);
    db.exec(`CREATE TRIGGER boom BEFORE INSERT ON topic_entries WHEN NEW.topic = 'boom'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    const effects = [
      push("s1", "a"),
      push("s2", "b"),
      publish("ok", "c"),
      { kind: "subscribe" as const, session: "s1", topic: "ok", after: 0 },
      { kind: "unsubscribe" as const, session: "s1", topic: "none" },
      publish("boom", "d"),
    ];
    await expect(commit(store, "s1", e, 1, effects)).rejects.toMatchObject({ code: "LL_STORE_FAILED" });
    expect(await store.getSession("s1")).toMatchObject({ lastClientSeq: 0, lastPushSeq: 0 });
    expect(await store.getSession("s2")).toMatchObject({ lastPushSeq: 0 });
    expect(await store.reply("s1", 1)).toBeUndefined();
    expect(await store.pushes("s1", 0, 10)).toEqual([]);
    expect(await store.pushes("s2", 0, 10)).toEqual([]);
    expect(await store.topicHead("ok")).toBe(0);
    expect(await store.readTopic("ok", 0, 10)).toEqual([]);
    expect(await store.subscriptions("s1")).toEqual([]);
    expect(store.healthy()).toBe(true); // a refused write is not a disk failure

    db.exec("DROP TRIGGER boom");
    db.close();
    const r = await commit(store, "s1", e, 1, effects);
    expect(r.status === "committed" && r.published).toEqual([
      { topic: "ok", offset: 1 },
      { topic: "boom", offset: 1 },
    ]);
  });

  it("is unhealthy after a write fails for lack of space, and healthy again after one succeeds", async () => {
    const store = openStore();
    const e = await held(store, "s1");
    const db = (store as unknown as { db: Database.Database }).db;
    const pages = db.pragma("page_count", { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 2}`); // the file may hardly grow: SQLITE_FULL
    const huge = new Uint8Array(1024 * 1024);
    await expect(commit(store, "s1", e, 1, [push("s1", "x")], huge)).rejects.toMatchObject({
      code: "LL_STORE_FAILED",
    });
    expect(store.healthy()).toBe(false);
    expect(await store.getSession("s1")).toMatchObject({ lastClientSeq: 0, lastPushSeq: 0 });
    db.pragma("max_page_count = 1073741823");
    await committed(store, "s1", e, 1);
    expect(store.healthy()).toBe(true);
  });

  it("stores Uint8Array views (not just Buffers) by their own bytes only", async () => {
    const store = openStore();
    const e = await held(store, "s1");
    const backing = bytes("xxhelloxx");
    await commit(
      store,
      "s1",
      e,
      1,
      [{ kind: "push", session: "s1", payload: backing.subarray(2, 7) }],
      backing.subarray(0, 2),
    );
    expect(text((await store.pushes("s1", 0, 1))[0]!.payload)).toBe("hello");
    expect(text(await store.reply("s1", 1))).toBe("xx");
  });
});
