import type { Random } from "../util/clock.ts";

/**
 * The arithmetic of SWIM and Lifeguard as pure functions, so each formula is tested against a
 * table of cases (test/membership/math.test.ts) and the protocol code only wires them in.
 * Durations are milliseconds; `n` is the number of members the local node believes are not
 * dead (itself included).
 */

/**
 * The shortest suspicion timeout: `mult · max(1, log10 n) · interval`. Grows with the log of
 * the cluster size because a larger cluster needs more gossip rounds for the suspicion (and
 * the suspect's refutation) to reach everyone. memberlist's `suspicionTimeout`.
 */
export function suspicionTimeout(mult: number, n: number, interval: number): number {
  const scale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(mult * scale * interval);
}

/**
 * Lifeguard's dynamic suspicion timeout: it starts at `max` and shrinks towards `min` as
 * independent confirmations (`confirmations` of the `expected` wanted) arrive, on a log
 * scale: `max − (max − min) · log(c + 1) / log(k + 1)`, never below `min`. With no
 * confirmations wanted (`expected < 1`) it is `min` at once. Returns the time left after
 * `elapsed` (may be ≤ 0: the timer is due).
 */
export function remainingSuspicionTime(
  confirmations: number,
  expected: number,
  elapsed: number,
  min: number,
  max: number,
): number {
  if (expected < 1) return min - elapsed;
  const c = Math.min(Math.max(0, confirmations), expected);
  const frac = Math.log(c + 1) / Math.log(expected + 1);
  const raw = Math.floor(max - frac * (max - min));
  return Math.max(min, raw) - elapsed;
}

/**
 * How many confirmations a suspicion waits for before it reaches its shortest timeout:
 * `mult − 2` (memberlist's choice), but never more than the members that could confirm
 * (`n` minus the suspect and the local node); 0 in clusters too small to have any.
 */
export function expectedConfirmations(mult: number, n: number): number {
  const k = mult - 2;
  return n - 2 < k ? 0 : Math.max(0, k);
}

/**
 * How many times an update is piggybacked before it is dropped from the broadcast queue:
 * `mult · ⌈log10(n + 1)⌉`. Epidemic dissemination reaches everyone in O(log n) rounds, so
 * the limit grows with the log of the cluster size.
 */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.ceil(Math.log10(n + 1));
}

/** Clusters up to this size push-pull at the configured interval; larger ones less often. */
export const PUSH_PULL_SCALE_THRESHOLD = 32;

/**
 * The push-pull (full state sync) interval for a cluster of `n`: the configured interval up
 * to 32 members, then one more multiple for each doubling (`⌈log2 n − log2 32⌉ + 1`), so the
 * total TCP sync traffic of the cluster grows as n·log n rather than n². As memberlist.
 */
export function pushPullInterval(interval: number, n: number): number {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return interval;
  const multiplier = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return interval * multiplier;
}

/**
 * Lifeguard's local health multiplier: a score in `0 .. max − 1` (max = awarenessMaxMultiplier)
 * that rises when the local node shows signs of being the slow one (missed nacks, having to
 * refute a suspicion about itself, a late timer) and falls on each successful probe.
 */
export function applyHealthDelta(score: number, delta: number, max: number): number {
  return Math.min(Math.max(0, score + delta), Math.max(0, max - 1));
}

/** A probe interval or timeout stretched by the local health score: `base · (score + 1)`. */
export function scaleByHealth(base: number, score: number): number {
  return base * (score + 1);
}

/**
 * How many members a ping-req goes to: the configured `indirectChecks`, but no more than the
 * members other than the local node and the target.
 */
export function indirectProbeCount(indirectChecks: number, candidates: number): number {
  return Math.max(0, Math.min(indirectChecks, candidates));
}

/** Fisher–Yates shuffle in place with the injected random source. */
export function shuffle<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}

/**
 * Up to `k` distinct items picked at random from `items` that pass `accept`. Samples random
 * indices first (cheap when k is small beside a large list, as in a gossip round), then falls
 * back to a partial shuffle so that a list with few acceptable items is still searched fully.
 */
export function pickRandom<T>(
  items: readonly T[],
  k: number,
  random: Random,
  accept: (t: T) => boolean,
): T[] {
  const picked: T[] = [];
  if (k <= 0 || items.length === 0) return picked;
  if (k * 4 < items.length) {
    const seen = new Set<number>();
    for (let tries = 0; tries < k * 3 && picked.length < k; tries++) {
      const i = Math.floor(random() * items.length);
      if (seen.has(i)) continue;
      seen.add(i);
      if (accept(items[i]!)) picked.push(items[i]!);
    }
    if (picked.length === k) return picked;
    picked.length = 0;
  }
  const idx = items.map((_, i) => i);
  for (let i = 0; i < idx.length && picked.length < k; i++) {
    const j = i + Math.floor(random() * (idx.length - i));
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
    const item = items[idx[i]!]!;
    if (accept(item)) picked.push(item);
  }
  return picked;
}

/**
 * SWIM's probe order: members in a random order, each probed once per round; a new round
 * reshuffles. Bounds the time to first detection of a failure to one round (n periods) in
 * the worst case, where picking at random each period would not.
 */
export class ProbeOrder {
  private order: string[] = [];
  private index = 0;

  constructor(private readonly random: Random) {}

  /**
   * The next member to probe among `ids` for which `eligible` holds, or undefined when none
   * is. Members that joined since the round began are inserted at a random place.
   */
  next(ids: readonly string[], eligible: (id: string) => boolean): string | undefined {
    for (let pass = 0; pass < 2; pass++) {
      while (this.index < this.order.length) {
        const id = this.order[this.index++]!;
        if (eligible(id)) return id;
      }
      this.order = shuffle([...ids], this.random);
      this.index = 0;
    }
    return undefined;
  }

  /** Adds a newly learned member at a random position of what is left of the round (O(1)). */
  add(id: string): void {
    this.order.push(id);
    const last = this.order.length - 1;
    const at = this.index + Math.floor(this.random() * (last - this.index + 1));
    this.order[last] = this.order[at]!;
    this.order[at] = id;
  }
}
