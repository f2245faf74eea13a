/**
 * Redis store URLs:
 *
 *   redis://[[user]:password@]host[:port][/db][?prefix=NAME]          (port 6379, db 0)
 *   rediss://…                                                         (the same over TLS)
 *   redis+sentinel://[[user]:password@]host:port[,host:port…]/master[/db][?prefix=NAME]
 *   rediss+sentinel://…                                                (TLS to the master)
 *
 * Sentinel ports default to 26379. With Sentinel, the client asks the sentinels which server
 * is the master of group `master` and connects there; after a failover it finds the new one.
 * The user and password authenticate to the Redis servers (not to the sentinels). Names and
 * passwords may be percent-encoded. Messages and descriptions never contain the password.
 */
import { LifelineError } from "../errors.ts";
import { DEFAULT_PREFIX } from "./redis-keys.ts";

export interface RedisAddress {
  host: string;
  port: number;
}

/** Where a Redis store lives, as a URL names it. */
export interface RedisTarget {
  kind: "redis";
  /** The server (standalone), or the sentinels to ask for the master (Sentinel). */
  addresses: RedisAddress[];
  /** Sentinel master group name; absent for a standalone server. */
  sentinelMaster?: string;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** Key prefix (`?prefix=`); default `lifeline:`. */
  prefix: string;
  /** The URL with the password replaced by `***`, for logs and errors. */
  display: string;
}

const FORMS =
  "redis://[:password@]host[:port][/db], rediss://…, or redis+sentinel://host:port[,host:port…]/master[/db]";

/** The URL with any password replaced by `***` (also for URLs that do not parse). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, "$1:***@");
}

/** Whether a URL is one of the Redis forms (by its scheme). */
export function isRedisUrl(url: string): boolean {
  return /^(rediss?|rediss?\+sentinel):\/\//i.test(url);
}

function fail(url: string, why: string): never {
  throw new LifelineError("LL_STORE_URL", `store URL "${redactUrl(url)}": ${why} (expected ${FORMS})`);
}

function decode(url: string, s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return fail(url, `the ${what} is not valid percent-encoding`);
  }
}

function parseAddress(url: string, text: string, defaultPort: number): RedisAddress {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d+))?$/i.exec(text);
  if (!m) return fail(url, `"${text}" is not host[:port]`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return fail(url, `bad port in "${text}"`);
  const host = m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port };
}

function parseDb(url: string, text: string | undefined): number {
  if (text === undefined || text === "") return 0;
  if (!/^\d+$/.test(text) || Number(text) > 65535) return fail(url, `database "${text}" is not a number`);
  return Number(text);
}

/** Parses one of the forms above; throws LL_STORE_URL naming what is wrong (never the password). */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([a-z+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (!scheme || !isRedisUrl(url)) return fail(url, "not a Redis URL");
  const sentinel = scheme.endsWith("+sentinel");
  const tls = scheme.startsWith("rediss");
  let rest = url.slice(scheme.length + 3);

  let prefix = DEFAULT_PREFIX;
  const q = rest.indexOf("?");
  if (q >= 0) {
    for (const [key, value] of new URLSearchParams(rest.slice(q + 1))) {
      if (key !== "prefix") return fail(url, `unknown parameter "${key}" (only prefix is understood)`);
      prefix = value;
    }
    rest = rest.slice(0, q);
  }

  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(":");
    const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
    if (user !== "") username = decode(url, user, "user name");
    if (colon >= 0) password = decode(url, userinfo.slice(colon + 1), "password");
  }

  const slash = rest.indexOf("/");
  const hosts = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1).split("/") : [];
  if (hosts === "") return fail(url, "no host");
  const addresses = hosts.split(",").map((h) => parseAddress(url, h, sentinel ? 26379 : 6379));
  if (!sentinel && addresses.length > 1) return fail(url, "several hosts are only understood with Sentinel");

  let sentinelMaster: string | undefined;
  let db: number;
  if (sentinel) {
    if (!path[0]) return fail(url, "no Sentinel master name after the hosts");
    if (path.length > 2) return fail(url, "too many path parts");
    sentinelMaster = decode(url, path[0], "master name");
    db = parseDb(url, path[1]);
  } else {
    if (path.length > 1) return fail(url, "too many path parts");
    db = parseDb(url, path[0]);
  }

  const auth = password !== undefined ? `${username ?? ""}:***@` : username ? `${username}@` : "";
  const where = addresses.map((a) =>
    a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`,
  );
  const display = `${scheme}://${auth}${where.join(",")}/${sentinelMaster ? `${sentinelMaster}/` : ""}${db}`;
  const target: RedisTarget = { kind: "redis", addresses, db, tls, prefix, display };
  if (sentinelMaster !== undefined) target.sentinelMaster = sentinelMaster;
  if (username !== undefined) target.username = username;
  if (password !== undefined) target.password = password;
  return target;
}
