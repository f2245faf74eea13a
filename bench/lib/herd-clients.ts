/**
 * A process of failover clients for bench/herd.ts: `count` clients made with the library's
 * `createClient`, each sending `rate` messages a second and checking every reply.
 *
 *   HERD_CONFIG='{"strategy":"lifeline","servers":[...],...}' node --import tsx bench/lib/herd-clients.ts
 *
 * Stdout, one JSON line each:
 * - `ready` once every client is connected (lifeline clients: and has learned every node
 *   from a TOPOLOGY frame) and sending;
 * - `tick` every 100 ms: how many clients are on the victim, have left it, have resumed;
 * - `result` after the `stop` command (a line `{"cmd":"stop"}` on stdin): each client's
 *   record (see `ClientResult`), after its traffic stopped and it flushed and closed, and
 *   this process's event-loop delay since `ready` (`loopLag`: p99 and max, ms).
 *
 * Times are wall-clock ms with sub-millisecond precision (`performance.timeOrigin +
 * performance.now()`), comparable with the parent's. A client's event starts when it sees its
 * connection to the victim close (`disconnected` from that node); reconnect attempts are the
 * calls of its transport (`connect` option) from then on. Exits at once on SIGTERM/SIGINT
 * or when stdin closes (the parent is gone).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { createClient, type LifelineClient } from "../../src/client/client.ts";
import { type Connector, tcpConnector } from "../../src/client/link.ts";

export interface HerdClientsConfig {
  strategy: "lifeline" | "classic";
  /** The `servers` option. */
  servers: string[];
  /** Every node's address: lifeline clients are ready once a TOPOLOGY lists them all. */
  all: string[];
  /** The node that will be killed. */
  victim: string;
  count: number;
  /** Index of this process's first client (ids are global). */
  first: number;
  /** Messages a second per client. */
  rate: number;
  /** Clients connecting at once. */
  batch: number;
}

export interface ClientResult {
  i: number;
  session: string | undefined;
  /** The session id at the end (must be the same). */
  sessionEnd: string | undefined;
  /** Node before the kill, and at the end. */
  nodeBefore: string | undefined;
  nodeEnd: string | undefined;
  /** When it saw its connection to the victim close. */
  leftAt: number | undefined;
  /** Its first `connected` after that: when, where, whether its session resumed. */
  resumeAt: number | undefined;
  resumeNode: string | undefined;
  resumed: boolean | undefined;
  /** Transport calls from leftAt to the first connect after it, and up to the stop. */
  attempts: number;
  attemptsTotal: number;
  /** `connected` events after leftAt (more than one: it was moved again). */
  connects: number;
  lastConnectAt: number | undefined;
  /** `disconnected` from another node than the victim after leftAt: error codes. */
  thrownOff: string[];
  sessionLost: number;
  sent: number;
  answered: number;
  /** Replies that were not their message. */
  mismatched: number;
  /** send() rejections by code. */
  failed: Record<string, number>;
  maxLatency: number;
  /** Latencies (ms) of the messages sent before the resume and answered after leftAt: the
   *  ones the failover held up. */
  crossed: number[];
}

const cfgText = process.env.HERD_CONFIG;
if (!cfgText) {
  process.stderr.write("herd-clients: set HERD_CONFIG\n");
  process.exit(2);
}
const cfg = JSON.parse(cfgText) as HerdClientsConfig;
const now = () => performance.timeOrigin + performance.now();
const write = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => process.exit(0));

interface Rec extends ClientResult {
  client: LifelineClient;
  learned: boolean;
  timer: NodeJS.Timeout | undefined;
  pending: Set<Promise<void>>;
  sends: Array<{ at: number; latency?: number }>;
}

const recs: Rec[] = [];
let stopping = false;

function makeClient(i: number): Rec {
  const rec = {
    i,
    learned: cfg.strategy === "classic",
    timer: undefined,
    pending: new Set(),
    sends: [],
    session: undefined,
    sessionEnd: undefined,
    nodeBefore: undefined,
    nodeEnd: undefined,
    leftAt: undefined,
    resumeAt: undefined,
    resumeNode: undefined,
    resumed: undefined,
    attempts: 0,
    attemptsTotal: 0,
    connects: 0,
    lastConnectAt: undefined,
    thrownOff: [],
    sessionLost: 0,
    sent: 0,
    answered: 0,
    mismatched: 0,
    failed: {},
    maxLatency: 0,
    crossed: [],
  } as unknown as Rec;
  // The real TCP transport, counting attempts and reading TOPOLOGY frames (the listener is
  // attached before the client's own and before the link starts delivering).
  const connect: Connector = (opts) => {
    if (rec.leftAt !== undefined) {
      rec.attemptsTotal++;
      if (rec.resumeAt === undefined) rec.attempts++;
    }
    return tcpConnector(opts).then((link) => {
      if (!rec.learned) {
        link.on("message", (m) => {
          if (m.type !== "topology") return;
          const listed = new Set(m.nodes.flatMap((n) => (n.address ? [n.address] : [])));
          if (cfg.all.every((a) => listed.has(a))) rec.learned = true;
        });
      }
      return link;
    });
  };
  const client = createClient({ servers: cfg.servers, strategy: cfg.strategy, name: `c${i}`, connect });
  rec.client = client;
  client.on("disconnected", (e) => {
    if (e.node === cfg.victim) rec.leftAt ??= now();
    else if (rec.leftAt !== undefined && !stopping) rec.thrownOff.push(e.error?.code ?? "closed");
  });
  client.on("connected", (e) => {
    if (rec.leftAt === undefined) return;
    const at = now();
    rec.connects++;
    rec.lastConnectAt = at;
    if (rec.resumeAt === undefined) {
      rec.resumeAt = at;
      rec.resumeNode = e.node;
      rec.resumed = e.resumed;
    }
  });
  client.on("session-lost", () => rec.sessionLost++);
  return rec;
}

function sendOne(rec: Rec): void {
  const n = ++rec.sent;
  const id = `c${rec.i}-${n}`;
  const entry: { at: number; latency?: number } = { at: now() };
  rec.sends.push(entry);
  const p = rec.client.send(id).then(
    (reply) => {
      const t = now();
      entry.latency = t - entry.at;
      rec.answered++;
      if (Buffer.from(reply).toString("utf8") !== id) rec.mismatched++;
      rec.maxLatency = Math.max(rec.maxLatency, entry.latency);
      if (
        rec.leftAt !== undefined &&
        t >= rec.leftAt &&
        (rec.resumeAt === undefined || entry.at < rec.resumeAt)
      )
        rec.crossed.push(Math.round(entry.latency * 10) / 10);
    },
    (err: unknown) => {
      const code = (err as { code?: string }).code ?? "error";
      rec.failed[code] = (rec.failed[code] ?? 0) + 1;
    },
  );
  rec.pending.add(p);
  void p.finally(() => rec.pending.delete(p));
}

function startTraffic(rec: Rec): void {
  const period = 1000 / cfg.rate;
  // A random phase, so the messages of all clients are spread over the second.
  rec.timer = setTimeout(() => {
    sendOne(rec);
    rec.timer = setInterval(() => sendOne(rec), period);
  }, Math.random() * period);
}

async function main(): Promise<void> {
  for (let k = 0; k < cfg.count; k++) recs.push(makeClient(cfg.first + k));
  for (let k = 0; k < recs.length; k += cfg.batch) {
    await Promise.all(recs.slice(k, k + cfg.batch).map((r) => r.client.connect({ timeout: 30_000 })));
  }
  const end = Date.now() + 15_000;
  while (recs.some((r) => !r.learned)) {
    if (Date.now() > end)
      throw new Error(`${recs.filter((r) => !r.learned).length} clients got no full TOPOLOGY`);
    await sleep(20);
  }
  for (const r of recs) {
    r.session = r.client.status().sessionId;
    r.nodeBefore = r.client.status().node;
    startTraffic(r);
  }
  const tick = () => {
    let onVictim = 0;
    let left = 0;
    let resumed = 0;
    let lastConnectAt = 0;
    for (const r of recs) {
      if (r.client.status().node === cfg.victim) onVictim++;
      if (r.leftAt !== undefined) left++;
      if (r.resumeAt !== undefined) resumed++;
      lastConnectAt = Math.max(lastConnectAt, r.lastConnectAt ?? 0);
    }
    write({ type: "tick", onVictim, left, resumed, lastConnectAt });
  };
  // This process's own event-loop delay: how late it may have seen (and timed) an event.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  write({ type: "ready", pid: process.pid, clients: recs.length });
  tick();
  const ticker = setInterval(tick, 100);

  const lines = createInterface({ input: process.stdin });
  lines.on("close", () => process.exit(0)); // the parent is gone
  await new Promise<void>((resolve) => {
    lines.on("line", (l) => {
      if (l.includes('"stop"')) resolve();
    });
  });
  clearInterval(ticker);
  lag.disable();
  stopping = true;
  for (const r of recs) {
    clearInterval(r.timer);
    r.nodeEnd = r.client.status().node;
  }
  // Every message gets its reply (or its error) before the client closes; close() then
  // flushes whatever is left.
  await Promise.race([Promise.all(recs.flatMap((r) => [...r.pending])), sleep(10_000)]);
  await Promise.all(recs.map((r) => r.client.close({ timeout: 5000 })));
  await Promise.all(recs.flatMap((r) => [...r.pending]));
  const results: ClientResult[] = recs.map((r) => {
    const st = r.client.status();
    return {
      i: r.i,
      session: r.session,
      sessionEnd: st.sessionId,
      nodeBefore: r.nodeBefore,
      nodeEnd: r.nodeEnd,
      leftAt: r.leftAt,
      resumeAt: r.resumeAt,
      resumeNode: r.resumeNode,
      resumed: r.resumed,
      attempts: r.attempts,
      attemptsTotal: r.attemptsTotal,
      connects: r.connects,
      lastConnectAt: r.lastConnectAt,
      thrownOff: r.thrownOff,
      sessionLost: r.sessionLost,
      sent: r.sent,
      answered: r.answered,
      mismatched: r.mismatched,
      failed: r.failed,
      maxLatency: Math.round(r.maxLatency * 10) / 10,
      crossed: r.crossed,
    };
  });
  // Exit once the line is out (a pipe's writes may be asynchronous).
  const loopLag = { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 };
  process.stdout.write(`${JSON.stringify({ type: "result", clients: results, loopLag })}\n`, () =>
    process.exit(0),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`herd-clients: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
