/**
 * The shapes the membership layer hands to the rest of Lifeline: members, their states and
 * the events that tell a node how its view changed.
 *
 * A member's life, as every node sees it:
 *
 *   alive ──no ack──▶ suspect ──suspicion timeout──▶ dead
 *     ▲                  │
 *     └──refuted─────────┘      alive ──leave()──▶ left
 *
 * `dead` and `left` members come back to `alive` only with a higher incarnation (a restart
 * refutes the old verdict), and are forgotten after `deadRetention`.
 */
export type MemberState = "alive" | "suspect" | "dead" | "left";

/**
 * What a member tells the others about itself, gossiped with its `alive` messages (so keep it
 * small: at most `MAX_META_BYTES` encoded). Lifeline nodes use `client` ("host:port" clients
 * connect to), `role` and load figures; values are strings so the wire format stays generic.
 */
export type MemberMeta = Readonly<Record<string, string>>;

export interface Member {
  /** Unique, stable name of the member (a Lifeline node id). */
  id: string;
  /** "host:port" its membership transport listens on (UDP and TCP). */
  address: string;
  meta: MemberMeta;
  /**
   * Incarnation number: raised only by the member itself, to refute a suspicion (or a stale
   * death) about it. Higher incarnation wins; see member-table.ts for the precedence rules.
   */
  incarnation: number;
  state: MemberState;
  /** Monotonic ms (the injected clock) when the local node last changed this member's state. */
  since: number;
}

/** A state change of one member, as seen by the local node. */
export interface MemberEvent {
  member: Member;
  /** Its state before (undefined when the member was not known). */
  previous: MemberState | undefined;
  /** Why, for logs and operators: "no ack from direct, indirect or TCP probe", "refuted"… */
  reason: string;
}

/** Monotonic counters of what the membership layer did and what it refused. */
export interface MembershipCounters {
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  reliableSent: number;
  reliableReceived: number;
  /** Direct pings sent (one per protocol period at most). */
  probes: number;
  /** Ping-req messages sent after a direct ping went unanswered. */
  indirectProbes: number;
  /** Pings sent over the reliable channel (TCP fallback). */
  fallbackProbes: number;
  /** Nacks received from intermediaries. */
  nacksReceived: number;
  /** Members this node suspected itself (not heard from others). */
  suspicionsRaised: number;
  /** Times this node refuted a suspicion or death of itself. */
  refutations: number;
  /** Stale suspicions or deaths of itself (older incarnation) answered by gossiping its alive again. */
  reassertions: number;
  pushPulls: number;
  /** Dropped: authentication failed (wrong key, bad tag or tampered). */
  droppedBadTag: number;
  /** Dropped: plaintext while a keyring requires encryption. */
  droppedUnencrypted: number;
  /** Dropped: not a well-formed message (or over the size bounds). */
  droppedMalformed: number;
  /** Dropped: from a node of another cluster (its cluster name differs): not a member. */
  droppedNonMember: number;
  /** Dropped: an ack or nack nobody was waiting for (late, or forged). */
  droppedUnexpected: number;
}

export function zeroCounters(): MembershipCounters {
  return {
    packetsSent: 0,
    packetsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    reliableSent: 0,
    reliableReceived: 0,
    probes: 0,
    indirectProbes: 0,
    fallbackProbes: 0,
    nacksReceived: 0,
    suspicionsRaised: 0,
    refutations: 0,
    reassertions: 0,
    pushPulls: 0,
    droppedBadTag: 0,
    droppedUnencrypted: 0,
    droppedMalformed: 0,
    droppedNonMember: 0,
    droppedUnexpected: 0,
  };
}
