import { ProtocolError } from "../errors.ts";

/**
 * Framing: every message travels as
 *
 *   u32 length (big-endian; counts the type byte and the body) | u8 type | body
 *
 * The parser is a pure, incremental state machine: feed it chunks as they arrive, split
 * anywhere, and it returns whole frames. It never buffers more than one frame of at most
 * `maxFrame` bytes plus a 5-byte header: an announced length over the limit is rejected
 * from the header alone, before any of the body is read. Any input either parses or yields
 * a ProtocolError; nothing else escapes.
 */
export const HEADER_BYTES = 5;
/** Default largest frame (type + body), bytes. */
export const DEFAULT_MAX_FRAME = 1024 * 1024;

export interface Frame {
  type: number;
  body: Buffer;
}

export interface ParseResult {
  frames: Frame[];
  /** Set once the stream is broken; the parser then refuses all further input. */
  error?: ProtocolError;
}

export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: ProtocolError | undefined;

  constructor(private readonly maxFrame: number = DEFAULT_MAX_FRAME) {}

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): ParseResult {
    if (this.failed) return { frames: [], error: this.failed };
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.buffered >= 4) {
      const length = this.peekLength();
      if (length < 1)
        return this.fail(new ProtocolError("empty frame: length 0", { code: "LL_PROTOCOL" }), frames);
      if (length > this.maxFrame) {
        return this.fail(
          new ProtocolError(`frame of ${length} bytes exceeds the ${this.maxFrame}-byte limit`, {
            code: "LL_FRAME_TOO_LARGE",
          }),
          frames,
        );
      }
      if (this.buffered < 4 + length) break;
      const whole = this.take(4 + length);
      frames.push({ type: whole[4]!, body: whole.subarray(HEADER_BYTES) });
    }
    return { frames };
  }

  private fail(error: ProtocolError, frames: Frame[]): ParseResult {
    this.failed = error;
    this.chunks = [];
    this.buffered = 0;
    return { frames, error };
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.alloc(4);
    let off = 0;
    for (const c of this.chunks) {
      const n = Math.min(4 - off, c.length);
      c.copy(head, off, 0, n);
      off += n;
      if (off === 4) break;
    }
    return head.readUInt32BE(0);
  }

  /** Removes and returns the first `n` bytes (a view when they lie in one chunk). */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const m = Math.min(n - off, c.length);
      c.copy(out, off, 0, m);
      off += m;
      if (m === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(m);
    }
    return out;
  }
}

/** Builds one frame from a type and a body. */
export function encodeFrame(type: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32BE(1 + body.length, 0);
  out[4] = type;
  out.set(body, HEADER_BYTES);
  return out;
}
