import { LifelineError } from "../errors.ts";
import type { BroadcastQueue } from "./broadcast-queue.ts";
import { decodeBody, decodeWire, encodeBody, encodeMessage, encodeWire, frameOverhead } from "./codec.ts";
import type { MembershipConfig } from "./config.ts";
import { type Keyring, SEAL_OVERHEAD } from "./keyring.ts";
import type { Message } from "./messages.ts";
import type { Transport } from "./transport.ts";
import type { MembershipCounters } from "./types.ts";

/**
 * Turns messages into bytes on the transport and back: packs piggybacked updates into what
 * a packet leaves free, seals with the keyring, and on receipt checks the cluster name,
 * authenticates and decodes, dropping (and counting) whatever fails:
 *
 *   other cluster name → droppedNonMember    plaintext while keyed → droppedUnencrypted
 *   no key opens it    → droppedBadTag       not decodable        → droppedMalformed
 */
export interface Received {
  sender: string;
  messages: Message[];
}

export class Wire {
  constructor(
    private readonly config: MembershipConfig,
    private readonly selfId: string,
    private readonly transport: Transport,
    private readonly queue: BroadcastQueue,
    private readonly counters: MembershipCounters,
    private readonly keyring: Keyring | undefined,
  ) {}

  /**
   * Sends `primary` to `to` with as many queued updates as fit the packet (not its own alive
   * to `toId`, the receiving member, when known: no news to it).
   */
  send(to: string, primary: readonly Message[], toId?: string): void {
    const parts = primary.map(encodeMessage);
    let used = this.overhead();
    for (const p of parts) used += p.length;
    parts.push(...this.queue.take(this.config.maxPacketSize - used, 0, 255 - parts.length, toId));
    this.emit(to, parts);
  }

  /** Sends only queued updates (a gossip round) to member `toId`; false when there were none. */
  gossip(to: string, toId: string): boolean {
    const parts = this.queue.take(this.config.maxPacketSize - this.overhead(), 0, 255, toId);
    if (parts.length === 0) return false;
    this.emit(to, parts);
    return true;
  }

  /** One message over the reliable channel; resolves with the response's messages. */
  async request(to: string, message: Message, timeoutMs: number): Promise<Received> {
    this.counters.reliableSent++;
    const resp = await this.transport.sendReliable(to, this.frame([encodeMessage(message)]), timeoutMs);
    const got = this.open(resp);
    if (!got) throw new LifelineError("LL_PROTOCOL", `unusable membership response from ${to}`);
    return got;
  }

  /** Bytes of a reliable response. */
  response(message: Message): Uint8Array {
    return this.frame([encodeMessage(message)]);
  }

  /** Checks, authenticates and decodes received bytes; undefined (counted) when dropped. */
  open(bytes: Uint8Array): Received | undefined {
    let wire: ReturnType<typeof decodeWire>;
    try {
      wire = decodeWire(bytes);
    } catch {
      this.counters.droppedMalformed++;
      return undefined;
    }
    if (wire.cluster !== this.config.clusterName) {
      this.counters.droppedNonMember++;
      return undefined;
    }
    let body: Uint8Array | undefined = wire.body;
    if (this.keyring) {
      if (!wire.sealed) {
        this.counters.droppedUnencrypted++;
        return undefined;
      }
      body = this.keyring.open(wire.body, wire.cluster);
    } else if (wire.sealed) {
      body = undefined;
    }
    if (!body) {
      this.counters.droppedBadTag++;
      return undefined;
    }
    try {
      return decodeBody(body);
    } catch {
      this.counters.droppedMalformed++;
      return undefined;
    }
  }

  private overhead(): number {
    return frameOverhead(this.config.clusterName, this.selfId) + (this.keyring ? SEAL_OVERHEAD : 0);
  }

  private frame(parts: readonly Uint8Array[]): Uint8Array {
    const body = encodeBody(this.selfId, parts);
    const sealed = this.keyring ? this.keyring.seal(body, this.config.clusterName) : body;
    return encodeWire(this.config.clusterName, this.keyring !== undefined, sealed);
  }

  private emit(to: string, parts: readonly Uint8Array[]): void {
    const bytes = this.frame(parts);
    this.counters.packetsSent++;
    this.counters.bytesSent += bytes.length;
    this.transport.sendPacket(to, bytes);
  }
}
