import { describe, expect, it } from "vitest";
import {
  decodeBody,
  decodeWire,
  encodeBody,
  encodeMessage,
  encodeWire,
  frameOverhead,
  MAX_META_BYTES,
} from "../../src/membership/codec.ts";
import type { Message } from "../../src/membership/messages.ts";

const meta = { client: "10.0.0.1:7400", role: "node", lag: "3.5" };
const samples: Message[] = [
  { type: "ping", seq: 1, target: "node-1" },
  { type: "pingReq", seq: 4294967295, target: "n2", address: "10.0.0.2:7946", nack: true, window: 500 },
  { type: "ack", seq: 7 },
  { type: "nack", seq: 8 },
  { type: "alive", id: "nœud-é", incarnation: 3, address: "[::1]:7946", meta },
  { type: "suspect", id: "n3", incarnation: 9, from: "n1" },
  { type: "dead", id: "n3", incarnation: 9, from: "n3" },
  {
    type: "pushPull",
    join: true,
    members: [
      { id: "a", address: "a:1", meta: {}, incarnation: 0, state: "alive" },
      { id: "b", address: "b:1", meta, incarnation: 2, state: "suspect" },
      { id: "c", address: "c:1", meta: {}, incarnation: 5, state: "dead" },
      { id: "d", address: "d:1", meta: {}, incarnation: 1, state: "left" },
    ],
  },
];

function roundTrip(messages: Message[]) {
  const wire = encodeWire("lifeline", false, encodeBody("me", messages.map(encodeMessage)));
  const w = decodeWire(wire);
  expect(w).toMatchObject({ cluster: "lifeline", sealed: false });
  return decodeBody(w.body);
}

describe("membership codec", () => {
  it.each(samples.map((m) => [m.type, m] as const))("round-trips %s", (_, m) => {
    expect(roundTrip([m])).toEqual({ sender: "me", messages: [m] });
  });

  it("carries a message with its piggybacked updates in one frame", () => {
    expect(roundTrip(samples).messages).toEqual(samples);
  });

  it("keeps a ping with a dozen alive updates under 1400 bytes", () => {
    const parts = [encodeMessage({ type: "ping", seq: 1, target: "node-17" })];
    for (let i = 0; i < 12; i++)
      parts.push(
        encodeMessage({ type: "alive", id: `node-${i}`, incarnation: i, address: `10.0.0.${i}:7946`, meta }),
      );
    const size = encodeWire("lifeline", false, encodeBody("node-1", parts)).length;
    expect(size).toBeLessThan(1400);
    expect(frameOverhead("lifeline", "node-1")).toBe(5 + 8 + 6);
  });

  it("skips message types it does not know (newer peers)", () => {
    const unknown = Uint8Array.of(200, 3, 1, 2, 3);
    const body = encodeBody("me", [unknown, encodeMessage({ type: "ack", seq: 5 })]);
    expect(decodeBody(body).messages).toEqual([{ type: "ack", seq: 5 }]);
  });

  it("rejects truncated, trailing and oversized input", () => {
    const body = encodeBody("me", [encodeMessage(samples[4]!)]);
    expect(() => decodeBody(body.subarray(0, body.length - 3))).toThrow(/truncated/);
    expect(() => decodeBody(Buffer.concat([body, Buffer.of(0)]))).toThrow(/trailing/);
    expect(() => decodeWire(Uint8Array.of(9, 0, 0))).toThrow(/version/);
    expect(() => decodeWire(Uint8Array.of())).toThrow(/truncated/);
  });

  it("refuses to encode metadata or ids over their bounds", () => {
    const big = { blob: "x".repeat(MAX_META_BYTES) };
    expect(() =>
      encodeMessage({ type: "alive", id: "a", incarnation: 0, address: "a:1", meta: big }),
    ).toThrow(/metadata/);
    expect(() => encodeMessage({ type: "ping", seq: 1, target: "x".repeat(200) })).toThrow(/over 128/);
  });

  it("survives random bytes without throwing anything but ProtocolError", () => {
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const good = encodeBody("me", samples.map(encodeMessage));
    for (let i = 0; i < 500; i++) {
      const b = Buffer.from(good);
      for (let j = 0; j < 4; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        decodeBody(b.subarray(0, Math.floor(rnd() * b.length)));
      } catch (err) {
        expect((err as Error).name).toBe("ProtocolError");
      }
    }
  });
});
