/**
 * Gossip membership: SWIM failure detection with Lifeguard, over UDP + TCP or an in-memory
 * network. See membership.ts for the API and config.ts for the tuning.
 */
export {
  MEMBERSHIP_PRESETS,
  type MembershipConfig,
  type MembershipPreset,
  membershipConfig,
} from "./config.ts";
export { Keyring } from "./keyring.ts";
export { Membership, type MembershipEvents, type MembershipOptions } from "./membership.ts";
export { type LinkConditions, MemoryNetwork, MemoryTransport } from "./memory-network.ts";
export type { PacketHandler, ReliableHandler, Transport } from "./transport.ts";
export type { Member, MemberEvent, MemberMeta, MemberState, MembershipCounters } from "./types.ts";
export { UdpTransport, type UdpTransportOptions } from "./udp-transport.ts";
