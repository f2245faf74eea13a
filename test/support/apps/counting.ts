import { appendFileSync } from "node:fs";
import type { App } from "../../../src/node/app.ts";

/**
 * `counting`: a test app (`lifeline node --app test/support/apps/counting.ts`) that makes
 * every handler run visible, so a test can tell "processed once" from "run again".
 *
 * A message is JSON: {"id": "a1", "push"?: n, "holdOn"?: "node-id"}. The handler
 * - appends a line {"node","pid","id"} to the file named by $COUNTING_LOG as soon as it
 *   starts: a side effect outside the store, so it records every run, committed or not;
 * - if `holdOn` is the id of the node running it, never returns (that node never commits
 *   the message, nor anything queued behind it: the test kills it meanwhile);
 * - publishes "ran:<id>" to the topic `runs` (committed with the message's reply, so the
 *   topic holds each committed message exactly once);
 * - pushes `push` messages "<id>/1", "<id>/2"... to the session;
 * - replies {"node","run","id"}, where `run` counts this process's handler runs (1, 2...).
 */
let runs = 0;

export const app: App = {
  name: "counting",
  async handle(payload, ctx) {
    const msg = JSON.parse(Buffer.from(payload).toString("utf8")) as {
      id: string;
      push?: number;
      holdOn?: string;
    };
    const node = ctx.session.nodeId;
    const log = process.env.COUNTING_LOG;
    if (log) appendFileSync(log, `${JSON.stringify({ node, pid: process.pid, id: msg.id })}\n`);
    const run = ++runs;
    if (msg.holdOn === node) await new Promise<never>(() => {});
    ctx.publish("runs", `ran:${msg.id}`);
    for (let i = 1; i <= (msg.push ?? 0); i++) ctx.push(`${msg.id}/${i}`);
    return JSON.stringify({ node, run, id: msg.id });
  },
};

export default app;
