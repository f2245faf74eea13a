import { z } from "zod";
import { ProtocolError } from "../errors.ts";
import { encodeFrame, type Frame } from "./frame.ts";
import type {
  Ack,
  GoAway,
  Heartbeat,
  Hello,
  Message,
  NodeState,
  Reply,
  Topology,
  Welcome,
} from "./messages.ts";
import { TYPE } from "./messages.ts";

/**
 * Message bodies. Two encodings, chosen per message by how often it travels. Measured with
 * bench/codec.ts on the 2-core dev machine (thousands of operations per second, encode /
 * decode): a MSG of 100 bytes 8,049 / 3,744 here, against 1,393 / 1,943 for MessagePack
 * (msgpackr) and 699 / 915 for JSON with base64; an ACK with 16 replies 659 / 592 against
 * 125 / 207 and 78 / 127. Frames are also the smallest (113 bytes against 136 and 174):
 *
 * - The data path (MSG, ACK, PUSH, PUSH_ACK, PING, PONG, HEARTBEAT) is fixed-layout binary.
 *   Payloads are opaque bytes and go in as they are, with no base64 or escaping; numbers
 *   are fixed-width. Encoding a MSG is one allocation and a copy, and decoding a payload is
 *   a view into the frame, several times faster than JSON and MessagePack for the same
 *   message.
 * - Control messages (HELLO, WELCOME, ERROR, TOPOLOGY, GOAWAY) are rare, and they must
 *   evolve: they are UTF-8 JSON validated on receipt, where unknown fields are ignored, so
 *   a newer peer can add fields without breaking an older one.
 *
 * Sequence numbers are unsigned 64-bit on the wire; values above 2^53 - 1 are rejected as
 * a protocol error rather than silently rounded.
 */
const STATES: readonly NodeState[] = ["healthy", "degraded", "draining"];
const TWO_32 = 2 ** 32;

function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), offset);
  buf.writeUInt32BE(value % TWO_32, offset + 4);
}

function readU64(buf: Buffer, offset: number): number {
  const hi = buf.readUInt32BE(offset);
  if (hi > 0x1fffff) throw new ProtocolError("sequence number above 2^53");
  return hi * TWO_32 + buf.readUInt32BE(offset + 4);
}

function need(buf: Buffer, bytes: number, what: string): void {
  if (buf.length < bytes) throw new ProtocolError(`${what}: body of ${buf.length} bytes, need ${bytes}`);
}

function exact(buf: Buffer, bytes: number, what: string): void {
  if (buf.length !== bytes)
    throw new ProtocolError(`${what}: body of ${buf.length} bytes, expected ${bytes}`);
}

const safeSeq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const text = (max: number) => z.string().max(max);
/** Longest reason a heartbeat or a TOPOLOGY entry carries (longer ones are cut). */
const MAX_REASON_BYTES = 500;
const load = z.object({
  connections: z.number().min(0),
  sessions: z.number().min(0),
  lag: z.number().min(0),
  queue: z.number().min(0),
  cpu: z.number().min(0),
});
const nodeInfo = z.object({
  id: text(200),
  address: text(300),
  state: text(40),
  load: load.optional(),
  reason: text(MAX_REASON_BYTES).optional(),
});

const SCHEMAS = {
  [TYPE.HELLO]: z.object({
    minVersion: z.number().int().min(0).max(65535),
    maxVersion: z.number().int().min(0).max(65535),
    role: z.enum(["client", "monitor", "peer"]),
    sessionId: text(200).optional(),
    resumeToken: text(200).optional(),
    sessionEpoch: safeSeq.optional(),
    lastPushSeq: safeSeq,
    heartbeat: z.number().min(0).max(3_600_000),
    name: text(200).optional(),
  }),
  [TYPE.WELCOME]: z.object({
    version: z.number().int().min(0).max(65535),
    nodeId: text(200),
    sessionId: text(200),
    resumeToken: text(200),
    resumed: z.boolean(),
    lastClientSeq: safeSeq,
    epoch: safeSeq,
    heartbeat: z.number().min(0),
    maxFrame: z.number().int().min(1),
    sessionTtl: z.number().min(0),
  }),
  [TYPE.ERROR]: z.object({
    code: text(100),
    message: text(2000),
    fatal: z.boolean(),
    seq: safeSeq.optional(),
    epoch: safeSeq.optional(),
  }),
  [TYPE.TOPOLOGY]: z.object({ epoch: safeSeq, nodes: z.array(nodeInfo).max(10_000) }),
  [TYPE.GOAWAY]: z.object({
    reason: text(2000),
    deadline: z.number().min(0),
    nodes: z.array(nodeInfo).max(10_000),
  }),
} as const;

const NAMES: Record<number, Message["type"]> = {
  [TYPE.HELLO]: "hello",
  [TYPE.WELCOME]: "welcome",
  [TYPE.ERROR]: "error",
  [TYPE.TOPOLOGY]: "topology",
  [TYPE.GOAWAY]: "goaway",
};

function jsonFrame(type: number, msg: Message): Buffer {
  const { type: _name, ...rest } = msg;
  return encodeFrame(type, Buffer.from(JSON.stringify(rest), "utf8"));
}

/** Encodes a message as one complete frame. */
export function encodeMessage(msg: Message): Buffer {
  switch (msg.type) {
    case "hello":
      return jsonFrame(TYPE.HELLO, msg);
    case "welcome":
      return jsonFrame(TYPE.WELCOME, msg);
    case "error":
      return jsonFrame(TYPE.ERROR, msg);
    case "topology":
      return jsonFrame(TYPE.TOPOLOGY, msg);
    case "goaway":
      return jsonFrame(TYPE.GOAWAY, msg);
    case "msg":
    case "push": {
      const out = Buffer.allocUnsafe(5 + 8 + msg.payload.length);
      out.writeUInt32BE(1 + 8 + msg.payload.length, 0);
      out[4] = msg.type === "msg" ? TYPE.MSG : TYPE.PUSH;
      writeU64(out, msg.seq, 5);
      out.set(msg.payload, 13);
      return out;
    }
    case "ack": {
      let size = 8 + 4;
      for (const r of msg.replies) size += 12 + r.payload.length;
      const out = Buffer.allocUnsafe(5 + size);
      out.writeUInt32BE(1 + size, 0);
      out[4] = TYPE.ACK;
      writeU64(out, msg.upTo, 5);
      out.writeUInt32BE(msg.replies.length, 13);
      let off = 17;
      for (const r of msg.replies) {
        writeU64(out, r.seq, off);
        out.writeUInt32BE(r.payload.length, off + 8);
        out.set(r.payload, off + 12);
        off += 12 + r.payload.length;
      }
      return out;
    }
    case "push-ack": {
      const body = Buffer.allocUnsafe(8);
      writeU64(body, msg.upTo, 0);
      return encodeFrame(TYPE.PUSH_ACK, body);
    }
    case "ping": {
      const body = Buffer.allocUnsafe(12);
      body.writeUInt32BE(msg.id >>> 0, 0);
      body.writeDoubleBE(msg.sentAt, 4);
      return encodeFrame(TYPE.PING, body);
    }
    case "pong": {
      const body = Buffer.allocUnsafe(20);
      body.writeUInt32BE(msg.id >>> 0, 0);
      body.writeDoubleBE(msg.sentAt, 4);
      body.writeDoubleBE(msg.answeredAt, 12);
      return encodeFrame(TYPE.PONG, body);
    }
    case "heartbeat": {
      // The fixed part, then the reason (UTF-8, the rest of the body) when there is one.
      const reason = msg.reason ? Buffer.from(msg.reason, "utf8").subarray(0, MAX_REASON_BYTES) : undefined;
      const body = Buffer.allocUnsafe(HEARTBEAT_BYTES + (reason?.length ?? 0));
      reason?.copy(body, HEARTBEAT_BYTES);
      writeU64(body, msg.seq, 0);
      body.writeDoubleBE(msg.sentAt, 8);
      body[16] = Math.max(0, STATES.indexOf(msg.state));
      body.writeUInt32BE(Math.min(msg.load.connections, 0xffffffff) >>> 0, 17);
      body.writeUInt32BE(Math.min(msg.load.sessions, 0xffffffff) >>> 0, 21);
      body.writeFloatBE(msg.load.lag, 25);
      body.writeUInt32BE(Math.min(msg.load.queue, 0xffffffff) >>> 0, 29);
      body.writeFloatBE(msg.load.cpu, 33);
      return encodeFrame(TYPE.HEARTBEAT, body);
    }
  }
}

const HEARTBEAT_BYTES = 37;

function decodeAck(body: Buffer): Ack {
  need(body, 12, "ACK");
  const upTo = readU64(body, 0);
  const count = body.readUInt32BE(8);
  // Each reply takes at least 12 bytes: a count the body cannot hold is a lie, not a reason
  // to allocate.
  if (count > (body.length - 12) / 12)
    throw new ProtocolError(`ACK: ${count} replies cannot fit in ${body.length} bytes`);
  const replies: Reply[] = [];
  let off = 12;
  for (let i = 0; i < count; i++) {
    need(body, off + 12, "ACK reply");
    const seq = readU64(body, off);
    const len = body.readUInt32BE(off + 8);
    need(body, off + 12 + len, "ACK reply payload");
    replies.push({ seq, payload: body.subarray(off + 12, off + 12 + len) });
    off += 12 + len;
  }
  if (off !== body.length) throw new ProtocolError(`ACK: ${body.length - off} trailing bytes`);
  return { type: "ack", upTo, replies };
}

function decodeHeartbeat(body: Buffer): Heartbeat {
  need(body, HEARTBEAT_BYTES, "HEARTBEAT");
  if (body.length > HEARTBEAT_BYTES + MAX_REASON_BYTES)
    throw new ProtocolError(
      `HEARTBEAT: body of ${body.length} bytes, at most ${HEARTBEAT_BYTES + MAX_REASON_BYTES}`,
    );
  const state = STATES[body[16]!];
  if (!state) throw new ProtocolError(`HEARTBEAT: unknown state ${body[16]}`);
  const lag = body.readFloatBE(25);
  const cpu = body.readFloatBE(33);
  if (!Number.isFinite(lag) || !Number.isFinite(cpu))
    throw new ProtocolError("HEARTBEAT: load is not a number");
  const heartbeat: Heartbeat = {
    type: "heartbeat",
    seq: readU64(body, 0),
    sentAt: body.readDoubleBE(8),
    state,
    load: {
      connections: body.readUInt32BE(17),
      sessions: body.readUInt32BE(21),
      lag,
      queue: body.readUInt32BE(29),
      cpu,
    },
  };
  if (body.length > HEARTBEAT_BYTES) heartbeat.reason = body.toString("utf8", HEARTBEAT_BYTES);
  return heartbeat;
}

function decodeJson(frame: Frame): Message {
  const schema = SCHEMAS[frame.type as keyof typeof SCHEMAS];
  let value: unknown;
  try {
    value = JSON.parse(frame.body.toString("utf8"));
  } catch {
    throw new ProtocolError(`${NAMES[frame.type]!.toUpperCase()}: body is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ProtocolError(
      `${NAMES[frame.type]!.toUpperCase()}: ${issue.path.join(".") || "body"}: ${issue.message}`,
    );
  }
  return { type: NAMES[frame.type]!, ...parsed.data } as Message;
}

function finiteTime(v: number, what: string): number {
  if (!Number.isFinite(v)) throw new ProtocolError(`${what}: time is not a number`);
  return v;
}

/** Decodes one frame. Never throws: a bad frame comes back as a ProtocolError. */
export function decodeMessage(frame: Frame): Message | ProtocolError {
  try {
    const b = frame.body;
    switch (frame.type) {
      case TYPE.HELLO:
      case TYPE.WELCOME:
      case TYPE.ERROR:
      case TYPE.TOPOLOGY:
      case TYPE.GOAWAY:
        return decodeJson(frame);
      case TYPE.MSG:
      case TYPE.PUSH:
        need(b, 8, frame.type === TYPE.MSG ? "MSG" : "PUSH");
        return { type: frame.type === TYPE.MSG ? "msg" : "push", seq: readU64(b, 0), payload: b.subarray(8) };
      case TYPE.ACK:
        return decodeAck(b);
      case TYPE.PUSH_ACK:
        exact(b, 8, "PUSH_ACK");
        return { type: "push-ack", upTo: readU64(b, 0) };
      case TYPE.PING:
        exact(b, 12, "PING");
        return { type: "ping", id: b.readUInt32BE(0), sentAt: finiteTime(b.readDoubleBE(4), "PING") };
      case TYPE.PONG:
        exact(b, 20, "PONG");
        return {
          type: "pong",
          id: b.readUInt32BE(0),
          sentAt: finiteTime(b.readDoubleBE(4), "PONG"),
          answeredAt: finiteTime(b.readDoubleBE(12), "PONG"),
        };
      case TYPE.HEARTBEAT:
        return decodeHeartbeat(b);
      default:
        return new ProtocolError(`unknown message type ${frame.type}`, { code: "LL_UNKNOWN_TYPE" });
    }
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    return new ProtocolError(`malformed message of type ${frame.type}: ${String(err)}`, { cause: err });
  }
}

export type { GoAway, Hello, Topology, Welcome };
