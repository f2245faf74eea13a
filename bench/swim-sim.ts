/**
 * bench/swim-sim: the SWIM + Lifeguard membership of src/membership simulated on the
 * in-memory network (deterministic: simulated time, seeded randomness, `lan` preset, 1–3 ms
 * links, plaintext) for clusters of 10, 100 and 1,000 members:
 *
 * - cost: packets and bytes each member sends per second in a quiet cluster (SWIM's claim:
 *   flat as N grows, where a full mesh of heartbeats grows linearly per member);
 * - detection: one member crashes; time until the first member suspects it, until the first
 *   declares it dead, and until every survivor has declared it dead;
 * - false positives: live members declared dead (by anyone) and suspicions raised during a
 *   run with 5 % and 20 % packet loss on every link, and with 10 % of the members slowed
 *   (500 ms more on every packet they send or receive, so a round trip to one takes as long as
 *   a whole probe period: an overloaded process).
 *
 *   npx tsx bench/swim-sim.ts [--quick] [--sizes 10,100,1000] [--seconds S] [--seed N] [--out DIR]
 *
 * --quick: sizes 10 and 100, 20 s runs (a smoke test; results are not written).
 */
import { parseArgs } from "node:util";
import type { Membership } from "../src/membership/membership.ts";
import { hostInfo, markdownTable, num, writeResults } from "./lib/report.ts";
import { buildSimCluster, type SimCluster } from "./lib/swim-cluster.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    sizes: { type: "string" },
    seconds: { type: "string" },
    seed: { type: "string", default: "1" },
    out: { type: "string" },
  },
});
const quick = values.quick ?? false;
const sizes = (values.sizes ?? (quick ? "10,100" : "10,100,1000")).split(",").map(Number);
const seconds = Number(values.seconds ?? (quick ? 20 : 60));
const seed = Number(values.seed);

interface Row {
  n: number;
  packetsPerMemberSecond: number;
  bytesPerMemberSecond: number;
  firstSuspectS: number | null;
  firstDeadS: number | null;
  allKnowS: number | null;
  detectionFalseDeaths: number;
  loss5: FalsePositives;
  loss20: FalsePositives;
  slowed: FalsePositives;
  wallSeconds: number;
}

interface FalsePositives {
  /** Distinct live members declared dead by at least one member. */
  falselyDead: number;
  /** Suspicions raised (suspect transitions seen, all observers). */
  suspicions: number;
  /** Refutations by the suspected members. */
  refutations: number;
  packetsPerMemberSecond: number;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Records the first time each (observer, target, state) happened. */
function watch(members: Membership[]) {
  const dead = new Map<string, Set<string>>();
  let suspicions = 0;
  for (const m of members) {
    m.on("member", (e) => {
      if (e.member.state === "suspect") suspicions++;
      if (e.member.state === "dead") {
        const s = dead.get(e.member.id) ?? new Set<string>();
        dead.set(e.member.id, s);
        s.add(m.id);
      }
    });
  }
  return { dead, suspicions: () => suspicions };
}

async function cost(c: SimCluster, n: number): Promise<{ pps: number; bps: number }> {
  await c.clock.run(5000); // settle
  const before = { ...c.net.stats };
  const window = Math.min(seconds, 30);
  await c.clock.run(window * 1000);
  return {
    pps: (c.net.stats.packetsSent - before.packetsSent) / n / window,
    bps: (c.net.stats.bytesSent - before.bytesSent) / n / window,
  };
}

async function detection(c: SimCluster, n: number) {
  const victim = Math.floor(n / 2);
  const id = c.members[victim]!.id;
  const survivors = c.members.filter((_, i) => i !== victim);
  let firstSuspect: number | undefined;
  let firstDead: number | undefined;
  const deadBy = new Set<string>();
  let falseDeaths = 0;
  const start = c.clock.now();
  for (const m of survivors) {
    m.on("member", (e) => {
      const t = c.clock.now() - start;
      if (e.member.id !== id) {
        if (e.member.state === "dead") falseDeaths++;
        return;
      }
      if (e.member.state === "suspect") firstSuspect ??= t;
      if (e.member.state === "dead") {
        firstDead ??= t;
        deadBy.add(m.id);
      }
    });
  }
  c.kill(victim);
  const all = await c.clock.until(() => deadBy.size === survivors.length, 240_000, 250);
  return { firstSuspect, firstDead, all, falseDeaths };
}

async function falsePositives(n: number, setup: (c: SimCluster) => void): Promise<FalsePositives> {
  const c = await buildSimCluster(n, { seed: seed + 1 });
  const w = watch(c.members);
  setup(c);
  const before = c.net.stats.packetsSent;
  await c.clock.run(seconds * 1000);
  const refutations = c.members.reduce((s, m) => s + m.counters().refutations, 0);
  const result = {
    falselyDead: w.dead.size,
    suspicions: w.suspicions(),
    refutations,
    packetsPerMemberSecond: (c.net.stats.packetsSent - before) / n / seconds,
  };
  await c.stop();
  return result;
}

const fp = (f: FalsePositives) => `${f.falselyDead} / ${f.suspicions}`;
const rows: Row[] = [];
for (const n of sizes) {
  const t0 = performance.now();
  log(`swim-sim: ${n} members: building`);
  const c = await buildSimCluster(n, { seed });
  log(`swim-sim: ${n} members: cost`);
  const { pps, bps } = await cost(c, n);
  log(`swim-sim: ${n} members: detection`);
  const d = await detection(c, n);
  await c.stop();
  log(`swim-sim: ${n} members: 5 % loss`);
  const loss5 = await falsePositives(n, (x) => x.net.setDefaults({ loss: 0.05 }));
  log(`swim-sim: ${n} members: 20 % loss`);
  const loss20 = await falsePositives(n, (x) => x.net.setDefaults({ loss: 0.2 }));
  log(`swim-sim: ${n} members: 10 % slowed`);
  const slowed = await falsePositives(n, (x: SimCluster) => {
    for (let i = 0; i < n; i += 10) x.net.slow(x.address(i), 500);
  });
  const s = (ms: number | undefined) => (ms === undefined ? null : ms / 1000);
  log(
    `swim-sim: ${n} members: ${num(pps, 2)} packets/member/s, suspect ${num(s(d.firstSuspect), 1)} s, ` +
      `dead ${num(s(d.firstDead), 1)} s, all ${num(s(d.all), 1)} s, false dead/suspicions ` +
      `5 %: ${fp(loss5)}, 20 %: ${fp(loss20)}, slowed: ${fp(slowed)}`,
  );
  rows.push({
    n,
    packetsPerMemberSecond: pps,
    bytesPerMemberSecond: bps,
    firstSuspectS: s(d.firstSuspect),
    firstDeadS: s(d.firstDead),
    allKnowS: s(d.all),
    detectionFalseDeaths: d.falseDeaths,
    loss5,
    loss20,
    slowed,
    wallSeconds: (performance.now() - t0) / 1000,
  });
}

const md = [
  `# bench/swim-sim`,
  "",
  `SWIM + Lifeguard (src/membership, \`lan\` preset) on the in-memory network: simulated time, seed ${seed},`,
  `links 1–3 ms; false-positive runs last ${seconds} s of simulated time each.`,
  "",
  markdownTable(
    [
      "members",
      "packets/member/s",
      "bytes/member/s",
      "first suspect (s)",
      "first dead (s)",
      "all know (s)",
      "5 % loss: false dead / suspicions",
      "20 % loss: false dead / suspicions",
      "10 % slowed: false dead / suspicions",
    ],
    rows.map((r) => [
      r.n,
      num(r.packetsPerMemberSecond, 2),
      num(r.bytesPerMemberSecond, 0),
      num(r.firstSuspectS, 1),
      num(r.firstDeadS, 1),
      num(r.allKnowS, 1),
      fp(r.loss5),
      fp(r.loss20),
      fp(r.slowed),
    ]),
  ),
  "",
  "- packets/member/s: everything a member sends in a quiet cluster (pings, acks, gossip), over 30 s.",
  "- first suspect / first dead / all know: after one member crashes (its endpoint closes).",
  "- false dead: live members declared dead by anyone; suspicions: suspect transitions seen by all",
  "  observers together (each refuted).",
  `- packets/member/s under 20 % loss: ${rows.map((r) => `${r.n}: ${num(r.loss20.packetsPerMemberSecond, 2)}`).join(", ")}.`,
  `- simulation wall time: ${rows.map((r) => `${r.n}: ${num(r.wallSeconds, 1)} s`).join(", ")}.`,
].join("\n");

process.stdout.write(`${md}\n`);
const json = { host: hostInfo(), seed, seconds, rows };
// Results go to bench/results (full runs only: a quick run must not replace them) or --out.
if (values.out) writeResults(values.out, "swim-sim", json, md);
else if (!quick) writeResults(new URL("./results/", import.meta.url).pathname, "swim-sim", json, md);
