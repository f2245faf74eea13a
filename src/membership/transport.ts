/**
 * How membership reaches other members. The protocol core never touches sockets: it gets a
 * Transport, which is UDP + TCP on one port number in production (udp-transport.ts) and an
 * in-memory network with latency, loss, partitions and frozen members in tests and
 * simulations (memory-network.ts).
 *
 * Two channels, as SWIM implementations have:
 * - packets: unreliable, unordered, at most `maxPacketSize` bytes (probes and gossip);
 * - reliable: one request and one response over a stream (push-pull state sync, join and the
 *   TCP fallback ping), which either resolves with the response or rejects.
 */
export type PacketHandler = (bytes: Uint8Array, from: string) => void;

/** Answers a reliable request; resolving with undefined closes the stream without a reply. */
export type ReliableHandler = (bytes: Uint8Array, from: string) => Promise<Uint8Array | undefined>;

export interface Transport {
  /** "host:port" other members reach this one at (both channels). */
  readonly address: string;
  /** Sends one datagram; never throws (a failed send is a lost packet). */
  sendPacket(to: string, bytes: Uint8Array): void;
  /**
   * Sends one request over the reliable channel and resolves with the response, or rejects
   * (LL_CONNECT_FAILED when refused, LL_TIMEOUT after `timeoutMs`, LL_CLOSED, LL_PROTOCOL).
   */
  sendReliable(to: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  onPacket(handler: PacketHandler): void;
  onReliable(handler: ReliableHandler): void;
  /** Stops listening and sending; pending reliable requests reject. */
  close(): Promise<void>;
}
