/**
 * Client failover when a node fails: Lifeline's client against the seed's loop
 * (`strategy: "classic"`), side by side, on the same cluster and the same faults.
 *
 *   npx tsx bench/failover.ts [--kills 30] [--freezes 6] [--clients 10] [--quick] [--out DIR]
 *
 * Three `lifeline node` processes share one SQLite file (in /dev/shm when there is one).
 * `--clients` clients of each strategy (in this process) send a steady stream of messages
 * with unique ids, 4 in flight each, and check every reply. Trials alternate between the
 * strategies; each faults the node that holds the most clients of its strategy: `kill` is SIGKILL, then a restart
 * on the same port; `freeze` is SIGSTOP for up to 10 s, then SIGCONT and a graceful
 * restart. The failover time of a client is from just before the signal to its `connected`
 * event on another node; one that has not moved within 10 s counts as "not moved".
 * At the end every client flushes and closes: `lost` counts messages never answered,
 * `duplicated` replies that arrived twice or did not match their message.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LocalCluster } from "../src/cli/local-cluster.ts";
import { createClient, type LifelineClient } from "../src/client/client.ts";
import { repoRoot } from "./lib/children.ts";
import { hostInfo, markdownTable, num, writeResults } from "./lib/report.ts";
import { quantile } from "./lib/stats.ts";
import { barChart, writeChart } from "./lib/svg-chart.ts";

const { values: args } = parseArgs({
  options: {
    kills: { type: "string", default: "30" },
    freezes: { type: "string", default: "6" },
    clients: { type: "string", default: "10" },
    quick: { type: "boolean", default: false },
    out: { type: "string", default: join(repoRoot, "bench", "results") },
  },
});
const KILLS = args.quick ? 3 : Number(args.kills);
const FREEZES = args.quick ? 1 : Number(args.freezes);
const CLIENTS = args.quick ? 2 : Number(args.clients);
const IN_FLIGHT = 4;
const CAP = 10_000;
const STRATEGIES = ["lifeline", "classic"] as const;
type Strategy = (typeof STRATEGIES)[number];
type Fault = "kill" | "freeze";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const dir = mkdtempSync(join(base, "lifeline-failover-bench-"));
let cluster: LocalCluster | undefined;

process.on("SIGINT", () => {
  void (async () => {
    await cluster?.close(500);
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  })();
});

interface Traffic {
  client: LifelineClient;
  strategy: Strategy;
  sent: number;
  replied: Map<string, number>;
  wrong: number;
  stop: boolean;
  loops: Promise<void>[];
}

function startTraffic(t: Traffic, index: number): void {
  for (let lane = 0; lane < IN_FLIGHT; lane++) {
    t.loops.push(
      (async () => {
        while (!t.stop) {
          const id = `${t.strategy}-${index}-${lane}-${t.sent++}`;
          try {
            const reply = Buffer.from(await t.client.send(id)).toString("utf8");
            if (reply !== id) t.wrong++;
            t.replied.set(id, (t.replied.get(id) ?? 0) + 1);
          } catch {
            return; // closed
          }
          await sleep(5);
        }
      })(),
    );
  }
}

/** Resolves with ms from `t0` to the client's next `connected` on a node other than `from`, or undefined. */
function movedAway(c: LifelineClient, from: string, t0: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      c.off("connected", on);
      resolve(undefined);
    }, CAP);
    const on = (e: { node: string }) => {
      if (e.node === from) return;
      clearTimeout(timer);
      c.off("connected", on);
      resolve(performance.now() - t0);
    };
    c.on("connected", on);
  });
}

async function main(): Promise<void> {
  cluster = new LocalCluster({ store: `sqlite:${join(dir, "failover.db")}`, drainDeadline: 2000 });
  await cluster.start();
  const traffic: Traffic[] = [];
  for (const strategy of STRATEGIES) {
    for (let i = 0; i < CLIENTS; i++) {
      const client = createClient({ servers: cluster.addresses, strategy });
      await client.connect();
      const t: Traffic = { client, strategy, sent: 0, replied: new Map(), wrong: 0, stop: false, loops: [] };
      startTraffic(t, i);
      traffic.push(t);
    }
  }
  const times: Record<Strategy, Record<Fault, { moved: number[]; missed: number; trials: number }>> = {
    lifeline: { kill: { moved: [], missed: 0, trials: 0 }, freeze: { moved: [], missed: 0, trials: 0 } },
    classic: { kill: { moved: [], missed: 0, trials: 0 }, freeze: { moved: [], missed: 0, trials: 0 } },
  };
  // Trials alternate between the strategies; each faults the node holding the most clients
  // of its strategy, so every trial moves some.
  const plan: Array<{ fault: Fault; strategy: Strategy }> = [];
  for (const fault of ["kill", "freeze"] as const) {
    for (let i = 0; i < (fault === "kill" ? KILLS : FREEZES); i++) {
      for (const strategy of STRATEGIES) plan.push({ fault, strategy });
    }
  }
  let trial = 0;
  for (const { fault, strategy } of plan) {
    trial++;
    await sleep(500);
    const count = new Map<string, number>();
    for (const t of traffic) {
      const n = t.client.status().node;
      if (n && t.strategy === strategy) count.set(n, (count.get(n) ?? 0) + 1);
    }
    const victim = [...count].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
    if (!victim) continue;
    const on = traffic.filter((t) => t.client.status().node === victim);
    const t0 = performance.now();
    const waits = on.map((t) => movedAway(t.client, victim, t0));
    if (fault === "kill") await cluster.kill(victim);
    else cluster.freeze(victim);
    const results = await Promise.all(waits);
    on.forEach((t, i) => {
      const cell = times[t.strategy][fault];
      const r = results[i];
      if (r === undefined) cell.missed++;
      else cell.moved.push(r);
    });
    times[strategy][fault].trials++;
    if (process.env.FAILOVER_DEBUG) {
      for (let i = 0; i < on.length; i++) {
        if (results[i] !== undefined) continue;
        const st = on[i]!.client.status();
        process.stderr.write(
          `  not moved: ${on[i]!.strategy} ${st.node} ${st.state} ${st.lastError?.code} ${st.lastError?.message} q=${JSON.stringify(st.queue)}\n`,
        );
      }
    }
    if (fault === "freeze") cluster.thaw(victim);
    await cluster.restart(victim);
    const done = results.filter((r) => r !== undefined).map((r) => Math.round(r!));
    process.stderr.write(
      `trial ${trial}/${plan.length} (${strategy}): ${fault} ${victim}, ${on.length} clients moved in ${done.join(", ") || "-"} ms\n`,
    );
  }
  for (const t of traffic) t.stop = true;
  for (const t of traffic) await Promise.all(t.loops);
  const closeReports = await Promise.all(traffic.map((t) => t.client.close({ timeout: 10_000 })));
  const pids = cluster.allPids;
  await cluster.close();
  cluster = undefined;

  const rows: Array<Array<string | number>> = [];
  const json: Record<string, unknown>[] = [];
  /** Failover-time quantiles per strategy and fault, for the chart. */
  const quantiles = new Map<string, Array<number | null>>();
  for (const s of STRATEGIES) {
    const mine = traffic.filter((t) => t.strategy === s);
    const sent = mine.reduce((a, t) => a + t.replied.size, 0);
    const attempted = mine.reduce((a, t) => a + t.sent, 0);
    const lost = attempted - sent;
    const duplicated = mine.reduce(
      (a, t) => a + t.wrong + [...t.replied.values()].filter((n) => n > 1).length,
      0,
    );
    for (const f of ["kill", "freeze"] as const) {
      const c = times[s][f];
      const sorted = [...c.moved].sort((a, b) => a - b);
      quantiles.set(
        `${s}/${f}`,
        [0.5, 0.9, 0.99].map((q) => (sorted.length > 0 ? quantile(sorted, q) : null)),
      );
      rows.push([
        s,
        f === "kill" ? "SIGKILL" : "SIGSTOP",
        c.trials,
        sorted.length + c.missed,
        num(quantile(sorted, 0.5), 1),
        num(quantile(sorted, 0.9), 1),
        num(quantile(sorted, 0.99), 1),
        num(sorted[sorted.length - 1], 1),
        c.missed,
        lost,
        duplicated,
      ]);
      json.push({
        strategy: s,
        fault: f,
        trials: c.trials,
        moved: sorted,
        notDetected: c.missed,
        lost,
        duplicated,
        answered: sent,
      });
    }
  }
  const headers = [
    "strategy",
    "fault",
    "trials",
    "clients moved",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "not moved",
    "lost",
    "duplicated",
  ];
  const table = markdownTable(headers, rows);
  const host = hostInfo();
  const md = [
    "# failover",
    "",
    "Command: `npx tsx bench/failover.ts`  ",
    `Date: ${new Date().toISOString()}  `,
    `Host: node ${host.node}, ${host.platform}, ${host.cpus} CPUs, load ${JSON.stringify(host.loadavg)}`,
    "",
    `${CLIENTS} clients per strategy, ${IN_FLIGHT} messages in flight each, echo app, three nodes on one SQLite file; ${KILLS} SIGKILL and ${FREEZES} SIGSTOP trials, per strategy, each on the node holding the most clients of that strategy (clients of the other strategy on it move too and are counted). Failover time: from the signal to the client's \`connected\` on another node (cap ${CAP / 1000} s). lost / duplicated: over the whole run, per strategy, from the replies themselves.`,
    "",
    table,
    "",
    "![Failover time per strategy and fault: p50, p90, p99](failover.svg)",
    "",
    "Lifeline's client notices a crash from the RST at once and resumes on another node with no delay; a frozen node from the heartbeat silence (`deadAfter` 2 s). The classic loop learns of a crash just as fast (the kernel resets the connections of a killed process) but has no heartbeat watch: a frozen node holds it until the node comes back.",
    "",
    "`not moved` for Lifeline's client under SIGSTOP: when the node is frozen inside a SQLite write transaction it keeps the file's write lock, and the surviving nodes cannot claim sessions until it thaws (the clients do detect the silence and try every node; see `FAILOVER_DEBUG=1`). That is the shared-SQLite store's limit, not the client's; a store without a lock a stopped process can hold (Redis, issue 8) removes it.",
  ].join("\n");
  console.log(table);
  const svg = barChart({
    title: "Client failover time after a node fault",
    unit: "ms from the signal to connected on another node",
    series: [...STRATEGIES],
    groups: (["kill", "freeze"] as const).flatMap((f) =>
      ["p50", "p90", "p99"].map((label, qi) => ({
        label: `${f === "kill" ? "SIGKILL" : "SIGSTOP"} ${label}`,
        values: STRATEGIES.map((s) => quantiles.get(`${s}/${f}`)?.[qi] ?? null),
      })),
    ),
    log: true,
    note: `n/a: no client of that strategy moved within the ${CAP / 1000} s cap (the classic loop waits for a frozen node to come back).`,
  });
  const chart = writeChart(args.out, "failover", svg);
  const written = writeResults(
    args.out,
    "failover",
    { host, clients: CLIENTS, kills: KILLS, freezes: FREEZES, rows: json, closeReports, pids, dir },
    md,
  );
  console.log(`results: ${[...written, chart].join(", ")}`);
}

main()
  .catch(async (err) => {
    console.error(err);
    process.exitCode = 1;
    await cluster?.close(500);
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
