import type { Namespace } from "./netns.ts";

/**
 * Network faults as iptables rules on a namespace's INPUT chain (loopback traffic to a local
 * port passes INPUT once, client → server). Each helper appends one rule and returns an undo
 * function that deletes exactly that rule; undo is idempotent and a no-op once the namespace
 * is destroyed (deleting a namespace removes its rules).
 */

export type Undo = () => Promise<void>;

let hashlimitCounter = 0;

/** Appends `spec` to INPUT in `ns`; the returned function deletes it again. */
export async function addRule(ns: Namespace, spec: readonly string[]): Promise<Undo> {
  await ns.iptables("-A", "INPUT", ...spec);
  let undone = false;
  return async () => {
    if (undone || !ns.alive) return;
    undone = true;
    await ns.iptables("-D", "INPUT", ...spec);
  };
}

/**
 * Random loss that can be measured: a rule that only counts the packets matching `match`,
 * then one that drops them with `probability`, commented `${label}:seen` and `${label}:drop`
 * for readCountedLoss(). Returns both undos.
 */
export async function addCountedLoss(
  ns: Namespace,
  match: readonly string[],
  probability: number,
  label: string,
): Promise<Undo[]> {
  const seen = await addRule(ns, [...match, "-m", "comment", "--comment", `${label}:seen`]);
  const drop = await addRule(ns, [
    ...match,
    ...["-m", "statistic", "--mode", "random", "--probability", String(probability)],
    ...["-m", "comment", "--comment", `${label}:drop`, "-j", "DROP"],
  ]);
  return [seen, drop];
}

/** Packets seen and dropped by the addCountedLoss rules labelled `${tag}:…`, by the rest of the label. */
export async function readCountedLoss(
  ns: Namespace,
  tag: string,
): Promise<Map<string, { packets: number; dropped: number }>> {
  const out = (await ns.exec("iptables-save", ["-c"])).stdout;
  const re = new RegExp(`^\\[(\\d+):\\d+\\].*--comment "?${tag}:(\\S+?):(seen|drop)"?(\\s|$)`);
  const by = new Map<string, { packets: number; dropped: number }>();
  for (const line of out.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    const c = by.get(m[2]!) ?? { packets: 0, dropped: 0 };
    if (m[3] === "seen") c.packets = Number(m[1]);
    else c.dropped = Number(m[1]);
    by.set(m[2]!, c);
  }
  return by;
}

function toPort(port: number): string[] {
  return ["-p", "tcp", "--dport", String(port)];
}

/** Every TCP packet to the port vanishes: connects hang, established connections go silent. */
export function blackhole(ns: Namespace, port: number): Promise<Undo> {
  return addRule(ns, [...toPort(port), "-j", "DROP"]);
}

/** Every TCP packet to the port is answered with a reset: connects fail at once (ECONNREFUSED). */
export function refuse(ns: Namespace, port: number): Promise<Undo> {
  return addRule(ns, [...toPort(port), "-j", "REJECT", "--reject-with", "tcp-reset"]);
}

/**
 * Drops the first `count` SYNs of every connection to the port, so each connect is slow but
 * succeeds. hashlimit keeps a bucket per (source address, source port) — one per connection —
 * of `count` tokens that refill at 1/hour: the first `count` SYNs match and are dropped, the
 * retransmission after them finds the bucket empty, does not match, and gets through.
 * The delay that yields is `synDelay(count)` (see there).
 */
export function dropSyns(ns: Namespace, port: number, count: number): Promise<Undo> {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be ≥ 1, got ${count}`);
  // Names are per namespace, at most 15 characters.
  const name = `lls${port}-${hashlimitCounter++}`.slice(0, 15);
  return addRule(ns, [
    ...toPort(port),
    "--syn",
    "-m",
    "hashlimit",
    "--hashlimit-mode",
    "srcip,srcport",
    "--hashlimit-upto",
    "1/hour",
    "--hashlimit-burst",
    String(count),
    "--hashlimit-name",
    name,
    "-j",
    "DROP",
  ]);
}

/** Drops each packet to the port with `probability` (0–1), independently. */
export function loss(ns: Namespace, port: number, probability: number): Promise<Undo> {
  if (!(probability >= 0 && probability <= 1)) throw new RangeError(`probability must be in [0, 1]`);
  return addRule(ns, [
    ...toPort(port),
    "-m",
    "statistic",
    "--mode",
    "random",
    "--probability",
    String(probability),
    "-j",
    "DROP",
  ]);
}

/** The INPUT chain's rules as `iptables -S INPUT` prints them (the policy line excluded). */
export async function inputRules(ns: Namespace): Promise<string[]> {
  const out = await ns.iptables("-S", "INPUT");
  return out.split("\n").filter((l) => l.startsWith("-A "));
}

/**
 * The connect delay, ms, that dropping the first `count` SYNs yields, with the namespace's
 * net.ipv4.tcp_syn_linear_timeouts=4 and the default 1 s initial RTO. Measured on Linux 6.18:
 * the first five retransmissions come 1 s apart, then the gap doubles — SYNs at 0, 1, 2, 3,
 * 4, 5, 7, 11, 19 s — so count 1..5 → ~1..5 s, 6 → ~7 s, 7 → ~11 s (each ~+25 ms per
 * retransmission of timer slack). The kernel gives up after net.ipv4.tcp_syn_retries worth of
 * that schedule, so large counts make connects fail instead.
 */
export function synDelay(count: number): number {
  let at = 0;
  let gap = 1000;
  for (let i = 1; i <= count; i++) {
    if (i > 5) gap *= 2;
    at += gap;
  }
  return at;
}
