/** Small statistics helpers for benchmark results. */

/** The q-quantile (0..1) of ascending `sorted` values, nearest rank; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export interface Distribution {
  n: number;
  min: number;
  median: number;
  p95: number;
  max: number;
  mean: number;
}

/** min / median / p95 / max / mean of `values` (any order); NaN fields when empty. */
export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = n === 0 ? Number.NaN : sorted.reduce((s, v) => s + v, 0) / n;
  return {
    n,
    min: sorted[0] ?? Number.NaN,
    // The median of an even count is the mean of the two middle values.
    median:
      n === 0 ? Number.NaN : n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2,
    p95: quantile(sorted, 0.95),
    max: sorted[n - 1] ?? Number.NaN,
    mean,
  };
}
