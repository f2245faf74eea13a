/**
 * openStore / parseStoreUrl: which URL opens which store, and the errors for the rest.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_STORE_FILE, openStore, parseStoreUrl } from "../../src/store/index.ts";

describe("parseStoreUrl", () => {
  const cwd = "/srv/app";

  it.each([
    ["memory", { kind: "memory" }],
    ["memory:", { kind: "memory" }],
    ["MEMORY", { kind: "memory" }],
    ["sqlite:data/s.db", { kind: "sqlite", path: "/srv/app/data/s.db" }],
    ["sqlite://data/s.db", { kind: "sqlite", path: "/srv/app/data/s.db" }],
    ["sqlite:///var/lib/ll.db", { kind: "sqlite", path: "/var/lib/ll.db" }],
    ["sqlite:/var/lib/ll", { kind: "sqlite", path: "/var/lib/ll" }],
    ["sqlite::memory:", { kind: "sqlite", path: ":memory:" }],
    ["store.db", { kind: "sqlite", path: "/srv/app/store.db" }],
    ["./x/store.sqlite", { kind: "sqlite", path: "/srv/app/x/store.sqlite" }],
    ["/abs/store.sqlite3", { kind: "sqlite", path: "/abs/store.sqlite3" }],
    [undefined, { kind: "sqlite", path: `/srv/app/${DEFAULT_STORE_FILE}` }],
    ["  ", { kind: "sqlite", path: `/srv/app/${DEFAULT_STORE_FILE}` }],
  ])("%s", (url, expected) => {
    expect(parseStoreUrl(url, cwd)).toEqual(expected);
  });

  it.each(["redis://localhost:6379", "rediss://user:secret@cache:6380/0"])(
    "%s is not available yet",
    (url) => {
      expect(() => parseStoreUrl(url, cwd)).toThrow(
        expect.objectContaining({ code: "LL_STORE_UNSUPPORTED" }),
      );
      try {
        parseStoreUrl(url, cwd);
      } catch (err) {
        expect(String((err as Error).message)).toMatch(/Redis/);
        expect(String((err as Error).message)).not.toContain("secret");
      }
    },
  );

  it.each(["postgres://db/x", "mystore", "sqlite:", "sqlite://", "http://x/y.db", "file.txt"])(
    "%s is refused with LL_STORE_URL",
    (url) => {
      expect(() => parseStoreUrl(url, cwd)).toThrow(expect.objectContaining({ code: "LL_STORE_URL" }));
    },
  );
});

describe("openStore", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lifeline-open-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("opens a memory store", async () => {
    const store = await openStore("memory");
    expect(store.kind).toBe("memory");
    await store.close();
  });

  it("opens the default SQLite file in the working directory", async () => {
    const store = await openStore(undefined, { cwd: dir });
    expect(store.kind).toBe("sqlite");
    expect(existsSync(join(dir, DEFAULT_STORE_FILE))).toBe(true);
    await store.close();
  });

  it("opens a SQLite file named by URL, relative to cwd", async () => {
    const store = await openStore("sqlite:nodes.db", { cwd: dir, busyTimeoutMs: 1000, pollIntervalMs: 50 });
    expect(store.description).toBe(`sqlite ${join(dir, "nodes.db")}`);
    expect(store.healthy()).toBe(true);
    await store.close();
  });

  it("names the file it could not open", async () => {
    await expect(openStore(join(dir, "no", "such", "dir.db"))).rejects.toMatchObject({
      code: "LL_STORE_OPEN",
      message: expect.stringContaining("dir.db"),
    });
  });
});
