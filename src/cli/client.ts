import { createInterface } from "node:readline";
import { createClient, type LifelineClient } from "../client/client.ts";
import type { ClientOptions } from "../client/options.ts";
import { UsageError } from "../errors.ts";
import { parseHostPort } from "../health/probes/address.ts";
import { type CliIO, EXIT } from "./io.ts";
import { untilShutdown } from "./signals.ts";

export interface ClientFlags {
  servers: string;
  publish?: string;
  subscribe?: string;
  from?: string;
  json?: boolean;
  strategy?: string;
  outbox?: string;
  name?: string;
  connectTimeout?: string;
  flushTimeout?: string;
}

/**
 * `lifeline client`: connects to a cluster and stays connected through failures.
 * - default: each stdin line is a message; each reply is printed, in order;
 * - `--publish TOPIC`: each stdin line is published to TOPIC (pubsub app);
 * - `--subscribe TOPIC`: prints TOPIC's entries until Ctrl-C (`--from N`: after offset N).
 * Connection events go to stderr, or with `--json` everything is a JSON line on stdout.
 * Exit 0 when everything sent was acknowledged, 1 when something was not (it is reported).
 */
export async function runClient(
  flags: ClientFlags,
  io: CliIO,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<number> {
  const servers = flags.servers
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (servers.length === 0) throw new UsageError("--servers: give at least one host:port");
  for (const s of servers) if (!parseHostPort(s)) throw new UsageError(`--servers: "${s}" is not host:port`);
  if (flags.publish && flags.subscribe)
    throw new UsageError("--publish and --subscribe cannot be used together");
  if (flags.strategy && flags.strategy !== "lifeline" && flags.strategy !== "classic")
    throw new UsageError(`--strategy must be lifeline or classic, not "${flags.strategy}"`);
  const opts: ClientOptions = { servers };
  if (flags.strategy) opts.strategy = flags.strategy as "lifeline" | "classic";
  if (flags.outbox) opts.outbox = { path: flags.outbox };
  if (flags.name) opts.name = flags.name;
  if (flags.connectTimeout) opts.connectTimeout = Number(flags.connectTimeout);
  const client = createClient(opts);
  const out = (obj: Record<string, unknown>, human: string, toStdout = false) => {
    if (flags.json) io.stdout.write(`${JSON.stringify(obj)}\n`);
    else (toStdout ? io.stdout : io.stderr).write(`${human}\n`);
  };
  watchEvents(client, out);
  const shutdown = untilShutdown();
  let failed = 0;
  try {
    const connecting = client.connect();
    connecting.catch(() => {}); // connection trouble is reported by the events
    if (flags.subscribe) {
      await Promise.race([connecting, shutdown]);
      const after = flags.from === undefined ? "end" : Number(flags.from);
      if (after !== "end" && !(Number.isInteger(after) && after >= 0))
        throw new UsageError(`--from must be an offset (0, 1, ...), not "${flags.from}"`);
      const head = await client.subscribe(flags.subscribe, after);
      out(
        { type: "subscribed", topic: flags.subscribe, head },
        `subscribed to ${flags.subscribe} (head ${head})`,
      );
      const reading = (async () => {
        for await (const m of client.messages()) {
          const data = Buffer.from(m.payload).toString("utf8");
          out({ type: "entry", topic: m.topic, offset: m.offset, at: m.at, data }, data, true);
        }
      })();
      await shutdown;
      await client.close({ timeout: 1000 });
      await reading;
      return EXIT.ok;
    }
    // Lines in, replies out, in order.
    const lines = createInterface({ input: stdin, crlfDelay: Number.POSITIVE_INFINITY });
    let chain = Promise.resolve();
    let n = 0;
    const ended = new Promise<void>((resolve) => lines.once("close", resolve));
    lines.on("line", (line) => {
      const i = ++n;
      const p = flags.publish ? client.publish(flags.publish, line).then(() => undefined) : client.send(line);
      chain = chain.then(() =>
        p.then(
          (reply) => {
            if (reply === undefined)
              out({ type: "published", n: i, topic: flags.publish }, `published #${i}`);
            else {
              const text = Buffer.from(reply).toString("utf8");
              out({ type: "reply", n: i, data: text }, text, true);
            }
          },
          (err: { code?: string; message?: string }) => {
            failed++;
            out(
              { type: "failed", n: i, code: err.code, message: err.message },
              `#${i} failed: ${err.message}`,
            );
          },
        ),
      );
    });
    const why = await Promise.race([ended.then(() => "eof" as const), shutdown]);
    if (why !== "eof") lines.close();
    const flush = flags.flushTimeout === undefined ? 10_000 : Number(flags.flushTimeout);
    if (!(flush >= 0))
      throw new UsageError(`--flush-timeout must be milliseconds, not "${flags.flushTimeout}"`);
    const report = await client.close({ timeout: why === "eof" ? flush : Math.min(flush, 1000) });
    await chain;
    if (report.unsent + report.unacknowledged > 0) {
      out(
        { type: "unfinished", ...report },
        `${report.unsent} unsent and ${report.unacknowledged} unacknowledged message(s)${report.kept ? " kept in the outbox file" : ""}`,
      );
    }
    return failed > 0 || report.unsent + report.unacknowledged > 0 ? EXIT.degraded : EXIT.ok;
  } finally {
    shutdown.cancel();
    await client.close({ timeout: 0 });
  }
}

function watchEvents(
  client: LifelineClient,
  out: (obj: Record<string, unknown>, human: string) => void,
): void {
  client.on("connected", (e) =>
    out(
      { type: "connected", ...e },
      `connected to ${e.node} (${e.address})${e.resumed ? ", session resumed" : ""}`,
    ),
  );
  client.on("disconnected", (e) =>
    out(
      {
        type: "disconnected",
        node: e.node,
        address: e.address,
        code: e.error?.code,
        error: e.error?.message,
      },
      `disconnected from ${e.node}${e.error ? `: ${e.error.message}` : ""}`,
    ),
  );
  client.on("reconnecting", (e) =>
    out(
      { type: "reconnecting", attempt: e.attempt, delay: Math.round(e.delay), error: e.error?.message },
      `no server answered (attempt ${e.attempt}); retrying in ${Math.round(e.delay)} ms`,
    ),
  );
  client.on("failover", (e) =>
    out({ type: "failover", ...e }, `failover ${e.from} → ${e.to} in ${Math.round(e.took)} ms`),
  );
  client.on("goaway", (e) => out({ type: "goaway", ...e }, `${e.node} is going away (${e.reason}); moving`));
  client.on("session-lost", (e) =>
    out(
      {
        type: "session-lost",
        sessionId: e.sessionId,
        reason: e.reason,
        unacknowledged: e.unacknowledged.length,
      },
      `session ${e.sessionId} lost (${e.reason}); ${e.unacknowledged.length} message(s) may not have been processed`,
    ),
  );
  client.on("dropped", () => out({ type: "dropped" }, "a message was dropped from the full outbox"));
}
