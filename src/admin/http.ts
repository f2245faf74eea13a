import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import { type AddressInfo, isIPv4 } from "node:net";
import { UsageError } from "../errors.ts";
import { parseHostPort } from "../health/probes/address.ts";
import { type Logger, silentLogger } from "../util/logger.ts";

/**
 * The HTTP plumbing both admin servers (monitor and node) share: listening, the security
 * rule, JSON answers and bounded request bodies.
 *
 * Security: bound to loopback by default. Binding elsewhere requires a token. Writes always
 * need `Authorization: Bearer TOKEN` (without a token set there are no writes; the monitor
 * generates one, see src/cli/monitor.ts), and so do reads off loopback. A read
 * may give the token as `?token=` instead (a browser's EventSource cannot set headers; the
 * dashboard passes on the token of its own address).
 */
export interface AdminServer {
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

export interface Request {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  method: string;
  /** Path segments, decoded: "/api/targets/a%2Fb" → ["api", "targets", "a/b"]. */
  parts: string[];
  url: URL;
}

export interface HttpOptions {
  /** "host:port"; port 0 picks a free one. */
  listen: string;
  /** Shared secret for writes (and reads off loopback). */
  token?: string | undefined;
  logger?: Logger;
  /** Answers a request (after the token check). */
  handle(r: Request): Promise<void> | void;
  /** Reads anyone may make even off loopback with a token set (the dashboard's own files:
   *  code, not data — a browser cannot add a header to a <script> or stylesheet request). */
  isPublic?: (parts: readonly string[]) => boolean;
}

export const MAX_BODY = 4096;

/**
 * Where each role's admin server listens unless told otherwise: loopback, fixed ports so
 * bookmarks and Prometheus scrape configs keep working across restarts. `--admin off`
 * turns it off; `--admin 127.0.0.1:0` takes any free port (several on one machine).
 */
export const DEFAULT_ADMIN = { monitor: "127.0.0.1:7840", node: "127.0.0.1:7841" } as const;

/** True for "off", "false", "none" (an admin address that turns the server off). */
export function adminOff(listen: string | boolean | undefined): boolean {
  return listen === false || (typeof listen === "string" && /^(off|false|none|no)$/i.test(listen));
}

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

export function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "cache-control": "no-store",
  });
  res.end(text);
}

/** The request body as text, or undefined when it is over `limit` bytes (MAX_BODY). */
export function readBody(req: http.IncomingMessage, limit = MAX_BODY): Promise<string | undefined> {
  return new Promise((resolve) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on("end", () => resolve(size > limit ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", () => resolve(undefined));
  });
}

export async function startHttp(opts: HttpOptions): Promise<AdminServer> {
  const hp = parseHostPort(opts.listen, true);
  if (!hp) throw new UsageError(`admin address "${opts.listen}" is not host:port`);
  const { host, port } = hp;
  const local = isLoopback(host);
  if (!local && !opts.token) {
    throw new UsageError(
      `the admin server on ${host} is reachable from other machines: set a token (--admin-token or LIFELINE_ADMIN_TOKEN)`,
    );
  }
  const logger = opts.logger ?? silentLogger;
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://admin");
    const method = req.method ?? "GET";
    const write = method !== "GET" && method !== "HEAD";
    let parts: string[];
    try {
      parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    } catch {
      return send(res, 400, { error: "malformed path" });
    }
    const given =
      req.headers.authorization ?? (write ? undefined : (url.searchParams.get("token") ?? undefined));
    const open = !write && (local || opts.isPublic?.(parts) === true);
    if (write && !opts.token) {
      return send(res, 401, { error: "writes need a token, and none is set (--admin-token)" });
    }
    if (opts.token && !open && !tokenMatches(given, opts.token)) {
      return send(res, 401, { error: "a valid bearer token is required" });
    }
    await opts.handle({ req, res, method, parts, url });
  };
  const server = http.createServer((req, res) => {
    Promise.resolve(handle(req, res)).catch((err: unknown) => {
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
