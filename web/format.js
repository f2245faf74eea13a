/** Pure formatting helpers for the dashboard (no DOM). */

export const STATES = [
  "unknown",
  "healthy",
  "degraded",
  "suspect",
  "down",
  "recovering",
  "draining",
  "disabled",
];

/** A symbol per state, so state is never told by colour alone (the label is there too). */
export const SYMBOLS = {
  unknown: "?",
  healthy: "✓",
  degraded: "▲",
  suspect: "!",
  down: "✕",
  recovering: "↻",
  draining: "⇣",
  disabled: "⏸",
};

/** Most urgent first: the "problems first" order. */
export const URGENCY = {
  down: 0,
  suspect: 1,
  degraded: 2,
  recovering: 3,
  draining: 4,
  unknown: 5,
  disabled: 6,
  healthy: 7,
};

const pad2 = (n) => String(n).padStart(2, "0");

/** A span of time for people: "850 ms", "12.3 s", "5m 02s", "3h 12m", "2d 4h". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const v = Math.max(0, ms);
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(v < 10_000 ? 1 : 0)} s`;
  const s = Math.floor(v / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad2(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** "just now", "42s ago", "5m 02s ago", "3h 12m ago". */
export function relative(at, now) {
  if (!Number.isFinite(at)) return "—";
  const d = now - at;
  if (d < 1000) return "just now";
  if (d < 60_000) return `${Math.floor(d / 1000)}s ago`;
  return `${formatDuration(d)} ago`;
}

/** A latency: "0.42 ms", "12.3 ms", "120 ms", "2.10 s". */
export function formatLatency(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** An availability fraction: never rounded up to 100 % unless it is exactly 1. */
export function formatPct(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  if (x >= 1) return "100 %";
  const p = Math.floor(x * 10_000) / 100;
  return `${p.toFixed(2)} %`;
}

/** Local wall-clock time, "14:03:07". */
export function clock(at) {
  const d = new Date(at);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Local date and time, "2025-01-31 14:03:07". */
export function dateTime(at) {
  const d = new Date(at);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${clock(at)}`;
}

/** One line, at most `max` characters. */
export function shortText(s, max = 90) {
  const line = String(s ?? "")
    .replace(/\s+/g, " ")
    .trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** A CPU fraction of one core as a percentage: 0.153 → "15 %". */
export function formatCpu(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  return `${Math.round(x * 100)} %`;
}

export function formatCount(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  return String(x);
}
