import { ProtocolError } from "../errors.ts";
import type { TopicEntry } from "./types.ts";

/**
 * The payload of a PUSH that delivers a topic entry to a subscriber: which topic, which
 * offset, and the entry's bytes, so that a client knows where it stands in each topic.
 *
 *   u16 topic length | topic (UTF-8) | u64 offset | f64 publish time (wall ms) | payload
 */
export function encodeDelivery(entry: TopicEntry): Buffer {
  const topic = Buffer.from(entry.topic, "utf8");
  const out = Buffer.allocUnsafe(2 + topic.length + 16 + entry.payload.length);
  out.writeUInt16BE(topic.length, 0);
  topic.copy(out, 2);
  let off = 2 + topic.length;
  out.writeUInt32BE(Math.floor(entry.offset / 2 ** 32), off);
  out.writeUInt32BE(entry.offset % 2 ** 32, off + 4);
  out.writeDoubleBE(entry.at, off + 8);
  off += 16;
  out.set(entry.payload, off);
  return out;
}

/** Decodes a delivery; throws ProtocolError on malformed bytes. */
export function decodeDelivery(bytes: Uint8Array): TopicEntry {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.length < 2) throw new ProtocolError("delivery: too short");
  const n = b.readUInt16BE(0);
  if (b.length < 2 + n + 16) throw new ProtocolError("delivery: too short");
  const topic = b.toString("utf8", 2, 2 + n);
  const off = 2 + n;
  const offset = b.readUInt32BE(off) * 2 ** 32 + b.readUInt32BE(off + 4);
  const at = b.readDoubleBE(off + 8);
  return { topic, offset, at, payload: b.subarray(off + 16) };
}
