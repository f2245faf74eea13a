import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtocolError } from "../../src/errors.ts";
import { encodeFrame, FrameParser } from "../../src/protocol/frame.ts";

function frames(...items: Array<[number, string]>): Buffer {
  return Buffer.concat(items.map(([t, body]) => encodeFrame(t, Buffer.from(body))));
}

describe("FrameParser", () => {
  it("parses whole frames, several per chunk", () => {
    const p = new FrameParser();
    const r = p.push(frames([4, "hello"], [5, ""], [6, "x".repeat(1000)]));
    expect(r.error).toBeUndefined();
    expect(r.frames.map((f) => [f.type, f.body.toString()])).toEqual([
      [4, "hello"],
      [5, ""],
      [6, "x".repeat(1000)],
    ]);
    expect(p.pending).toBe(0);
  });

  it("parses input fed one byte at a time", () => {
    const input = frames([1, '{"a":1}'], [7, "\u0000\u0001"], [9, "abc"]);
    const p = new FrameParser();
    const got: Array<[number, string]> = [];
    for (const byte of input) {
      const r = p.push(Buffer.from([byte]));
      expect(r.error).toBeUndefined();
      for (const f of r.frames) got.push([f.type, f.body.toString("latin1")]);
    }
    expect(got).toEqual([
      [1, '{"a":1}'],
      [7, "\u0000\u0001"],
      [9, "abc"],
    ]);
  });

  it("gives the same frames however the stream is split", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 })), {
          maxLength: 20,
        }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 40 }),
        (items, cuts) => {
          const input = Buffer.concat(items.map(([t, b]) => encodeFrame(t, b)));
          const p = new FrameParser();
          const got: Array<[number, string]> = [];
          let off = 0;
          let i = 0;
          while (off < input.length) {
            const n = cuts[i++ % cuts.length]!;
            const r = p.push(input.subarray(off, off + n));
            expect(r.error).toBeUndefined();
            for (const f of r.frames) got.push([f.type, f.body.toString("hex")]);
            off += n;
          }
          expect(got).toEqual(items.map(([t, b]) => [t, Buffer.from(b).toString("hex")]));
          expect(p.pending).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects an oversize frame from its header alone, without buffering it", () => {
    const p = new FrameParser(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    const r = p.push(header);
    expect(r.error).toBeInstanceOf(ProtocolError);
    expect(r.error!.code).toBe("LL_FRAME_TOO_LARGE");
    expect(p.pending).toBe(0);
    // a broken stream stays broken
    expect(p.push(encodeFrame(1, Buffer.from("{}"))).error).toBe(r.error);
  });

  it("a 4 GiB length announcement costs nothing", () => {
    const p = new FrameParser();
    const r = p.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    expect(r.error?.code).toBe("LL_FRAME_TOO_LARGE");
  });

  it("rejects an empty frame", () => {
    const r = new FrameParser().push(Buffer.from([0, 0, 0, 0]));
    expect(r.error?.code).toBe("LL_PROTOCOL");
  });

  it("returns frames parsed before an error in the same chunk", () => {
    const r = new FrameParser(100).push(
      Buffer.concat([encodeFrame(4, Buffer.from("ok")), Buffer.from([0, 0, 1, 0])]),
    );
    expect(r.frames).toHaveLength(1);
    expect(r.error?.code).toBe("LL_FRAME_TOO_LARGE");
  });

  it("never holds more than one frame of memory", () => {
    const p = new FrameParser(4096);
    const big = encodeFrame(4, Buffer.alloc(4095));
    for (let i = 0; i < big.length - 1; i += 7) {
      p.push(big.subarray(i, Math.min(i + 7, big.length - 1)));
      expect(p.pending).toBeLessThanOrEqual(4096 + 5);
    }
    expect(p.push(big.subarray(big.length - 1)).frames).toHaveLength(1);
  });
});
