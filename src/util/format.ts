/** Formatting shared by log lines, reasons and the live table. */

/** 0.4 ms, 12 ms, 1.5 s, 12 s. */
export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return "-";
  if (value >= 10_000) return `${(value / 1000).toFixed(0)} s`;
  if (value >= 1000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 10) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(1)} ms`;
}

/** A span of time for "since": 42s, 5m 3s, 2h 10m, 3d 4h. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** 0.99953 → "99.95%"; null → "-". */
export function formatRatio(r: number | null): string {
  if (r === null) return "-";
  const pct = r * 100;
  return `${pct >= 99.995 ? "100" : pct.toFixed(2)}%`;
}
