/**
 * gossip-vs-serf: Lifeline's gossip membership (src/membership: SWIM + Lifeguard) side by side
 * with HashiCorp Serf (memberlist, the implementation the design follows), in one run, on
 * loopback inside a network namespace this benchmark creates and removes.
 *
 *   npx tsx bench/gossip-vs-serf.ts [--trials N] [--window S] [--quick]
 *                                   [--systems serf,lan,memberlist] [--scenarios LIST]
 *                                   [--memberlist JSON] [--variants JSON] [--out DIR] [--run-id ID]
 *
 * Clusters of 5 members each, all running at once:
 *
 * - `serf lan`: 5 `serf agent -bind 127.0.0.1:PORT -rpc-addr 127.0.0.1:RPC -node NAME -join …`
 *   processes with the default `lan` profile (memberlist's DefaultLANConfig: probe interval
 *   1 s, probe timeout 500 ms, 3 indirect checks, suspicion multiplier 4, max timeout
 *   multiplier 6, gossip every 200 ms to 3, TCP fallback ping on). Their verdicts are read
 *   from their logs (bench/lib/gossip-serf.ts).
 * - `lifeline lan`: 5 bench/lib/gossip-agent.ts processes (`Membership` over `UdpTransport`)
 *   with Lifeline's `lan` preset (src/membership/config.ts): memberlist's LAN settings with
 *   a 500 ms protocol period, a 200 ms probe timeout and twice the retransmits, tuned with
 *   this benchmark to be faster than Serf with no more false failures.
 * - `lifeline memberlist`: the same protocol with memberlist's own LAN timing (the overrides
 *   in MEMBERLIST_TIMING, or `--memberlist JSON`): the implementations compared on equal
 *   settings.
 * - `--variants '{"name":{...overrides, "preset":"lan"}}'` adds more Lifeline clusters (to try
 *   settings side by side).
 *
 * Scenarios (`--scenarios`, default all):
 *
 * - `kill`, `stop`: detection trials, N each (default 5; --quick 1), kill and stop
 *   interleaved, each cluster its own sequence (the clusters run theirs at the same time).
 *   A trial SIGKILLs (or SIGSTOPs) one member — each member in turn — and records the time
 *   from the signal to the first survivor's `failed`/`dead` verdict and to the last of the
 *   four survivors' (and to the first suspicion, where the system shows it). A stopped member
 *   stays stopped until every survivor has declared it (or 45 s have passed). Then the member
 *   is SIGKILLed and started again under its name and port, joining the others, and the next
 *   trial waits until every member sees every other alive.
 * - `loss20`, `loss40`: 20 % and 40 % random packet loss on every member's port, for a window
 *   of S seconds (default 60; --quick 10): iptables `-m statistic --mode random` DROP rules
 *   on INPUT of the namespace for UDP to the ports and TCP to and from them (loopback packets
 *   pass INPUT once, so each packet is dropped with the probability, either direction; UDP
 *   between members goes port to port and is matched once). Needs root (skipped otherwise).
 * - `slow`: one member of each cluster is SIGSTOPped for 1.5 s every 4 s for the window
 *   (slow, not dead), all clusters on the same schedule.
 *
 * In `loss20`, `loss40` and `slow` every member is alive throughout: each `failed`/`dead`
 * verdict counted over the window, and over 25 s after it (the longest suspicion timeout at
 * 5 members with the lan settings is 24 s: a suspicion begun in the window counts for it), is
 * a false failure. Between scenarios each cluster is given 30 s to
 * converge (every member seeing every other alive again), and is restarted from scratch
 * otherwise (said in the notes).
 *
 * Prints Markdown tables on stdout and writes DIR/gossip-vs-serf.json and .md (DIR: --out,
 * else bench/results — except for a --quick run without --out, which only prints). Without
 * `serf` the Serf rows are skipped (with the reason); without root the clusters run on the
 * host and the loss scenarios are skipped.
 */
import os from "node:os";
import type { MembershipConfig } from "../src/membership/index.ts";
import { membershipConfig } from "../src/membership/index.ts";
import { addCountedLoss, readCountedLoss, type Undo } from "../test/fault/iptables.ts";
import { canUseNamespaces, type Namespace } from "../test/fault/netns.ts";
import { type CommonOptions, numberArg, parseBenchArgs, pickList, UsageError } from "./lib/args.ts";
import {
  Interrupted,
  interrupted,
  leftBehind,
  leftovers,
  runBenchmark,
  runMarker,
  stopAll,
} from "./lib/children.ts";
import {
  CLUSTER_SIZE,
  type GossipCluster as Cluster,
  freePort,
  GossipCluster,
  type GossipEvent,
  type Slot,
  type SystemSpec,
} from "./lib/gossip-cluster.ts";
import { killAllSerf, killAllSerfSync, serfVersion } from "./lib/gossip-serf.ts";
import { benchNamespace, namespaceLeft, whereRun } from "./lib/namespace.ts";
import { measureRun, type RunMeasured } from "./lib/proc.ts";
import { Progress } from "./lib/progress.ts";
import {
  type Cell,
  markdownHeader,
  markdownTable,
  num,
  type RunStart,
  runFields,
  writeResults,
} from "./lib/report.ts";
import { type Distribution, distribution } from "./lib/stats.ts";

const NAME = "gossip-vs-serf";
/** Namespaces of this benchmark: `llgs-PID-N` (cleanupLeftovers knows them by the dead pid). */
const NS_PREFIX = "llgs-";

/**
 * memberlist's DefaultLANConfig timing, as overrides of Lifeline's `lan` preset (which takes
 * a 500 ms period, a 200 ms probe timeout and retransmitMult 8 — see its documentation in
 * src/membership/config.ts for why): the "lifeline memberlist" row runs Lifeline's protocol
 * on Serf's own settings.
 */
const MEMBERLIST_TIMING: Partial<MembershipConfig> = {
  probeInterval: 1000,
  probeTimeout: 500,
  retransmitMult: 4,
};

const SYSTEM_KEYS = ["serf", "lan", "memberlist"] as const;
const SCENARIOS = ["kill", "stop", "loss20", "loss40", "slow"] as const;
type Scenario = (typeof SCENARIOS)[number];
type Fault = "kill" | "stop";
type Disturbance = "loss20" | "loss40" | "slow";
const DISTURBANCES: readonly Disturbance[] = ["loss20", "loss40", "slow"];
const LOSS: Record<"loss20" | "loss40", number> = { loss20: 0.2, loss40: 0.4 };

const SCENARIO_TITLES: Record<Scenario, string> = {
  kill: "SIGKILL of one member",
  stop: "SIGSTOP of one member (frozen, kept stopped until declared)",
  loss20: "20 % random packet loss on every member's port (UDP, and TCP both ways)",
  loss40: "40 % random packet loss on every member's port (UDP, and TCP both ways)",
  slow: "one member SIGSTOPped for 1.5 s every 4 s (slow, not dead)",
};

/** How long the survivors are watched after a fault before the trial gives up on them. */
const OBSERVE_MS = 45_000;
/** Slow member: stopped this long, every SLOW_EVERY_MS. */
const SLOW_STOP_MS = 1500;
const SLOW_EVERY_MS = 4000;
/** Before a fault: a random phase against the protocol periods. */
const PHASE_MS: [number, number] = [1000, 2500];
const CONVERGE_MS = 30_000;
/**
 * Verdicts are counted for this long after a false-failure window too: a suspicion begun in
 * the window that nobody refuted runs out up to the longest suspicion timeout later (24 s
 * with Serf's and Lifeline's lan settings at 5 members), and must count for its scenario,
 * not the next one. (--quick: shorter, a smoke run.)
 */
const TAIL_MS = 25_000;
const TAIL_QUICK_MS = 3000;

const USAGE = `usage: npx tsx bench/${NAME}.ts [options]
  --trials N         detection trials per fault and system (default 5; --quick 1)
  --window S         seconds of each false-failure scenario (default 60; --quick 10)
  --quick            a smoke run of about two minutes (explicit --trials/--window still win)
  --systems LIST     comma-separated subset of: ${SYSTEM_KEYS.join(", ")} (default all)
  --scenarios LIST   comma-separated subset of: ${SCENARIOS.join(", ")} (default all)
  --memberlist JSON  overrides of lan for "lifeline memberlist" (default ${JSON.stringify(MEMBERLIST_TIMING)})
  --variants JSON    more Lifeline clusters: {"name": {"preset"?: "lan", ...overrides}}
  --out DIR          results directory (default bench/results; a --quick run without it writes none)
  --run-id ID        tag for this run's child processes (default: random)`;

interface Options extends Omit<CommonOptions, "out"> {
  trials: number;
  windowS: number;
  systems: SystemSpec[];
  scenarios: Scenario[];
  out: string | undefined;
}

function lifelineSpec(key: string, label: string, raw: Record<string, unknown>): SystemSpec {
  const { preset = "lan", ...overrides } = raw as { preset?: string } & Partial<MembershipConfig>;
  if (preset !== "lan" && preset !== "wan" && preset !== "local")
    throw new UsageError(`${label}: unknown preset ${preset}`);
  try {
    membershipConfig(preset, overrides);
  } catch (err) {
    throw new UsageError(`${label}: ${(err as Error).message}`);
  }
  return { key, label, kind: "lifeline", preset, overrides };
}

function parseJson(name: string, value: string): Record<string, unknown> {
  try {
    const v = JSON.parse(value) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // below
  }
  throw new UsageError(`--${name} must be a JSON object`);
}

function parseOptions(argv: string[]): Options {
  const { values, common } = parseBenchArgs(argv, USAGE, [
    "trials",
    "window",
    "systems",
    "scenarios",
    "memberlist",
    "variants",
  ]);
  const keys =
    values.systems === undefined ? [...SYSTEM_KEYS] : pickList("systems", values.systems, SYSTEM_KEYS);
  const memberlist =
    values.memberlist === undefined ? { ...MEMBERLIST_TIMING } : parseJson("memberlist", values.memberlist);
  const systems: SystemSpec[] = keys.map((k) =>
    k === "serf"
      ? { key: "serf", label: "serf lan", kind: "serf" }
      : k === "lan"
        ? lifelineSpec("lan", "lifeline lan", {})
        : lifelineSpec("memberlist", "lifeline memberlist", memberlist),
  );
  if (values.variants !== undefined)
    for (const [name, raw] of Object.entries(parseJson("variants", values.variants))) {
      if (!/^[a-z][a-z0-9]{0,11}$/.test(name) || systems.some((s) => s.key === name))
        throw new UsageError(`--variants: bad or duplicate name "${name}" (a-z0-9, ≤ 12)`);
      systems.push(
        lifelineSpec(name, `lifeline ${name}`, parseJson(`variants.${name}`, JSON.stringify(raw))),
      );
    }
  if (systems.length === 0) throw new UsageError("--systems: none selected");
  return {
    ...common,
    trials: numberArg("trials", values.trials, common.quick ? 1 : 5),
    windowS: numberArg("window", values.window, common.quick ? 10 : 60),
    systems,
    scenarios:
      values.scenarios === undefined ? [...SCENARIOS] : pickList("scenarios", values.scenarios, SCENARIOS),
    out: values.out === undefined && common.quick ? undefined : common.out,
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const between = ([lo, hi]: [number, number]) => lo + (hi - lo) * Math.random();

const allPids: number[] = [];
const progress = new Progress();
let namespace: Namespace | undefined;
let slowLoop: { stop: () => Promise<void> } | undefined;

function check(): void {
  if (interrupted()) throw new Interrupted();
}

// ---------------------------------------------------------------------------------------
// Detection trials

interface Trial {
  system: string;
  fault: Fault;
  victim: string;
  /** Date.now() of the signal. */
  at: number;
  /** ms from the signal to the first suspicion of the victim by a survivor (Serf: its own
   *  failed probe; Lifeline: any suspect verdict). */
  firstSuspectMs: number | null;
  firstFailedMs: number | null;
  /** ms to the last survivor's verdict (null unless all four gave one). */
  allFailedMs: number | null;
  /** Survivors that declared the victim within the observation time. */
  declaredBy: number;
  survivors: number;
  /** `failed`/`dead` verdicts about other (live) members during the trial. */
  otherFailed: number;
  /** ms from the restart to every member seeing every other alive. */
  rejoinMs: number | null;
}

async function detectionTrials(
  c: Cluster,
  faults: Fault[],
  trials: number,
  done: () => void,
): Promise<Trial[]> {
  const out: Trial[] = [];
  let n = 0;
  for (let t = 0; t < trials; t++)
    for (const fault of faults) {
      check();
      const victim = c.slots[n++ % CLUSTER_SIZE]!;
      await sleep(between(PHASE_MS));
      check();
      out.push(await trial(c, victim, fault));
      done();
    }
  return out;
}

async function trial(c: Cluster, victim: Slot, fault: Fault): Promise<Trial> {
  const survivors = c.slots.filter((s) => s !== victim).map((s) => s.name);
  const at = Date.now();
  c.signal(victim, fault === "kill" ? "SIGKILL" : "SIGSTOP");
  const firstBy = () => {
    const by = new Map<string, number>();
    for (const e of c.verdicts(victim.name, at))
      if (e.state === "failed" && survivors.includes(e.observer) && !by.has(e.observer))
        by.set(e.observer, e.at);
    return by;
  };
  while (firstBy().size < survivors.length && Date.now() - at < OBSERVE_MS) {
    check();
    await sleep(50);
  }
  const end = Date.now();
  const by = firstBy();
  const times = [...by.values()].map((t) => t - at);
  const suspects = c
    .verdicts(victim.name, at)
    .filter((e) => e.state === "suspect" && survivors.includes(e.observer))
    .map((e) => e.at - at);
  const otherFailed = c.events.filter(
    (e) => e.state === "failed" && e.subject !== victim.name && e.at >= at && e.at <= end,
  ).length;
  // The victim is killed (a stopped one as well) and started again, joining the others.
  let rejoinMs: number | null = null;
  try {
    await c.restart(victim);
    rejoinMs = await c.waitConverged(CONVERGE_MS, interrupted);
  } catch (err) {
    check();
    progress.log(`${c.label}: ${(err as Error).message}; restarting the cluster`);
    await c.reset();
  }
  return {
    system: c.spec.key,
    fault,
    victim: victim.name,
    at,
    firstSuspectMs: suspects.length > 0 ? Math.min(...suspects) : null,
    firstFailedMs: times.length > 0 ? Math.min(...times) : null,
    allFailedMs: times.length === survivors.length ? Math.max(...times) : null,
    declaredBy: by.size,
    survivors: survivors.length,
    otherFailed,
    rejoinMs,
  };
}

// ---------------------------------------------------------------------------------------
// False failures

interface WindowRow {
  system: string;
  scenario: Disturbance;
  seconds: number;
  /** `failed`/`dead` verdicts (observer × subject) in the window and its tail. */
  failed: number;
  /** Distinct members declared failed by someone. */
  members: string[];
  /** Suspicions raised by the members' own probes (Serf: failed probes it logged, one per
   *  failed probe; Lifeline: new suspicions). */
  ownSuspicions: number;
  /** Lifeline: suspect verdicts in every member's view (own and heard); Serf: not logged. */
  suspectVerdicts: number | null;
  /** Serf: refutations logged; Lifeline: suspect → alive changes seen ("refuted"). */
  refutations: number;
  failedVerdicts: Array<{ observer: string; subject: string; atMs: number; reason?: string }>;
  /** After the tail: time to converge again, or how it was repaired. */
  recovery: string;
  /** Largest event-loop delay of the cluster's agents in the window (Lifeline), ms. */
  maxLagMs: number | null;
  skipped?: string;
}

function countWindow(
  c: Cluster,
  scenario: Disturbance,
  from: number,
  to: number,
  tailEnd: number,
): WindowRow {
  const inWin = c.events.filter((e) => e.at >= from && e.at <= tailEnd);
  const failed = inWin.filter((e) => e.state === "failed");
  const lifeline = c.spec.kind === "lifeline";
  // The slow member's own delays are its SIGSTOPs: left out.
  const lags = c.lags
    .filter(
      (l) =>
        l.at >= from && l.at <= tailEnd + 5000 && !(scenario === "slow" && l.member === c.slots[2]!.name),
    )
    .map((l) => l.lag);
  return {
    system: c.spec.key,
    scenario,
    seconds: (to - from) / 1000,
    failed: failed.length,
    members: [...new Set(failed.map((e) => e.subject))].sort(),
    ownSuspicions: inWin.filter((e) => e.state === "suspect" && e.own).length,
    suspectVerdicts: lifeline ? inWin.filter((e) => e.state === "suspect").length : null,
    refutations: lifeline
      ? inWin.filter((e) => e.state === "alive" && /refuted/.test(e.reason ?? "")).length
      : c.refutations.filter((r) => r.at >= from && r.at <= tailEnd).length,
    failedVerdicts: failed.map((e: GossipEvent) => ({
      observer: e.observer,
      subject: e.subject,
      atMs: e.at - from,
      ...(e.reason ? { reason: e.reason } : {}),
    })),
    recovery: "",
    maxLagMs: lifeline ? Math.max(0, ...lags) : null,
  };
}

interface LossCounter {
  system: string;
  rule: string;
  packets: number;
  dropped: number;
}

/** Per system: count rules, then random DROP rules, for UDP to its ports and TCP to and from them. */
async function applyLoss(ns: Namespace, clusters: Cluster[], p: number, tag: string): Promise<Undo[]> {
  const undos: Undo[] = [];
  for (const c of clusters) {
    const ports = c.slots.map((s) => String(s.port)).join(",");
    const matches: Array<[string, string[]]> = [
      ["udp-to", ["-p", "udp", "-m", "multiport", "--dports", ports]],
      ["tcp-to", ["-p", "tcp", "-m", "multiport", "--dports", ports]],
      ["tcp-from", ["-p", "tcp", "-m", "multiport", "--sports", ports]],
    ];
    for (const [rule, match] of matches)
      undos.push(...(await addCountedLoss(ns, match, p, `${tag}:${c.spec.key}:${rule}`)));
  }
  return undos;
}

async function lossCounters(ns: Namespace, tag: string): Promise<LossCounter[]> {
  return [...(await readCountedLoss(ns, tag))].map(([label, c]) => {
    const [system, rule] = label.split(":") as [string, string];
    return { system, rule, ...c };
  });
}

/** SIGSTOP the slow member of every cluster for SLOW_STOP_MS every SLOW_EVERY_MS, until stopped. */
function startSlowLoop(clusters: Cluster[]): { stop: () => Promise<void>; stops: number[] } {
  const slow = clusters.map((c) => [c, c.slots[2]!] as const);
  const stops: number[] = [];
  let stopped = false;
  let wake: () => void = () => {};
  const nap = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      wake = () => {
        clearTimeout(t);
        r();
      };
    });
  const cont = () => {
    for (const [c, s] of slow) c.signal(s, "SIGCONT");
  };
  const done = (async () => {
    while (!stopped) {
      for (const [c, s] of slow) c.signal(s, "SIGSTOP");
      stops.push(Date.now());
      await nap(SLOW_STOP_MS);
      cont();
      if (stopped) break;
      await nap(SLOW_EVERY_MS - SLOW_STOP_MS);
    }
    cont();
  })();
  return {
    stops,
    stop: async () => {
      stopped = true;
      wake();
      await done;
    },
  };
}

/** Waits for every cluster to converge; restarts from scratch those that do not in time. */
async function converge(clusters: Cluster[]): Promise<Map<Cluster, string>> {
  const how = new Map<Cluster, string>();
  await Promise.all(
    clusters.map(async (c) => {
      try {
        const ms = await c.waitConverged(CONVERGE_MS, interrupted);
        how.set(c, `converged in ${num(ms / 1000, 1)} s`);
      } catch (err) {
        check();
        progress.log(`${c.label}: ${(err as Error).message}; restarting the cluster`);
        await c.reset();
        how.set(c, `not converged within ${CONVERGE_MS / 1000} s: restarted`);
      }
    }),
  );
  return how;
}

async function falseFailures(
  clusters: Cluster[],
  d: Disturbance,
  opts: Options,
  facts: Facts,
): Promise<WindowRow[]> {
  await converge(clusters);
  check();
  const tag = `llgs-${opts.runId}`;
  const windowMs = opts.windowS * 1000;
  const tailMs = opts.quick ? TAIL_QUICK_MS : TAIL_MS;
  const from = Date.now();
  let undos: Undo[] = [];
  let slow: ReturnType<typeof startSlowLoop> | undefined;
  if (d === "slow") {
    slow = startSlowLoop(clusters);
    slowLoop = slow;
  } else undos = await applyLoss(namespace!, clusters, LOSS[d], tag);
  const endAt = from + windowMs;
  while (Date.now() < endAt) {
    check();
    const failed = clusters.map((c) => c.events.filter((e) => e.state === "failed" && e.at >= from).length);
    progress.update(`${d}: ${num((endAt - Date.now()) / 1000)} s left · failed verdicts ${failed.join("/")}`);
    await sleep(Math.min(1000, endAt - Date.now()));
  }
  const to = Date.now();
  if (slow) {
    await slow.stop();
    slowLoop = undefined;
    facts.slowStops = slow.stops.map((t) => t - from);
  } else if (d !== "slow") {
    facts.loss[d] = await lossCounters(namespace!, tag);
    for (const u of undos) await u();
  }
  await sleep(tailMs);
  const tailEnd = Date.now();
  const rows = clusters.map((c) => countWindow(c, d, from, to, tailEnd));
  const how = await converge(clusters);
  for (const r of rows) r.recovery = how.get(clusters.find((c) => c.spec.key === r.system)!) ?? "";
  return rows;
}

// ---------------------------------------------------------------------------------------
// Report

interface Facts {
  loss: Partial<Record<"loss20" | "loss40", LossCounter[]>>;
  slowStops?: number[];
  serf: { version?: string; missing?: string };
  lossSkipped?: string;
}

const secs = (ms: number) => num(ms / 1000, 1);

function spread(d: Distribution, n: number, of: number): string {
  if (d.n === 0) return of === 0 ? "n/a" : `none of ${of}`;
  const base = `${secs(d.min)} / ${secs(d.median)} / ${secs(d.max)}`;
  return d.n < of || n < of ? `${base} (${d.n} of ${of})` : base;
}

function detectionTable(systems: SystemSpec[], trials: Trial[], skipped: Map<string, string>): string {
  const cols: Array<[Fault, "firstFailedMs" | "allFailedMs", string]> = [
    ["kill", "firstFailedMs", "kill → first failed"],
    ["kill", "allFailedMs", "kill → all failed"],
    ["stop", "firstFailedMs", "stop → first failed"],
    ["stop", "allFailedMs", "stop → all failed"],
  ];
  return markdownTable(
    ["system (min / median / max, s)", ...cols.map((c) => c[2])],
    systems.map((s) => [
      s.label,
      ...cols.map(([fault, key]): Cell => {
        if (skipped.has(s.key)) return "skipped";
        const ts = trials.filter((t) => t.system === s.key && t.fault === fault);
        const vals = ts.map((t) => t[key]).filter((v): v is number => v !== null);
        return spread(distribution(vals), vals.length, ts.length);
      }),
    ]),
  );
}

function falseTable(
  systems: SystemSpec[],
  rows: WindowRow[],
  scenarios: Disturbance[],
  skipped: Map<string, string>,
): string {
  const heads: Record<Disturbance, string> = {
    loss20: "loss 20 %",
    loss40: "loss 40 %",
    slow: "slow member",
  };
  return markdownTable(
    ["system (failed verdicts · members · own suspicions)", ...scenarios.map((d) => heads[d])],
    systems.map((s) => [
      s.label,
      ...scenarios.map((d): Cell => {
        const r = rows.find((x) => x.system === s.key && x.scenario === d);
        if (skipped.has(s.key) || !r || r.skipped) return "skipped";
        return `${r.failed} · ${r.members.length} · ${r.ownSuspicions}`;
      }),
    ]),
  );
}

function describe(s: SystemSpec, facts: Facts): string {
  if (s.kind === "serf")
    return `\`serf agent\` ${facts.serf.version ?? ""} (default lan profile: memberlist DefaultLANConfig — probe 1 s, timeout 500 ms, 3 indirect checks, TCP fallback, suspicion mult 4, max timeout mult 6, gossip 200 ms × 3, retransmit mult 4), verdicts from its log`;
  const overrides =
    Object.keys(s.overrides ?? {}).length > 0 ? ` with overrides \`${JSON.stringify(s.overrides)}\`` : "";
  return `bench/lib/gossip-agent.ts (Membership + UdpTransport), preset \`${s.preset ?? "lan"}\`${overrides}`;
}

function notes(systems: SystemSpec[], trials: Trial[], rows: WindowRow[], facts: Facts): string[] {
  const out: string[] = [];
  if (facts.serf.missing) out.push(`- serf: skipped — ${facts.serf.missing}`);
  if (facts.lossSkipped) out.push(`- loss20, loss40: skipped — ${facts.lossSkipped}`);
  for (const [d, counters] of Object.entries(facts.loss)) {
    const parts = systems
      .map((s) => {
        const cs = (counters ?? []).filter((c) => c.system === s.key);
        const packets = cs.reduce((a, c) => a + c.packets, 0);
        const dropped = cs.reduce((a, c) => a + c.dropped, 0);
        return cs.length > 0
          ? `${s.label} ${dropped}/${packets} (${num((100 * dropped) / Math.max(1, packets), 1)} %)`
          : "";
      })
      .filter(Boolean);
    if (parts.length > 0)
      out.push(`- ${d}: packets dropped / seen on the members' ports: ${parts.join(", ")}`);
  }
  if (facts.slowStops)
    out.push(
      `- slow: the slow member (member 3 of each cluster) was stopped ${facts.slowStops.length} times`,
    );
  for (const s of systems) {
    const ts = trials.filter((t) => t.system === s.key);
    const susp = ts.map((t) => t.firstSuspectMs).filter((v): v is number => v !== null);
    const other = ts.reduce((a, t) => a + t.otherFailed, 0);
    const bits: string[] = [];
    if (susp.length > 0) bits.push(`first suspicion after a median ${secs(distribution(susp).median)} s`);
    if (other > 0) bits.push(`${other} false failure verdict(s) of other members during the trials`);
    const undeclared = ts.filter((t) => t.allFailedMs === null);
    if (undeclared.length > 0)
      bits.push(
        `${undeclared.length} trial(s) where not every survivor declared the victim within ${OBSERVE_MS / 1000} s`,
      );
    if (bits.length > 0) out.push(`- detection, ${s.label}: ${bits.join("; ")}`);
  }
  for (const r of rows) {
    if (r.skipped) continue;
    const label = systems.find((s) => s.key === r.system)!.label;
    const bits: string[] = [];
    if (r.failed > 0)
      bits.push(
        `failed: ${r.failedVerdicts
          .slice(0, 4)
          .map((v) => `${v.observer}→${v.subject} at ${secs(v.atMs)} s${v.reason ? ` (${v.reason})` : ""}`)
          .join("; ")}${r.failedVerdicts.length > 4 ? "; …" : ""}`,
      );
    if (r.suspectVerdicts !== null) bits.push(`${r.suspectVerdicts} suspect verdicts in all views`);
    bits.push(`${r.refutations} refutations`);
    if (r.maxLagMs !== null) bits.push(`max event-loop delay ${r.maxLagMs} ms`);
    if (r.recovery && !r.recovery.startsWith("converged")) bits.push(r.recovery);
    out.push(`- ${r.scenario}, ${label}: ${bits.join("; ")}`);
  }
  return out;
}

function markdown(
  opts: Options,
  run: RunStart,
  meta: RunMeasured & { where: string },
  detection: string,
  falses: string,
  systems: SystemSpec[],
  n: string[],
  facts: Facts,
): string {
  const faults = opts.scenarios.filter((s): s is Fault => s === "kill" || s === "stop");
  const lines = [
    ...markdownHeader(run, true),
    `Run: ${num(meta.elapsedS)} s, clusters of ${CLUSTER_SIZE} members each, all running at once in ${meta.where}; ` +
      `${opts.trials} trial(s) per fault and system, false-failure windows of ${opts.windowS} s; the machine's CPU ` +
      `use over the run: ${num(meta.machineCpu)} % of ${os.cpus().length * 100} % (all processes)`,
    "",
  ];
  if (faults.length > 0)
    lines.push(
      "Detection: time from the signal to the first survivor's `failed` (Serf) / `dead` (Lifeline) verdict,",
      "and to the last of the four survivors' (min / median / max over the trials, seconds):",
      "",
      detection,
      "",
    );
  if (falses)
    lines.push(
      "False failures of live members: `failed`/`dead` verdicts (summed over the observers) · distinct members",
      "declared · suspicions raised by the members' own failed probes (Serf logs one per failed probe, again",
      "while a member stays suspect; Lifeline counts new suspicions), counted over each window and the",
      `${(opts.quick ? TAIL_QUICK_MS : TAIL_MS) / 1000} s after it:`,
      "",
      falses,
      "",
    );
  lines.push(
    "Scenarios:",
    "",
    ...opts.scenarios.map((s) => `- \`${s}\`: ${SCENARIO_TITLES[s]}`),
    "",
    "Systems:",
    "",
    ...systems.map((s) => `- \`${s.label}\`: ${describe(s, facts)}`),
  );
  if (n.length > 0) lines.push("", "Notes:", "", ...n);
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------
// Main

async function cleanup(): Promise<void> {
  await slowLoop?.stop();
  await Promise.all([stopAll(3000), killAllSerf()]);
  await namespace?.destroy();
}

async function main(opts: Options, run: RunStart): Promise<number> {
  const measured = measureRun();
  const serf = serfVersion();
  const skipped = new Map<string, string>();
  if (serf.missing) {
    progress.log(`${NAME}: skipping serf: ${serf.missing}`);
    skipped.set("serf", serf.missing);
  }
  const noNamespace = canUseNamespaces();
  const facts: Facts = { loss: {}, serf };
  let scenarios = opts.scenarios;
  if (noNamespace) {
    facts.lossSkipped = noNamespace;
    progress.log(`${NAME}: skipping loss20, loss40: ${noNamespace}; the rest runs on the host`);
    scenarios = scenarios.filter((s) => s !== "loss20" && s !== "loss40");
  } else namespace = await benchNamespace(NS_PREFIX, progress);
  const where = whereRun(namespace);
  const systems = opts.systems.filter((s) => !skipped.has(s.key));
  progress.log(
    `${NAME}: ${systems.map((s) => s.label).join(", ")} · ${scenarios.join(", ")} · in ${where} (run ${opts.runId})`,
  );

  // Fixed ports in the namespace (its own loopback); free ones on the host.
  const clusters: Cluster[] = [];
  for (const [i, spec] of systems.entries()) {
    const ports: Array<{ port: number; rpcPort: number }> = [];
    for (let m = 0; m < CLUSTER_SIZE; m++)
      ports.push(
        namespace
          ? { port: 17000 + 100 * i + m, rpcPort: 17050 + 100 * i + m }
          : { port: await freePort(), rpcPort: spec.kind === "serf" ? await freePort() : 0 },
      );
    clusters.push(
      new GossipCluster(spec, ports, {
        runId: opts.runId,
        ns: namespace,
        pids: allPids,
        log: (l) => progress.log(l),
      }),
    );
  }
  for (const c of clusters) {
    check();
    progress.update(`starting ${c.label}…`);
    const t0 = Date.now();
    await c.start();
    progress.log(`${c.label}: ${CLUSTER_SIZE} members up and converged in ${secs(Date.now() - t0)} s`);
  }

  // Detection trials: every cluster its own sequence, all at once.
  const faults = scenarios.filter((s): s is Fault => s === "kill" || s === "stop");
  let trials: Trial[] = [];
  if (faults.length > 0) {
    const total = clusters.length * faults.length * opts.trials;
    let finished = 0;
    const tick = () => {
      finished++;
      progress.update(`detection trials: ${finished} of ${total}`);
    };
    progress.update(`detection trials: 0 of ${total}`);
    trials = (await Promise.all(clusters.map((c) => detectionTrials(c, faults, opts.trials, tick)))).flat();
    progress.log(`detection: ${trials.length} trials done`);
  }

  // False failures: all clusters through the same window.
  const rows: WindowRow[] = [];
  for (const d of DISTURBANCES) {
    if (!opts.scenarios.includes(d)) continue;
    if (!scenarios.includes(d)) {
      for (const c of clusters)
        rows.push({
          ...countWindow(c, d, 0, 0, -1),
          skipped: facts.lossSkipped ?? "not run",
        });
      continue;
    }
    check();
    rows.push(...(await falseFailures(clusters, d, opts, facts)));
    progress.log(`${d}: done`);
  }

  progress.update("stopping…");
  await Promise.all(clusters.map((c) => c.stop(true)));
  const namespaceName = namespace?.name ?? null;
  await cleanup();
  progress.clear();
  const { elapsedS, machineCpu } = measured();

  const shown = opts.systems;
  const detection = detectionTable(shown, trials, skipped);
  const disturbances = DISTURBANCES.filter((d) => opts.scenarios.includes(d));
  const falses = disturbances.length > 0 ? falseTable(shown, rows, disturbances, skipped) : "";
  const n = notes(shown, trials, rows, facts);
  const left = leftovers(allPids, [runMarker(opts.runId)]);
  const leftNamespaces = namespaceLeft(namespaceName);
  const md = markdown(opts, run, { elapsedS, machineCpu, where }, detection, falses, shown, n, facts);
  const json = {
    ...runFields(run, { elapsedS, machineCpu }),
    settings: {
      trials: opts.trials,
      windowSeconds: opts.windowS,
      quick: opts.quick,
      scenarios: opts.scenarios,
      clusterSize: CLUSTER_SIZE,
      slowMember: { stopMs: SLOW_STOP_MS, everyMs: SLOW_EVERY_MS },
      observeMs: OBSERVE_MS,
      runId: opts.runId,
      systems: shown.map((s) => ({
        key: s.key,
        label: s.label,
        kind: s.kind,
        ...(s.kind === "lifeline"
          ? {
              preset: s.preset,
              overrides: s.overrides ?? {},
              config: membershipConfig(s.preset, s.overrides),
            }
          : { version: serf.version ?? null }),
        skipped: skipped.get(s.key) ?? null,
      })),
    },
    where,
    namespace: namespaceName,
    trials,
    falseFailures: rows,
    facts,
    lifelineCounters: Object.fromEntries(clusters.map((c) => [c.spec.key, c.counters])),
    serfRefutations: clusters.filter((c) => c.spec.kind === "serf").flatMap((c) => c.refutations),
    childPids: allPids,
    leftoverPids: left,
    leftoverNamespaces: leftNamespaces,
  };
  const paths = opts.out ? writeResults(opts.out, NAME, json, md) : [];
  const tables = [faults.length > 0 ? detection : "", falses].filter(Boolean).join("\n\n");
  process.stdout.write(`${tables}\n`);
  if (n.length > 0) process.stdout.write(`\n${n.join("\n")}\n`);
  progress.log(
    paths.length > 0 ? `results: ${paths.join(", ")}` : "results: not written (a --quick run without --out)",
  );
  return leftBehind(progress, left, leftNamespaces);
}

// Every exit path stops the children and removes the namespace (and with it the iptables
// rules): normal end, errors, Ctrl-C, SIGTERM; and a SIGKILL to any surviving child (Serf
// agents included) when the process exits at all.
runBenchmark({
  name: NAME,
  usage: USAGE,
  parse: parseOptions,
  main,
  cleanup,
  progress,
  atExit: killAllSerfSync,
});
