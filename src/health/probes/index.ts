import { execProbe } from "./exec.ts";
import { heartbeatProbe } from "./heartbeat.ts";
import { httpProbe } from "./http.ts";
import { ProbeRegistry } from "./registry.ts";
import { tcpProbe } from "./tcp.ts";
import { tlsProbe } from "./tls.ts";
import { ttlProbe } from "./ttl.ts";

/** A registry with every built-in probe kind. */
export function defaultRegistry(): ProbeRegistry {
  return new ProbeRegistry()
    .register(tcpProbe)
    .register(httpProbe)
    .register(tlsProbe)
    .register(execProbe)
    .register(ttlProbe)
    .register(heartbeatProbe);
}
