import type { MemberMeta, MemberState } from "./types.ts";

/**
 * The membership protocol's messages. Packets (UDP) carry one or more of them (the first is
 * the packet's purpose, the rest piggybacked updates); the reliable channel (TCP) carries
 * exactly one request and one response. The byte layout is in codec.ts.
 */

/**
 * Message type numbers on the wire. APPEND-ONLY: never renumber or reuse a number, or
 * members running different versions misread each other.
 */
export const MessageType = {
  ping: 1,
  pingReq: 2,
  ack: 3,
  nack: 4,
  alive: 5,
  suspect: 6,
  dead: 7,
  pushPull: 8,
} as const;

/** Member states in push-pull entries. APPEND-ONLY as well. */
export const STATE_CODES: Record<MemberState, number> = { alive: 0, suspect: 1, dead: 2, left: 3 };

/** Direct probe. `target` is the id the sender believes is at this address. */
export interface Ping {
  type: "ping";
  seq: number;
  target: string;
}

/** "Please ping `target` at `address` for me and forward its ack (or a nack) with `seq`." */
export interface PingReq {
  type: "pingReq";
  seq: number;
  target: string;
  address: string;
  /** The requester wants a nack if the target does not answer in time (Lifeguard). */
  nack: boolean;
  /**
   * ms the requester will wait for the relayed ack. The intermediary sends its nack after
   * 80 % of it (the Lifeguard paper's proposal), so the nack arrives while it still counts.
   */
  window: number;
}

export interface Ack {
  type: "ack";
  seq: number;
}

/** From an intermediary: the target did not answer my ping in time (so I am healthy). */
export interface Nack {
  type: "nack";
  seq: number;
}

/** `id` is alive at `incarnation`, with this address and metadata. */
export interface Alive {
  type: "alive";
  id: string;
  incarnation: number;
  address: string;
  meta: MemberMeta;
}

/** `from` suspects `id` at `incarnation`. */
export interface Suspect {
  type: "suspect";
  id: string;
  incarnation: number;
  from: string;
}

/** `from` declares `id` dead at `incarnation`; `from === id` means `id` left gracefully. */
export interface Dead {
  type: "dead";
  id: string;
  incarnation: number;
  from: string;
}

export interface PushPullEntry {
  id: string;
  address: string;
  meta: MemberMeta;
  incarnation: number;
  state: MemberState;
}

/** Full state exchange (reliable channel only). `join` marks the first one of a joiner. */
export interface PushPull {
  type: "pushPull";
  join: boolean;
  members: PushPullEntry[];
}

export type Message = Ping | PingReq | Ack | Nack | Alive | Suspect | Dead | PushPull;

/** Messages that change the member table; they are what the broadcast queue carries. */
export type Update = Alive | Suspect | Dead;
