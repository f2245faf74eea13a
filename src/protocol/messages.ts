/**
 * The messages of Lifeline's client↔node and monitor↔node protocol.
 *
 * Type numbers are APPEND-ONLY: never renumber, never reuse a retired number. A peer that
 * receives a type it does not know answers with ERROR `LL_UNKNOWN_TYPE` and closes, so a
 * new type must only be sent to a peer that negotiated a protocol version that has it.
 */
export const TYPE = {
  HELLO: 1,
  WELCOME: 2,
  ERROR: 3,
  MSG: 4,
  ACK: 5,
  PUSH: 6,
  PUSH_ACK: 7,
  PING: 8,
  PONG: 9,
  HEARTBEAT: 10,
  TOPOLOGY: 11,
  GOAWAY: 12,
} as const;

/** Protocol versions this build speaks; HELLO offers a range, WELCOME picks one. */
export const PROTOCOL_VERSION = { min: 1, max: 1 } as const;

/** Who is connecting: a client with a session, a monitor or a peer node (heartbeats only). */
export type Role = "client" | "monitor" | "peer";

/** Stable error codes sent in ERROR messages; programs switch on these. */
export const ERROR_CODES = [
  "LL_PROTOCOL", // malformed frame or message
  "LL_FRAME_TOO_LARGE", // a frame over the negotiated maximum
  "LL_UNKNOWN_TYPE", // a message type this peer does not know
  "LL_VERSION", // no protocol version in common
  "LL_HANDSHAKE_TIMEOUT", // HELLO did not arrive in time
  "LL_HANDSHAKE_REQUIRED", // a message before HELLO
  "LL_SESSION_UNKNOWN", // resume of a session that expired or never existed
  "LL_SESSION_TOKEN", // resume with a wrong token
  "LL_SEQUENCE", // a client sequence number that skips ahead
  "LL_OVERLOADED", // connection or session limit reached
  "LL_DRAINING", // the node is shutting down
  "LL_STORE", // the store failed; the message was not acknowledged
  "LL_APP", // the application handler failed
  "LL_SESSION_MOVED", // another connection (on this or another node) took the session over
  "LL_REPLY_EXPIRED", // a resent message was processed long ago; its reply is no longer kept
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface NodeLoad {
  /** Open connections. */
  connections: number;
  /** Sessions held (connected or waiting to resume). */
  sessions: number;
  /** Event-loop lag, ms. */
  lag: number;
  /** Messages waiting for the application handler. */
  queue: number;
  /** Process CPU use, fraction of one core (0..n). */
  cpu: number;
}

export type NodeState = "healthy" | "degraded" | "draining";

export interface NodeInfo {
  id: string;
  /** "host:port" clients connect to. */
  address: string;
  state: string;
  load?: NodeLoad;
  /** Why the node is not `healthy`, when it says. */
  reason?: string;
}

export interface Hello {
  type: "hello";
  minVersion: number;
  maxVersion: number;
  role: Role;
  /** Resume this session (with its token), or omit for a new one. */
  sessionId?: string;
  resumeToken?: string;
  /**
   * The session's claim epoch as the client last saw it (WELCOME or ERROR `epoch`): the node
   * resumes only if the session still has it, so of several attempts racing one resume only
   * one claims it. Omitted: claim whatever the epoch.
   */
  sessionEpoch?: number;
  /** Highest PUSH sequence the client has received (0 for none). */
  lastPushSeq: number;
  /** Heartbeat interval asked for, ms; 0 = no heartbeats. */
  heartbeat: number;
  /** Free text shown in the node's logs. */
  name?: string;
}

export interface Welcome {
  type: "welcome";
  version: number;
  nodeId: string;
  sessionId: string;
  resumeToken: string;
  /** True when an existing session was resumed. */
  resumed: boolean;
  /** Highest client MSG sequence the cluster has processed for this session. */
  lastClientSeq: number;
  /** The session's claim epoch after this connection's claim (0 without a session). */
  epoch: number;
  /** Heartbeat interval the node will use, ms (0 = none). */
  heartbeat: number;
  /** Largest frame the node accepts, bytes. */
  maxFrame: number;
  /** How long the session survives a disconnect, ms. */
  sessionTtl: number;
}

export interface ErrorMessage {
  type: "error";
  code: ErrorCode | string;
  message: string;
  /** The sender closes the connection after a fatal error. */
  fatal: boolean;
  /** The client message this error is about (LL_APP), when it is about one. */
  seq?: number;
  /** LL_SESSION_MOVED in answer to HELLO: the session's current claim epoch. */
  epoch?: number;
}

export interface Msg {
  type: "msg";
  seq: number;
  payload: Uint8Array;
}

export interface Reply {
  seq: number;
  payload: Uint8Array;
}

/**
 * Cumulative: every MSG up to `upTo` is processed; `replies` carry their answers. Every
 * processed MSG — and every resent one — is answered by exactly one entry in `replies` on
 * the connection it was (re)sent on, in an ACK at or after any non-fatal ERROR about it
 * (`LL_APP`, `LL_REPLY_EXPIRED`, both with an empty reply). Clients complete messages
 * from `replies`; `upTo` alone says nothing about which replies are still to come.
 */
export interface Ack {
  type: "ack";
  upTo: number;
  replies: Reply[];
}

export interface Push {
  type: "push";
  seq: number;
  payload: Uint8Array;
}

/** Cumulative: every PUSH up to `upTo` was received. */
export interface PushAck {
  type: "push-ack";
  upTo: number;
}

export interface Ping {
  type: "ping";
  id: number;
  /** Sender's clock, ms. */
  sentAt: number;
}

export interface Pong {
  type: "pong";
  id: number;
  /** The PING's `sentAt`, echoed. */
  sentAt: number;
  /** Responder's clock, ms. */
  answeredAt: number;
}

export interface Heartbeat {
  type: "heartbeat";
  seq: number;
  sentAt: number;
  state: NodeState;
  load: NodeLoad;
  /** Why the node is not `healthy` (e.g. "store unavailable: redis://…"), when it says. */
  reason?: string;
}

export interface Topology {
  type: "topology";
  /** Increases with every change, so an older view never replaces a newer one. */
  epoch: number;
  nodes: NodeInfo[];
}

export interface GoAway {
  type: "goaway";
  reason: string;
  /** ms until the node closes the connection (the time left of its drain deadline). */
  deadline: number;
  /** Healthy nodes to move to. */
  nodes: NodeInfo[];
}

export type Message =
  | Hello
  | Welcome
  | ErrorMessage
  | Msg
  | Ack
  | Push
  | PushAck
  | Ping
  | Pong
  | Heartbeat
  | Topology
  | GoAway;
