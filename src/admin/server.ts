import type { Registry } from "prom-client";
import type { ConfigChange, HealthEngine } from "../health/engine.ts";
import type { CheckResult, CheckStatus, Transition } from "../health/types.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { type AdminServer, MAX_BODY, type Request, readBody, send, startHttp } from "./http.ts";
import { SseChannel } from "./sse.ts";
import { serveAsset } from "./static.ts";

export { type AdminServer, isLoopback } from "./http.ts";

/**
 * The monitor's admin HTTP server: the dashboard, health of the monitor itself, metrics,
 * the targets as JSON and live, the configuration, and the write endpoints — reports for
 * passive (`ttl`) checks and operator actions.
 *
 *   GET  /                                          the dashboard (web/), assets, /vendor/uPlot
 *   GET  /healthz                                   200 "ok" while the monitor runs
 *   GET  /readyz                                    200 when it is running and not stalled, else 503
 *   GET  /metrics                                   Prometheus text (README "Metrics")
 *   GET  /api/info                                  name, version, start time, profile
 *   GET  /api/targets                               every target's snapshot
 *   GET  /api/targets/:id                           one target (404 if unknown)
 *   GET  /api/targets/:id/history                   recent results and transitions
 *   GET  /api/transitions?limit=200                 the latest state changes of all targets
 *   GET  /api/events?types=state,result,config      server-sent events: `snapshot` first,
 *                                                   then every state change, result, reload
 *   GET  /api/config                                the running configuration, secrets removed
 *   PUT  /api/config                                replace it (YAML or JSON body), applied like
 *                                                   a reload; 400 with the field paths if invalid
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
  /** Served at /metrics; none: 404. */
  metrics?: Registry | undefined;
  /** GET and PUT /api/config; none: 404. */
  config?: ConfigAccess | undefined;
  /** Shown by /api/info. */
  info?: Record<string, unknown> | undefined;
  /** /readyz: ready or why not. Default: ready. */
  ready?: (() => { ready: boolean; reason: string }) | undefined;
}

export interface ConfigAccess {
  /** The running configuration as the operator wrote it, secrets removed. */
  get(): unknown;
  /** Validates and applies a new configuration document; the old one stays on error. */
  put(
    text: string,
  ): { ok: true; change: unknown } | { ok: false; issues: ReadonlyArray<{ path: string; message: string }> };
}

/** Largest configuration document PUT accepts, bytes. */
export const MAX_CONFIG = 1 << 20;

const EVENT_TYPES = ["state", "result", "config"] as const;

export function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const { engine } = opts;
  const logger = opts.logger ?? silentLogger;
  const handle = async ({ req, res, method, parts, url }: Request) => {
    if (method === "GET" && url.pathname === "/healthz") return send(res, 200, "ok");
    if (method === "GET" && url.pathname === "/readyz") {
      const r = opts.ready?.() ?? { ready: true, reason: "running" };
      return send(res, r.ready ? 200 : 503, r.reason);
    }
    if (method === "GET" && url.pathname === "/metrics") {
      if (!opts.metrics) return send(res, 404, { error: "metrics are off" });
      const text = await opts.metrics.metrics();
      res.writeHead(200, { "content-type": opts.metrics.contentType, "cache-control": "no-store" });
      res.end(text);
      return;
    }
    if (parts[0] !== "api") {
      if ((method === "GET" || method === "HEAD") && (await serveAsset(req, res, parts))) return;
      return send(res, 404, { error: "not found" });
    }
    if (method === "GET" && parts.length === 2 && parts[1] === "transitions") {
      // The latest state changes of every target, oldest first (the dashboard's event log).
      const limit = Math.min(10_000, Math.max(1, Number(url.searchParams.get("limit")) || 200));
      const all = engine.ids().flatMap((id) => engine.history(id)?.transitions ?? []);
      all.sort((a, b) => a.at - b.at);
      return send(res, 200, all.slice(-limit));
    }
    if (method === "GET" && parts.length === 2 && parts[1] === "info")
      return send(res, 200, { name: "lifeline monitor", ...opts.info });
    if (method === "GET" && parts.length === 2 && parts[1] === "events") {
      const asked = url.searchParams.get("types")?.split(",").filter(Boolean);
      const types = EVENT_TYPES.filter((t) => !asked || asked.includes(t));
      const channel = new SseChannel(res);
      channel.send("snapshot", engine.snapshot());
      const onState = (t: Transition) => channel.send("state", t);
      const onResult = (r: CheckResult) => channel.send("result", r);
      const onConfig = (c: ConfigChange) => channel.send("config", c);
      if (types.includes("state")) engine.on("state", onState);
      if (types.includes("result")) engine.on("result", onResult);
      if (types.includes("config")) engine.on("config", onConfig);
      channel.onEnd(() => {
        engine.off("state", onState);
        engine.off("result", onResult);
        engine.off("config", onConfig);
      });
      return;
    }
    if (parts.length === 2 && parts[1] === "config") {
      if (!opts.config) return send(res, 404, { error: "no configuration access" });
      if (method === "GET") return send(res, 200, opts.config.get());
      if (method === "PUT") {
        const body = await readBody(req, MAX_CONFIG);
        if (body === undefined)
          return send(res, 413, { error: `configuration longer than ${MAX_CONFIG} bytes` });
        const r = opts.config.put(body);
        logger.info(
          { event: "admin", action: "config", ok: r.ok },
          "configuration replaced by PUT /api/config",
        );
        return r.ok ? send(res, 200, r) : send(res, 400, r);
      }
      return send(res, 405, { error: "method not allowed" });
    }
    if (parts[1] !== "targets") return send(res, 404, { error: "not found" });
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
  return startHttp({
    listen: opts.listen,
    token: opts.token,
    logger,
    handle,
    isPublic: (parts) => parts[0] !== "api" && parts[0] !== "metrics",
  });
}
