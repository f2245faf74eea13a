import { latencyProxy, type ProxyMode } from "../../bench/lib/latency-proxy.ts";

export type { ProxyMode };

export interface FaultyProxy {
  address: string;
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /**
   * - `pass`: forwards both ways.
   * - `freeze`: stops forwarding in both directions but keeps every socket open (a frozen
   *   process, a half-open path); new connections are accepted and held.
   * - `reset`: resets every open connection and every new one as soon as it is accepted (a
   *   process that is dying while its port still accepts).
   */
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy on port 0 in front of `target` (host:port), whose faults tests switch:
 * the benchmarks' shaping proxy (bench/lib/latency-proxy.ts) with no delay, which can also add
 * latency, jitter and a bandwidth limit (`latencyProxy` itself) when a test needs them.
 */
export function faultyProxy(target: string): Promise<FaultyProxy> {
  return latencyProxy(target, { baseMs: 0 });
}
