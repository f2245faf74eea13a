import pc from "picocolors";
import type { TargetSnapshot } from "../health/target.ts";
import type { TargetState, Transition } from "../health/types.ts";
import { formatAge, formatMs, formatRatio } from "../util/format.ts";

/** The live table of `lifeline monitor` on a terminal: pure rendering, tested as text. */
const COLOURS: Record<TargetState, (s: string) => string> = {
  healthy: pc.green,
  degraded: pc.yellow,
  suspect: pc.magenta,
  down: pc.red,
  recovering: pc.cyan,
  draining: pc.blue,
  disabled: pc.gray,
  unknown: pc.gray,
};

export function colourState(state: TargetState, text: string = state): string {
  return COLOURS[state](text);
}

const HEADERS = ["TARGET", "STATE", "SINCE", "P50", "P99", "AVAIL 1H", "LAST ERROR", "REASON"];
/** Columns given up first when the terminal is narrow, so the reason stays readable. */
const DROP_ORDER = [4, 6, 3, 5, 2];
const MIN_REASON = 40;

function pad(text: string, width: number): string {
  return text.length >= width ? text.slice(0, width) : text + " ".repeat(width - text.length);
}

export interface TableOptions {
  now: number;
  width: number;
  colour: boolean;
}

/** One row per target; the reason column takes the remaining width. */
export function renderTable(targets: readonly TargetSnapshot[], opts: TableOptions): string[] {
  const rows = targets.map((t) => {
    const lastError = t.checks
      .map((c) => c.last)
      .filter((r) => r && r.status === "fail" && !r.spoiled)
      .sort((a, b) => (b?.at ?? 0) - (a?.at ?? 0))[0];
    return [
      t.id,
      t.state,
      formatAge(opts.now - t.since),
      t.trends.latency.p50 === null ? "-" : formatMs(t.trends.latency.p50),
      t.trends.latency.p99 === null ? "-" : formatMs(t.trends.latency.p99),
      formatRatio(t.trends.availability["1h"]),
      lastError ? `${lastError.kind ?? "failed"}${lastError.errno ? ` ${lastError.errno}` : ""}` : "-",
      t.reason,
    ];
  });
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  widths[0] = Math.min(widths[0]!, 40);
  const shown = new Set(HEADERS.map((_, i) => i));
  const fixedWidth = () =>
    [...shown].filter((i) => i !== HEADERS.length - 1).reduce((a, i) => a + widths[i]! + 2, 0);
  for (const i of DROP_ORDER) {
    if (opts.width - fixedWidth() >= MIN_REASON) break;
    shown.delete(i);
  }
  widths[widths.length - 1] = Math.max(10, opts.width - fixedWidth());
  const line = (cells: string[], state?: TargetState) =>
    cells
      .flatMap((c, i) => {
        if (!shown.has(i)) return [];
        const text = pad(c, widths[i]!);
        return [i === 1 && state && opts.colour ? colourState(state, text) : text];
      })
      .join("  ")
      .trimEnd();
  const header = line(HEADERS);
  return [opts.colour ? pc.bold(header) : header, ...rows.map((r) => line(r, r[1] as TargetState))];
}

export function renderTransition(t: Transition, colour: boolean): string {
  const time = new Date(t.at).toISOString().slice(11, 19);
  const to = colour ? colourState(t.to) : t.to;
  return `${time}  ${t.target}  ${t.from} -> ${to}  ${t.reason}`;
}

/** A one-line summary: counts per state. */
export function renderSummary(targets: readonly TargetSnapshot[], colour: boolean): string {
  const counts = new Map<TargetState, number>();
  for (const t of targets) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
  const parts = [...counts.entries()].map(([s, n]) => (colour ? colourState(s, `${n} ${s}`) : `${n} ${s}`));
  return `${targets.length} targets: ${parts.join(", ")}`;
}
