import type { Membership } from "../membership/index.ts";
import type { LifelineNode } from "../node/node.ts";
import type { Logger } from "../util/logger.ts";
import { type AdminServer, type Request, send, startHttp } from "./http.ts";
import { gossipMetrics, nodeMetrics } from "./node-metrics.ts";

/**
 * A node's admin HTTP server:
 *
 *   GET /healthz        200 while the node serves (healthy or degraded), 503 when draining
 *                       or stopped — for load balancers and orchestrators
 *   GET /readyz         200 when it takes clients; 503 while draining or while its store
 *                       cannot be written (the body says why)
 *   GET /metrics        Prometheus text (README "Metrics")
 *   GET /api/sessions   counts: sessions, connections, queued messages (never payloads)
 *   GET /api/topology   the nodes this node knows, with their state and load
 *   GET /api/members    gossip membership: members, incarnations, states, counters (--join)
 *
 * Security rules: see src/admin/http.ts.
 */
export interface NodeAdminOptions {
  listen: string;
  token?: string | undefined;
  node: LifelineNode;
  /** The node's gossip membership, when it has one (`--join`): /api/members and gossip metrics. */
  membership?: Membership;
  logger?: Logger;
}

export function startNodeAdmin(opts: NodeAdminOptions): Promise<AdminServer> {
  const { node } = opts;
  const registry = nodeMetrics(node);
  if (opts.membership) gossipMetrics(opts.membership, registry);
  const handle = async ({ res, method, url }: Request) => {
    if (method !== "GET") return send(res, 405, { error: "method not allowed" });
    switch (url.pathname) {
      case "/metrics": {
        const text = await registry.metrics();
        res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
        res.end(text);
        return;
      }
      case "/healthz":
      case "/readyz": {
        // Draining wants no new clients; a store it cannot write means it cannot serve them.
        const serving = node.state === "healthy" || (node.state === "degraded" && !node.storeUnavailable);
        return send(res, serving ? 200 : 503, node.reason ? `${node.state}: ${node.reason}` : node.state);
      }
      case "/api/sessions": {
        const s = node.stats();
        return send(res, 200, {
          node: node.nodeId,
          sessions: s.sessions,
          connections: s.connections,
          queue: s.queue,
          counters: node.counters,
        });
      }
      case "/api/topology":
        return send(res, 200, node.topology());
      case "/api/members": {
        const m = opts.membership;
        if (!m)
          return send(res, 404, { error: "this node does not gossip (started without --join/--gossip)" });
        return send(res, 200, {
          self: m.id,
          address: m.address,
          healthScore: m.healthScore,
          members: m.members().map((x) => ({
            id: x.id,
            address: x.address,
            state: x.state,
            incarnation: x.incarnation,
            meta: x.meta,
          })),
          counters: m.counters(),
        });
      }
      default:
        return send(res, 404, { error: "not found" });
    }
  };
  return startHttp({
    listen: opts.listen,
    token: opts.token,
    ...(opts.logger ? { logger: opts.logger } : {}),
    handle,
  });
}
