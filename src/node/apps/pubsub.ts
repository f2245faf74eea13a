import { z } from "zod";
import type { App, AppContext } from "../app.ts";

/**
 * `pubsub`: durable topics in the store. Messages are JSON commands:
 *
 *   {"op":"publish","topic":"t","data":"text"}          → {"ok":true}
 *   {"op":"subscribe","topic":"t","after":0|"end"}      → {"ok":true,"head":N}
 *     (`after` beyond the current head counts as the head: nothing to come is skipped)
 *   {"op":"unsubscribe","topic":"t"}                    → {"ok":true}
 *   {"op":"head","topic":"t"}                           → {"ok":true,"head":N}
 *   {"op":"read","topic":"t","after":N,"limit":100}     → {"ok":true,"entries":[{offset,at,data}]}
 *
 * `data` is a string (UTF-8); binary payloads go base64 in `data64` instead. A publish is
 * appended exactly once (it is committed with the message's de-duplication record).
 * Subscribers receive entries as PUSHes whose payload is a delivery envelope (topic,
 * offset, time, data: see src/store/delivery.ts), in order, once each, whichever node
 * they are connected to; the subscription and its offset live in the store, so a client
 * that resumes its session on another node carries on where it was.
 * Malformed commands get {"ok":false,"error":"..."} and change nothing.
 */
const topic = z.string().min(1).max(256);
const command = z.discriminatedUnion("op", [
  z.object({ op: z.literal("publish"), topic, data: z.string().optional(), data64: z.string().optional() }),
  z.object({
    op: z.literal("subscribe"),
    topic,
    after: z.union([z.number().int().min(0), z.literal("end")]).default("end"),
  }),
  z.object({ op: z.literal("unsubscribe"), topic }),
  z.object({ op: z.literal("head"), topic }),
  z.object({
    op: z.literal("read"),
    topic,
    after: z.number().int().min(0).default(0),
    limit: z.number().int().min(1).max(1000).default(100),
  }),
]);

const reply = (value: unknown) => JSON.stringify(value);

async function run(payload: Uint8Array, ctx: AppContext): Promise<string> {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    return reply({ ok: false, error: "not JSON" });
  }
  const parsed = command.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return reply({ ok: false, error: `${issue.path.join(".") || "command"}: ${issue.message}` });
  }
  const c = parsed.data;
  switch (c.op) {
    case "publish": {
      const data =
        c.data64 !== undefined ? Buffer.from(c.data64, "base64") : Buffer.from(c.data ?? "", "utf8");
      ctx.publish(c.topic, data);
      return reply({ ok: true });
    }
    case "subscribe": {
      // An offset past the end (a topic that was reset, a client's stale memory) would
      // silently skip entries yet to come: start from the end instead.
      const head = await ctx.topicHead(c.topic);
      ctx.subscribe(c.topic, c.after === "end" ? "end" : Math.min(c.after, head));
      return reply({ ok: true, head });
    }
    case "unsubscribe":
      ctx.unsubscribe(c.topic);
      return reply({ ok: true });
    case "head":
      return reply({ ok: true, head: await ctx.topicHead(c.topic) });
    case "read": {
      const entries = await ctx.readTopic(c.topic, c.after, c.limit);
      return reply({
        ok: true,
        entries: entries.map((e) => ({
          offset: e.offset,
          at: e.at,
          data: Buffer.from(e.payload).toString("utf8"),
        })),
      });
    }
  }
}

export const pubsubApp: App = { name: "pubsub", handle: run };
