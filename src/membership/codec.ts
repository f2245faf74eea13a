import { ProtocolError } from "../errors.ts";
import { type Message, MessageType, type PushPullEntry, STATE_CODES } from "./messages.ts";
import type { MemberMeta, MemberState } from "./types.ts";

/**
 * Compact binary encoding of membership messages (big-endian), chosen over JSON so that a
 * ping with a dozen piggybacked updates fits one 1400-byte UDP packet.
 *
 *   wire    = u8 version (1) · str8 cluster · u8 sealed · body     (body sealed: keyring.ts)
 *   body    = str8 sender · u8 count · message{count}
 *   message = u8 type · varint length · body           (unknown types are skipped)
 *   str8    = u8 byte length · UTF-8;   str16 = u16 byte length · UTF-8
 *   meta    = u8 pairs · (str8 key · str16 value){pairs}       (≤ MAX_META_BYTES in all)
 *
 *   ping     u32 seq · str8 target
 *   pingReq  u32 seq · str8 target · str8 address · u8 wantNack · u32 window (ms)
 *   ack/nack u32 seq
 *   alive    u32 incarnation · str8 id · str8 address · meta
 *   suspect  u32 incarnation · str8 id · str8 from          (dead: the same)
 *   pushPull u8 join · u32 count · (str8 id · str8 address · meta · u32 incarnation · u8 state)*
 *
 * Bounds: ids ≤ 128 bytes, addresses and cluster name ≤ 255 / 64, metadata ≤ 512 bytes, so
 * the largest update (an alive) is under 1 KiB and always fits a packet with its ping. The
 * frame is then encrypted as a whole (keyring.ts).
 */
export const CODEC_VERSION = 1;
export const MAX_ID_BYTES = 128;
export const MAX_META_BYTES = 512;
/** Largest frame accepted on the reliable channel (a push-pull of ~10 000 members). */
export const MAX_STREAM_FRAME = 8 * 1024 * 1024;

const TYPE_NAMES = Object.fromEntries(Object.entries(MessageType).map(([k, v]) => [v, k])) as Record<
  number,
  Message["type"]
>;
const STATE_NAMES = Object.fromEntries(Object.entries(STATE_CODES).map(([k, v]) => [v, k])) as Record<
  number,
  MemberState
>;

/**
 * Writes into one shared scratch buffer (grown as needed, never shrunk) and copies the result
 * out at the end: one exact-size allocation per encoded value, however large. Not reentrant:
 * each encoder finishes its writer before another starts.
 */
let scratch = Buffer.allocUnsafe(64 * 1024);

class Writer {
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= scratch.length) return;
    const next = Buffer.allocUnsafe(Math.max(scratch.length * 2, this.len + n));
    scratch.copy(next, 0, 0, this.len);
    scratch = next;
  }
  u8(v: number): void {
    this.room(1);
    scratch[this.len++] = v & 0xff;
  }
  u16(v: number): void {
    this.room(2);
    scratch.writeUInt16BE(v, this.len);
    this.len += 2;
  }
  u32(v: number): void {
    this.room(4);
    scratch.writeUInt32BE(v >>> 0, this.len);
    this.len += 4;
  }
  varint(v: number): void {
    while (v >= 0x80) {
      this.u8((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.u8(v);
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    scratch.set(b, this.len);
    this.len += b.length;
  }
  str(s: string, max: number, wide = false): void {
    const n = Buffer.byteLength(s, "utf8");
    if (n > max)
      throw new ProtocolError(`string of ${n} bytes over ${max}`, { code: "LL_MEMBERSHIP_ENCODE" });
    if (wide) this.u16(n);
    else this.u8(n);
    this.room(n);
    this.len += scratch.write(s, this.len, n, "utf8");
  }
  meta(m: MemberMeta): void {
    const start = this.len;
    const entries = Object.entries(m);
    if (entries.length > 255)
      throw new ProtocolError("metadata has over 255 keys", { code: "LL_MEMBERSHIP_ENCODE" });
    this.u8(entries.length);
    for (const [k, v] of entries) {
      this.str(k, 255);
      this.str(String(v), MAX_META_BYTES, true);
    }
    if (this.len - start > MAX_META_BYTES)
      throw new ProtocolError(`metadata of ${this.len - start} bytes over ${MAX_META_BYTES}`, {
        code: "LL_MEMBERSHIP_ENCODE",
      });
  }
  get length(): number {
    return this.len;
  }
  /** A copy of bytes [from, len) prefixed by `head` bytes. */
  done(from = 0, head?: (w: Buffer, at: number) => void, headLength = 0): Uint8Array {
    const out = Buffer.allocUnsafe(headLength + this.len - from);
    if (head) head(out, 0);
    scratch.copy(out, headLength, from, this.len);
    return out;
  }
}

class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly end = buf.length,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.end) throw new ProtocolError("truncated membership message");
  }
  get offset(): number {
    return this.pos;
  }
  skipTo(offset: number): void {
    this.pos = offset;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  varint(): number {
    let v = 0;
    let mult = 1;
    for (let i = 0; i < 5; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mult;
      if (b < 0x80) return v;
      mult *= 128;
    }
    throw new ProtocolError("varint too long");
  }
  str(max: number, wide = false): string {
    const n = wide ? this.u16() : this.u8();
    if (n > max) throw new ProtocolError(`string of ${n} bytes over ${max}`);
    this.need(n);
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  meta(): MemberMeta {
    const start = this.pos;
    const count = this.u8();
    const m: Record<string, string> = {};
    for (let i = 0; i < count; i++) {
      const k = this.str(255);
      m[k] = this.str(MAX_META_BYTES, true);
    }
    if (this.pos - start > MAX_META_BYTES) throw new ProtocolError("metadata over its size bound");
    return m;
  }
}

/** One message as `type · length · body`: the unit the broadcast queue stores and packs. */
export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer();
  switch (m.type) {
    case "ping":
      w.u32(m.seq);
      w.str(m.target, MAX_ID_BYTES);
      break;
    case "pingReq":
      w.u32(m.seq);
      w.str(m.target, MAX_ID_BYTES);
      w.str(m.address, 255);
      w.u8(m.nack ? 1 : 0);
      w.u32(Math.round(m.window));
      break;
    case "ack":
    case "nack":
      w.u32(m.seq);
      break;
    case "alive":
      w.u32(m.incarnation);
      w.str(m.id, MAX_ID_BYTES);
      w.str(m.address, 255);
      w.meta(m.meta);
      break;
    case "suspect":
    case "dead":
      w.u32(m.incarnation);
      w.str(m.id, MAX_ID_BYTES);
      w.str(m.from, MAX_ID_BYTES);
      break;
    case "pushPull":
      w.u8(m.join ? 1 : 0);
      w.u32(m.members.length);
      for (const e of m.members) {
        w.str(e.id, MAX_ID_BYTES);
        w.str(e.address, 255);
        w.meta(e.meta);
        w.u32(e.incarnation);
        w.u8(STATE_CODES[e.state]);
      }
      break;
  }
  const length = w.length;
  const varintBytes =
    length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : length < 0x10000000 ? 4 : 5;
  return w.done(
    0,
    (out) => {
      out[0] = MessageType[m.type];
      let v = length;
      let i = 1;
      while (v >= 0x80) {
        out[i++] = (v & 0x7f) | 0x80;
        v = Math.floor(v / 128);
      }
      out[i] = v;
    },
    1 + varintBytes,
  );
}

/** Bytes the wire layout adds around its messages (before sealing). */
export function frameOverhead(cluster: string, sender: string): number {
  return 5 + Buffer.byteLength(cluster) + Buffer.byteLength(sender);
}

/** `sender · count · messages`: the part that is encrypted when a keyring is set. */
export function encodeBody(sender: string, parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 0 || parts.length > 255)
    throw new ProtocolError(`a frame holds 1 to 255 messages, not ${parts.length}`, {
      code: "LL_MEMBERSHIP_ENCODE",
    });
  const w = new Writer();
  w.str(sender, MAX_ID_BYTES);
  w.u8(parts.length);
  for (const p of parts) w.bytes(p);
  return w.done();
}

/** `version · cluster · sealed flag · body`: the cluster name stays readable (see keyring.ts). */
export function encodeWire(cluster: string, sealed: boolean, body: Uint8Array): Uint8Array {
  const w = new Writer();
  w.u8(CODEC_VERSION);
  w.str(cluster, 64);
  w.u8(sealed ? 1 : 0);
  w.bytes(body);
  return w.done();
}

/** Splits the clear header from the (possibly sealed) body. */
export function decodeWire(bytes: Uint8Array): { cluster: string; sealed: boolean; body: Uint8Array } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf);
  const version = r.u8();
  if (version !== CODEC_VERSION) throw new ProtocolError(`unknown membership codec version ${version}`);
  const cluster = r.str(64);
  const sealed = r.u8() === 1;
  return { cluster, sealed, body: buf.subarray(r.offset) };
}

/** Decodes `sender · count · messages`; throws ProtocolError on anything malformed. */
export function decodeBody(bytes: Uint8Array): { sender: string; messages: Message[] } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf);
  const sender = r.str(MAX_ID_BYTES);
  const count = r.u8();
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    const length = r.varint();
    const end = r.offset + length;
    if (end > buf.length) throw new ProtocolError("truncated membership message");
    const name = TYPE_NAMES[type];
    if (name !== undefined) messages.push(decodeMessage(name, new Reader(buf, end), r.offset));
    r.skipTo(end);
  }
  if (r.offset !== buf.length) throw new ProtocolError("trailing bytes after membership messages");
  return { sender, messages };
}

function decodeMessage(type: Message["type"], r: Reader, offset: number): Message {
  r.skipTo(offset);
  switch (type) {
    case "ping":
      return { type, seq: r.u32(), target: r.str(MAX_ID_BYTES) };
    case "pingReq":
      return {
        type,
        seq: r.u32(),
        target: r.str(MAX_ID_BYTES),
        address: r.str(255),
        nack: r.u8() === 1,
        window: r.u32(),
      };
    case "ack":
    case "nack":
      return { type, seq: r.u32() };
    case "alive":
      return { type, incarnation: r.u32(), id: r.str(MAX_ID_BYTES), address: r.str(255), meta: r.meta() };
    case "suspect":
    case "dead":
      return { type, incarnation: r.u32(), id: r.str(MAX_ID_BYTES), from: r.str(MAX_ID_BYTES) };
    case "pushPull": {
      const join = r.u8() === 1;
      const count = r.u32();
      const members: PushPullEntry[] = [];
      for (let i = 0; i < count; i++) {
        const id = r.str(MAX_ID_BYTES);
        const address = r.str(255);
        const meta = r.meta();
        const incarnation = r.u32();
        const state = STATE_NAMES[r.u8()];
        if (state === undefined) throw new ProtocolError("unknown member state in push-pull");
        members.push({ id, address, meta, incarnation, state });
      }
      return { type, join, members };
    }
  }
}
