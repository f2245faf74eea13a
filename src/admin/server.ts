import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import { type AddressInfo, isIPv4 } from "node:net";
import { UsageError } from "../errors.ts";
import type { HealthEngine } from "../health/engine.ts";
import { parseHostPort } from "../health/probes/address.ts";
import type { CheckStatus } from "../health/types.ts";
import { type Logger, silentLogger } from "../util/logger.ts";

/**
 * The monitor's admin HTTP server: health of the monitor itself, the targets as JSON, and
 * the write endpoints — reports for passive (`ttl`) checks and operator actions.
 *
 *   GET  /healthz                                   200 "ok" while the monitor runs
 *   GET  /api/targets                               every target's snapshot
 *   GET  /api/targets/:id                           one target (404 if unknown)
 *   GET  /api/targets/:id/history                   recent results and transitions
 *   PUT  /api/targets/:id/checks/:check/:status     a ttl report: status pass | warn | fail,
 *                                                   the body (text, ≤ 4 KiB) is its message
 *   POST /api/targets/:id/:action                   disable | enable | drain | undrain
 *
 * Bound to loopback by default. Binding elsewhere requires a token; when a token is set,
 * writes need `Authorization: Bearer TOKEN`, and so do reads on a non-loopback address.
 */
export interface AdminOptions {
  /** "host:port"; port 0 picks a free one. */
  listen: string;
  /** Shared secret for writes (and reads off loopback). Also LIFELINE_ADMIN_TOKEN. */
  token?: string | undefined;
  engine: HealthEngine;
  logger?: Logger;
}

export interface AdminServer {
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

const MAX_BODY = 4096;
/** Loopback by address, never by name: "127.example.com" is not loopback. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIPv4(host) && host.startsWith("127.");
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.replace(/^Bearer\s+/i, "") ?? "");
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "cache-control": "no-store",
  });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on("end", () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", () => resolve(undefined));
  });
}

export async function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const hp = parseHostPort(opts.listen, true);
  if (!hp) throw new UsageError(`admin address "${opts.listen}" is not host:port`);
  const { host, port } = hp;
  const local = isLoopback(host);
  if (!local && !opts.token) {
    throw new UsageError(
      `the admin server on ${host} is reachable from other machines: set a token (--admin-token or LIFELINE_ADMIN_TOKEN)`,
    );
  }
  const { engine } = opts;
  const logger = opts.logger ?? silentLogger;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://admin");
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const write = req.method !== "GET" && req.method !== "HEAD";
    if (opts.token && (write || !local) && !tokenMatches(req.headers.authorization, opts.token)) {
      return send(res, 401, { error: "a valid bearer token is required" });
    }
    if (req.method === "GET" && url.pathname === "/healthz") return send(res, 200, "ok");
    if (parts[0] !== "api" || parts[1] !== "targets") return send(res, 404, { error: "not found" });
    if (req.method === "GET") {
      if (parts.length === 2) return send(res, 200, engine.snapshot());
      const id = parts[2]!;
      if (parts.length === 3) {
        const t = engine.target(id);
        return t ? send(res, 200, t) : send(res, 404, { error: `no target ${id}` });
      }
      if (parts.length === 4 && parts[3] === "history") {
        const h = engine.history(id);
        return h ? send(res, 200, h) : send(res, 404, { error: `no target ${id}` });
      }
      return send(res, 404, { error: "not found" });
    }
    if ((req.method === "PUT" || req.method === "POST") && parts.length === 6 && parts[3] === "checks") {
      const [, , id, , check, status] = parts as [string, string, string, string, string, string];
      if (status !== "pass" && status !== "warn" && status !== "fail") {
        return send(res, 400, { error: "status must be pass, warn or fail" });
      }
      const body = await readBody(req);
      if (body === undefined) return send(res, 413, { error: `message longer than ${MAX_BODY} bytes` });
      const ok = engine.report(id, check, status as CheckStatus, body.trim() || undefined);
      return ok ? send(res, 200, { ok: true }) : send(res, 404, { error: `no passive check ${id}/${check}` });
    }
    if (req.method === "POST" && parts.length === 4) {
      const [, , id, action] = parts as [string, string, string, string];
      const reason = ((await readBody(req)) ?? "").trim();
      const done =
        action === "disable"
          ? engine.disable(id, reason)
          : action === "enable"
            ? engine.enable(id)
            : action === "drain"
              ? engine.drain(id, reason)
              : action === "undrain"
                ? engine.undrain(id)
                : undefined;
      if (done === undefined) return send(res, 404, { error: `unknown action ${action}` });
      logger.info({ event: "admin", target: id, action, reason }, `${id}: ${action} by operator`);
      return send(res, done ? 200 : 409, { ok: done });
    }
    return send(res, 405, { error: "method not allowed" });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ event: "admin-error", err: String(err) }, "admin request failed");
      if (!res.headersSent) send(res, 500, { error: "internal error" });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  return {
    host: addr.address,
    port: addr.port,
    url: `http://${shown}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
