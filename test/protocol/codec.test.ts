import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../../src/errors.ts";
import { decodeMessage, encodeMessage } from "../../src/protocol/codec.ts";
import { encodeFrame, FrameParser } from "../../src/protocol/frame.ts";
import { type Message, TYPE } from "../../src/protocol/messages.ts";

/** Encodes, parses back from the bytes, decodes. */
function roundTrip(msg: Message): Message | ProtocolError {
  const r = new FrameParser().push(encodeMessage(msg));
  expect(r.error).toBeUndefined();
  expect(r.frames).toHaveLength(1);
  return decodeMessage(r.frames[0]!);
}

/** Messages compare with payloads as plain byte arrays. */
function plain(m: Message | ProtocolError): unknown {
  return JSON.parse(
    JSON.stringify(m, (_k, v) =>
      v instanceof Uint8Array || (v && v.type === "Buffer") ? [...Buffer.from(v.data ?? v)] : v,
    ),
  );
}

const bytes = (s: string) => Buffer.from(s);
const load = { connections: 3, sessions: 2, lag: 1.5, queue: 0, cpu: 0.25 };
const node = { id: "n1", address: "127.0.0.1:7000", state: "healthy", load };

const samples: Message[] = [
  { type: "hello", minVersion: 1, maxVersion: 1, role: "client", lastPushSeq: 0, heartbeat: 1000 },
  {
    type: "hello",
    minVersion: 1,
    maxVersion: 3,
    role: "monitor",
    sessionId: "s",
    resumeToken: "t",
    sessionEpoch: 2,
    lastPushSeq: 42,
    heartbeat: 0,
    name: "mon",
  },
  {
    type: "welcome",
    version: 1,
    nodeId: "n1",
    sessionId: "s",
    resumeToken: "t",
    resumed: true,
    lastClientSeq: 7,
    epoch: 3,
    heartbeat: 500,
    maxFrame: 1 << 20,
    sessionTtl: 60_000,
  },
  { type: "error", code: "LL_SESSION_UNKNOWN", message: "gone", fatal: false },
  { type: "error", code: "LL_SESSION_MOVED", message: "taken", fatal: true, epoch: 4 },
  { type: "msg", seq: 1, payload: bytes("hello") },
  { type: "msg", seq: Number.MAX_SAFE_INTEGER, payload: bytes("") },
  { type: "ack", upTo: 9, replies: [] },
  {
    type: "ack",
    upTo: 9,
    replies: [
      { seq: 8, payload: bytes("r8") },
      { seq: 9, payload: bytes("") },
    ],
  },
  { type: "push", seq: 3, payload: bytes("\u0000\u00ff") },
  { type: "push-ack", upTo: 3 },
  { type: "ping", id: 7, sentAt: 1234.5 },
  { type: "pong", id: 7, sentAt: 1234.5, answeredAt: 99_999.25 },
  { type: "heartbeat", seq: 11, sentAt: 5.5, state: "draining", load },
  {
    type: "heartbeat",
    seq: 12,
    sentAt: 6,
    state: "degraded",
    load,
    reason: "store unavailable: redis://r:6379/0 ✓",
  },
  { type: "topology", epoch: 4, nodes: [node, { id: "n2", address: "127.0.0.1:7001", state: "down" }] },
  {
    type: "topology",
    epoch: 5,
    nodes: [{ id: "n3", address: "127.0.0.1:7002", state: "degraded", reason: "store unavailable" }],
  },
  { type: "goaway", reason: "shutting down", deadline: 5000, nodes: [node] },
];

describe("codec", () => {
  it.each(samples.map((m) => [m.type, m] as const))("round-trips %s", (_t, msg) => {
    const back = roundTrip(msg);
    expect(back).not.toBeInstanceOf(ProtocolError);
    expect(plain(back)).toEqual(plain(msg));
  });

  it("round-trips arbitrary data messages", () => {
    const seq = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    const msg = fc.oneof(
      fc.record({ type: fc.constant("msg" as const), seq, payload: fc.uint8Array({ maxLength: 200 }) }),
      fc.record({ type: fc.constant("push" as const), seq, payload: fc.uint8Array({ maxLength: 200 }) }),
      fc.record({
        type: fc.constant("ack" as const),
        upTo: seq,
        replies: fc.array(fc.record({ seq, payload: fc.uint8Array({ maxLength: 50 }) }), { maxLength: 10 }),
      }),
      fc.record({ type: fc.constant("push-ack" as const), upTo: seq }),
    );
    fc.assert(
      fc.property(msg, (m) => {
        expect(plain(roundTrip(m as Message))).toEqual(plain(m as Message));
      }),
      { numRuns: 500 },
    );
  });

  // [description, type, body, error fragment]
  const bad: Array<[string, number, Buffer, string]> = [
    ["unknown type", 200, Buffer.alloc(0), "unknown message type 200"],
    ["short MSG", TYPE.MSG, Buffer.alloc(7), "MSG: body of 7 bytes, need 8"],
    ["sequence over 2^53", TYPE.MSG, Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), "above 2^53"],
    ["PUSH_ACK with trailing bytes", TYPE.PUSH_ACK, Buffer.alloc(9), "expected 8"],
    ["short HEARTBEAT", TYPE.HEARTBEAT, Buffer.alloc(36), "HEARTBEAT: body of 36 bytes, need 37"],
    ["HEARTBEAT with a reason over 500 bytes", TYPE.HEARTBEAT, Buffer.alloc(37 + 501), "at most 537"],
    [
      "ACK claiming a billion replies",
      TYPE.ACK,
      Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0x40, 0, 0, 0]),
      "cannot fit",
    ],
    [
      "ACK reply overrunning the body",
      TYPE.ACK,
      Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9]),
      "payload",
    ],
    ["HELLO not JSON", TYPE.HELLO, Buffer.from("{"), "HELLO: body is not JSON"],
    [
      "HELLO without a role",
      TYPE.HELLO,
      Buffer.from('{"minVersion":1,"maxVersion":1,"lastPushSeq":0,"heartbeat":0}'),
      "role",
    ],
    ["HEARTBEAT too short", TYPE.HEARTBEAT, Buffer.alloc(10), "HEARTBEAT"],
    [
      "PING with NaN time",
      TYPE.PING,
      Buffer.from([0, 0, 0, 1, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]),
      "not a number",
    ],
  ];
  it.each(bad)("rejects %s", (_d, type, body, fragment) => {
    const r = decodeMessage({ type, body });
    expect(r).toBeInstanceOf(ProtocolError);
    expect((r as ProtocolError).message).toContain(fragment);
  });

  it("ignores unknown fields in control messages (a newer peer may add some)", () => {
    const body = Buffer.from(JSON.stringify({ code: "X", message: "m", fatal: true, future: { x: 1 } }));
    expect(decodeMessage({ type: TYPE.ERROR, body })).toEqual({
      type: "error",
      code: "X",
      message: "m",
      fatal: true,
    });
  });
});

describe("the parser and codec on hostile input", () => {
  it("any bytes either parse or yield a protocol error (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const p = new FrameParser(256);
        for (const c of chunks) {
          const r = p.push(c);
          for (const f of r.frames) {
            const m = decodeMessage(f);
            expect(m instanceof ProtocolError || typeof (m as Message).type === "string").toBe(true);
          }
          if (r.error) {
            expect(r.error).toBeInstanceOf(ProtocolError);
            break;
          }
          expect(p.pending).toBeLessThanOrEqual(256 + 5);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("100,000 random frames of every type decode to a message or a ProtocolError, never a throw", () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const types = Object.values(TYPE);
    let errors = 0;
    for (let i = 0; i < 100_000; i++) {
      const type = i % 10 === 0 ? Math.floor(rand() * 256) : types[Math.floor(rand() * types.length)]!;
      const len = Math.floor(rand() * 48);
      const body = Buffer.allocUnsafe(len);
      for (let j = 0; j < len; j++) body[j] = Math.floor(rand() * 256);
      // bias some JSON bodies towards plausible shapes
      const frame =
        i % 7 === 0
          ? encodeFrame(type, Buffer.from(`{"code":${len},"x":[${body[0] ?? 0}]}`))
          : encodeFrame(type, body);
      const parsed = new FrameParser().push(frame);
      for (const f of parsed.frames) {
        const m = decodeMessage(f);
        if (m instanceof ProtocolError) errors++;
      }
    }
    expect(errors).toBeGreaterThan(50_000);
  });
});
