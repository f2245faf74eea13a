import type { HealthEngine } from "../health/engine.ts";
import type { CheckStatus } from "../health/types.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { type AdminServer, MAX_BODY, type Request, readBody, send, startHttp } from "./http.ts";

export { type AdminServer, isLoopback } from "./http.ts";

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
 * Security rules: see src/admin/http.ts.
 */
export interface AdminOptions {
  /** "host:port"; port 0 picks a free one. */
  listen: string;
  /** Shared secret for writes (and reads off loopback). Also LIFELINE_ADMIN_TOKEN. */
  token?: string | undefined;
  engine: HealthEngine;
  logger?: Logger;
}

export function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const { engine } = opts;
  const logger = opts.logger ?? silentLogger;
  const handle = async ({ req, res, method, parts, url }: Request) => {
    if (method === "GET" && url.pathname === "/healthz") return send(res, 200, "ok");
    if (parts[0] !== "api" || parts[1] !== "targets") return send(res, 404, { error: "not found" });
    if (method === "GET") {
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
    if ((method === "PUT" || method === "POST") && parts.length === 6 && parts[3] === "checks") {
      const [, , id, , check, status] = parts as [string, string, string, string, string, string];
      if (status !== "pass" && status !== "warn" && status !== "fail") {
        return send(res, 400, { error: "status must be pass, warn or fail" });
      }
      const body = await readBody(req);
      if (body === undefined) return send(res, 413, { error: `message longer than ${MAX_BODY} bytes` });
      const ok = engine.report(id, check, status as CheckStatus, body.trim() || undefined);
      return ok ? send(res, 200, { ok: true }) : send(res, 404, { error: `no passive check ${id}/${check}` });
    }
    if (method === "POST" && parts.length === 4) {
      const [, , id, action] = parts as [string, string, string, string];
      const reason = ((await readBody(req)) ?? "").trim();
      const actions: Record<string, () => boolean> = {
        disable: () => engine.disable(id, reason),
        enable: () => engine.enable(id),
        drain: () => engine.drain(id, reason),
        undrain: () => engine.undrain(id),
      };
      const act = actions[action];
      if (!act) return send(res, 404, { error: `unknown action ${action}` });
      const done = act();
      logger.info({ event: "admin", target: id, action, reason }, `${id}: ${action} by operator`);
      return send(res, done ? 200 : 409, { ok: done });
    }
    return send(res, 405, { error: "method not allowed" });
  };
  return startHttp({ listen: opts.listen, token: opts.token, logger, handle });
}
