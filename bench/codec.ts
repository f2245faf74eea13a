/**
 * bench/codec: why the data path is fixed-layout binary. Encodes and decodes MSG and ACK
 * messages (100-byte and 4 KiB payloads) with Lifeline's codec, with JSON (payload as
 * base64, as JSON cannot carry bytes) and with MessagePack (msgpackr, a fast
 * implementation), and prints operations per second for each.
 *
 *   npx tsx bench/codec.ts [--seconds 1] [--quick] [--out DIR]
 */
import { pack, unpack } from "msgpackr";
import { decodeMessage, encodeMessage } from "../src/protocol/codec.ts";
import { encodeFrame, FrameParser } from "../src/protocol/frame.ts";
import type { Message } from "../src/protocol/messages.ts";
import { hostInfo, markdownTable, num, writeResults } from "./lib/report.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const seconds = Number(args[args.indexOf("--seconds") + 1] ?? "") || (quick ? 0.2 : 1);

interface Codec {
  name: string;
  encode(m: Message): Buffer;
  decode(b: Buffer): unknown;
}

const lifeline: Codec = {
  name: "lifeline (binary)",
  encode: encodeMessage,
  decode: (b) => {
    const { frames } = new FrameParser().push(b);
    return decodeMessage(frames[0]!);
  },
};

function toJson(m: Message): unknown {
  if (m.type === "msg") return { t: 4, seq: m.seq, payload: Buffer.from(m.payload).toString("base64") };
  if (m.type === "ack") {
    return {
      t: 5,
      upTo: m.upTo,
      replies: m.replies.map((r) => ({ seq: r.seq, payload: Buffer.from(r.payload).toString("base64") })),
    };
  }
  return m;
}

const json: Codec = {
  name: "JSON + base64",
  encode: (m) => encodeFrame(0, Buffer.from(JSON.stringify(toJson(m)))),
  decode: (b) => {
    const v = JSON.parse(b.toString("utf8", 5)) as { payload?: string; replies?: Array<{ payload: string }> };
    if (v.payload) Buffer.from(v.payload, "base64");
    for (const r of v.replies ?? []) Buffer.from(r.payload, "base64");
    return v;
  },
};

const msgpack: Codec = {
  name: "MessagePack (msgpackr)",
  encode: (m) => encodeFrame(0, pack(m)),
  decode: (b) => unpack(b.subarray(5)),
};

function rate(fn: () => void): number {
  for (let i = 0; i < 2000; i++) fn(); // warm up
  let n = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 200; i++) fn();
    n += 200;
  }
  return n / seconds;
}

const cases: Array<[string, Message]> = [
  ["MSG 100 B", { type: "msg", seq: 123_456, payload: Buffer.alloc(100, 7) }],
  ["MSG 4 KiB", { type: "msg", seq: 123_456, payload: Buffer.alloc(4096, 7) }],
  [
    "ACK, 16 replies of 100 B",
    {
      type: "ack",
      upTo: 1000,
      replies: Array.from({ length: 16 }, (_, i) => ({ seq: 985 + i, payload: Buffer.alloc(100, i) })),
    },
  ],
];

const rows: Array<Array<string | number>> = [];
const results: Array<Record<string, unknown>> = [];
for (const [label, msg] of cases) {
  for (const codec of [lifeline, json, msgpack]) {
    const bytes = codec.encode(msg);
    const enc = rate(() => codec.encode(msg));
    const dec = rate(() => codec.decode(bytes));
    rows.push([label, codec.name, bytes.length, num(enc / 1000, 0), num(dec / 1000, 0)]);
    results.push({
      message: label,
      codec: codec.name,
      bytes: bytes.length,
      encodePerSec: enc,
      decodePerSec: dec,
    });
  }
}
const table = markdownTable(["message", "codec", "bytes", "encode k/s", "decode k/s"], rows);
console.log(table);
const NO_CLASSIC =
  "No classic row: the seed defines no wire format, and `--profile classic` changes timeouts and " +
  "probing, not the codec. JSON + base64 is the text baseline a seed-style client would use.";
const md = `# codec\n\nCommand: \`npx tsx bench/codec.ts${args.length ? ` ${args.join(" ")}` : ""}\`\n\n${table}\n\n${NO_CLASSIC}\n`;
// Results go to bench/results (full runs only: a quick run must not replace them) or --out.
const outAt = args.indexOf("--out");
if (outAt >= 0) writeResults(args[outAt + 1]!, "codec", { host: hostInfo(), results }, md);
else if (!quick)
  writeResults(new URL("./results/", import.meta.url).pathname, "codec", { host: hostInfo(), results }, md);
