import { type Connector, type Link, tcpConnector } from "../../src/client/link.ts";
import type { Message } from "../../src/protocol/messages.ts";

/** What went over one connection the client opened (and won a dial with). */
export interface TappedLink {
  /** In the order the connections were opened. */
  index: number;
  node: string;
  address: string;
  /** MSG frames sent on it: seq → payloads (a resend on the same link appears twice). */
  sent: Map<number, string[]>;
  /** Replies received on it (in ACK frames): seq → payloads, in arrival order. */
  replies: Map<number, string[]>;
  /** The addresses listed by each TOPOLOGY frame received on it, in order. */
  topology: string[][];
}

/**
 * A client transport that records the frames themselves: the real TCP connector, with each
 * link's outgoing MSGs, incoming ACK replies and TOPOLOGY frames written down, per link. Lets a test check
 * what the nodes answered from the wire, not from the client's own bookkeeping.
 */
export function wireTap(inner: Connector = tcpConnector): { connect: Connector; links: TappedLink[] } {
  const links: TappedLink[] = [];
  const connect: Connector = async (opts) => {
    const link = await inner(opts);
    const tap: TappedLink = {
      index: links.length,
      node: link.welcome.nodeId,
      address: link.address,
      sent: new Map(),
      replies: new Map(),
      topology: [],
    };
    links.push(tap);
    const note = (into: Map<number, string[]>, seq: number, payload: Uint8Array) => {
      const text = Buffer.from(payload).toString("utf8");
      const list = into.get(seq);
      if (list) list.push(text);
      else into.set(seq, [text]);
    };
    // Attached before the client's own listener and before start(): sees every frame.
    link.on("message", (m: Message) => {
      if (m.type === "ack") for (const r of m.replies) note(tap.replies, r.seq, r.payload);
      else if (m.type === "topology")
        tap.topology.push(m.nodes.flatMap((n) => (n.address ? [n.address] : [])));
    });
    return new Proxy(link, {
      get(target, prop) {
        if (prop === "send") {
          return (m: Message) => {
            if (m.type === "msg") note(tap.sent, m.seq, m.payload);
            return target.send(m);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }) as Link;
  };
  return { connect, links };
}
