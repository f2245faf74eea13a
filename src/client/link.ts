import type { LifelineError } from "../errors.ts";
import type { Message, Welcome } from "../protocol/messages.ts";
import { type ConnectOptions, ProtocolConnection } from "./connection.ts";

/**
 * What the failover client needs from one connection after its handshake. The TCP
 * `ProtocolConnection` is one; tests substitute in-memory or faulty ones.
 */
export interface Link {
  readonly welcome: Welcome;
  readonly address: string;
  /** ms from the start of the connect to the WELCOME. */
  readonly connectTime: number;
  readonly isOpen: boolean;
  send(msg: Message): boolean;
  /** Polite close (FIN). */
  close(): void;
  /** Immediate close (RST). */
  destroy(): void;
  /** Starts delivering messages; listeners must be attached first. */
  start(): void;
  on(event: "message", fn: (m: Message) => void): unknown;
  on(event: "close", fn: (info: { error?: LifelineError }) => void): unknown;
}

/** Opens a link: resolves after the WELCOME, rejects with a `ConnectError`/`TimeoutError`. */
export type Connector = (opts: ConnectOptions) => Promise<Link>;

export const tcpConnector: Connector = (opts) => ProtocolConnection.connect(opts);
