import { ProbeRegistry } from "./registry.ts";
import { tcpProbe } from "./tcp.ts";

/** A registry with every built-in probe kind. */
export function defaultRegistry(): ProbeRegistry {
  return new ProbeRegistry().register(tcpProbe);
}
