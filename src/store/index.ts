/**
 * Opening a session store from a URL (`--store`, `LIFELINE_STORE`):
 *
 * | URL                                         | store                                             |
 * |---------------------------------------------|---------------------------------------------------|
 * | (none, or empty)                            | SQLite file `./lifeline.db` in the working dir    |
 * | `memory`, `memory:`                         | MemoryStore (this process only)                   |
 * | `sqlite:PATH`, `sqlite://PATH`              | SQLite file PATH (`sqlite:///abs.db` = `/abs.db`) |
 * | `PATH.db`, `PATH.sqlite`, `.sqlite3`        | SQLite file PATH                                  |
 * | `redis://[[user]:pw@]host[:port][/db]`      | RedisStore (port 6379, db 0)                      |
 * | `rediss://…`                                | RedisStore over TLS                               |
 * | `redis+sentinel://h:p[,h:p…]/master[/db]`   | RedisStore on the master the sentinels name       |
 * | `rediss+sentinel://…`                       | the same, TLS to the master                       |
 *
 * Redis URLs take `?prefix=NAME` (default `lifeline:`), so several clusters can share one
 * Redis; see src/store/redis-url.ts for every detail. `openStore` waits for the first
 * connection up to `connectTimeoutMs` (default 5 s) and fails with LL_STORE_UNAVAILABLE
 * naming the address (never the password).
 *
 * Relative paths are resolved against `opts.cwd` (default: the process's working directory).
 * Anything else is refused with LL_STORE_URL, naming the forms that are understood.
 */
import { resolve } from "node:path";
import { LifelineError } from "../errors.ts";
import type { StoreBaseOptions } from "./common.ts";
import { MemoryStore } from "./memory.ts";
import { RedisStore, type RedisStoreOptions } from "./redis.ts";
import { isRedisUrl, parseRedisUrl, type RedisTarget, redactUrl } from "./redis-url.ts";
import { SqliteStore, type SqliteStoreOptions } from "./sqlite.ts";
import type { Store } from "./types.ts";

export { MemoryStore } from "./memory.ts";
export { RedisStore, type RedisStoreOptions } from "./redis.ts";
export { type RedisTarget, redactUrl } from "./redis-url.ts";
export { SqliteStore, type SqliteStoreOptions } from "./sqlite.ts";
export * from "./types.ts";

/** The SQLite file used when no store is configured, relative to the working directory. */
export const DEFAULT_STORE_FILE = "lifeline.db";

export interface OpenStoreOptions extends StoreBaseOptions, SqliteStoreOptions, RedisStoreOptions {
  /** Directory relative SQLite paths (and the default file) are resolved against. Default: process.cwd(). */
  cwd?: string;
}

/** What a store URL names, before anything is opened. */
export type StoreTarget = { kind: "memory" } | { kind: "sqlite"; path: string } | RedisTarget;

const KNOWN =
  "memory, sqlite:PATH, sqlite://PATH, a path ending in .db/.sqlite/.sqlite3, redis://HOST:PORT/DB, " +
  "rediss://…, redis+sentinel://HOST:PORT,…/MASTER, or nothing for ./lifeline.db";

/** Parses a store URL (see the table above); throws LL_STORE_URL. */
export function parseStoreUrl(url: string | undefined, cwd: string = process.cwd()): StoreTarget {
  const text = url?.trim() ?? "";
  if (text === "") return { kind: "sqlite", path: resolve(cwd, DEFAULT_STORE_FILE) };
  const lower = text.toLowerCase();
  if (lower === "memory" || lower === "memory:") return { kind: "memory" };
  if (isRedisUrl(text)) return parseRedisUrl(text);
  if (lower.startsWith("sqlite:")) {
    const path = text.slice(lower.startsWith("sqlite://") ? "sqlite://".length : "sqlite:".length);
    if (path === "") throw new LifelineError("LL_STORE_URL", `store URL "${text}" names no file (${KNOWN})`);
    return { kind: "sqlite", path: path === ":memory:" ? path : resolve(cwd, path) };
  }
  if (/\.(db|sqlite3?)$/i.test(text) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    return { kind: "sqlite", path: resolve(cwd, text) };
  }
  throw new LifelineError("LL_STORE_URL", `unknown store URL "${redactUrl(text)}" (expected ${KNOWN})`);
}

/** Opens the store a URL names (see the table above). */
export async function openStore(url: string | undefined, opts: OpenStoreOptions = {}): Promise<Store> {
  const target = parseStoreUrl(url, opts.cwd);
  if (target.kind === "memory") return new MemoryStore(opts);
  if (target.kind === "redis") {
    const store = new RedisStore(target, opts);
    try {
      await store.ready();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }
  return new SqliteStore(target.path, opts);
}
