import type { App } from "../../src/node/app.ts";

/**
 * `herd`: the app of bench/herd.ts's nodes (`lifeline node --app bench/lib/herd-app.ts`).
 * It echoes the message and publishes it to the topic `runs` in the same commit as the
 * reply, so the store ends up holding each committed message exactly once: the benchmark
 * reads the topic after the nodes stopped and counts a message found twice as duplicated
 * (run and committed again after the failover), one it got no entry for as lost.
 */
export const app: App = {
  name: "herd",
  handle(payload, ctx) {
    ctx.publish("runs", payload);
    return payload;
  },
};

export default app;
