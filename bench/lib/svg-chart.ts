import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Grouped horizontal bar charts as standalone SVG, for the benchmark results.
 * No dependencies; the output opens in a browser and renders on GitHub.
 */

/** One row of bars: one value per series (null = not measured, drawn as "n/a"). */
export interface BarGroup {
  label: string;
  values: Array<number | null>;
}

export interface BarChartOptions {
  title: string;
  /** Unit of the values, shown on the axis ("ms", "probes/s", "%"). */
  unit: string;
  /** Series names, in legend order; `groups[i].values[j]` belongs to `series[j]`. */
  series: string[];
  groups: BarGroup[];
  /** Logarithmic value axis (non-positive values are drawn as "≤0" without a bar). */
  log?: boolean;
  /** A footnote under the chart (wrapped). */
  note?: string;
  /** Print each bar's value at its end (default true). */
  valueLabels?: boolean;
}

/** Okabe–Ito palette, reordered so the first colours contrast best on white. */
export const PALETTE = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#D55E00",
  "#56B4E9",
  "#CC79A7",
  "#F0E442",
  "#000000",
];

const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const WIDTH = 820;
const BAR = 16; // bar thickness
const BAR_GAP = 3; // between bars of a group
const GROUP_GAP = 14; // between groups
const CHAR = 7; // approximate width of a 12px character
const VALUE_ROOM = 76; // right of the plot, for value labels

/** Escapes text for use in SVG element content and attribute values. */
export function escapeXml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Compact number: ~3 significant digits, thousands separators, exponent beyond 1e9. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return "n/a";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e9 || a < 1e-4) return v.toExponential(1).replace("e+", "e");
  if (a >= 100) return Math.round(v).toLocaleString("en-US");
  const digits = a >= 10 ? 1 : a >= 1 ? 2 : Math.min(6, 2 - Math.floor(Math.log10(a)));
  return String(Number(v.toFixed(digits)));
}

function round(n: number): string {
  return String(Math.round(n * 10) / 10);
}

interface Scale {
  /** Position (0..1) of a value along the axis; undefined when it cannot be drawn (log of ≤0). */
  pos(v: number): number | undefined;
  ticks: number[];
  /** The position bars start from. */
  origin: number;
}

/** 1, 2 or 5 times a power of ten, so that about `count` steps span `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function linearScale(values: number[]): Scale {
  let lo = Math.min(0, ...values);
  let hi = Math.max(0, ...values);
  if (lo === hi) hi = 1;
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step)
    ticks.push(Math.abs(t) < step / 1e6 ? 0 : Number(t.toPrecision(12)));
  const pos = (v: number) => (v - lo) / (hi - lo);
  return { pos, ticks, origin: pos(0) };
}

function logScale(values: number[]): Scale {
  const positive = values.filter((v) => v > 0);
  let lo = positive.length > 0 ? Math.floor(Math.log10(Math.min(...positive)) - 1e-9) : 0;
  let hi = positive.length > 0 ? Math.ceil(Math.log10(Math.max(...positive))) : 1;
  if (hi <= lo) hi = lo + 1;
  // Keep at most ~8 labelled decades.
  const every = Math.ceil((hi - lo) / 8);
  lo = Math.floor(lo / every) * every;
  hi = Math.ceil(hi / every) * every;
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e += every) ticks.push(10 ** e);
  const pos = (v: number) => (v > 0 ? (Math.log10(v) - lo) / (hi - lo) : undefined);
  return { pos, ticks, origin: 0 };
}

/** Splits `text` into lines of at most `max` characters, at spaces. */
function wrap(text: string, max: number): string[] {
  const lines: string[] = [];
  for (const para of text.split("\n")) {
    let line = "";
    for (const word of para.split(/\s+/).filter(Boolean)) {
      if (line && line.length + 1 + word.length > max) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  return lines;
}

/** A grouped horizontal bar chart: one row of bars per group, one colour per series. */
export function barChart(opts: BarChartOptions): string {
  const { title, unit, series, groups } = opts;
  const showValues = opts.valueLabels ?? true;
  const finite = groups.flatMap((g) =>
    g.values.filter((v): v is number => typeof v === "number" && Number.isFinite(v)),
  );
  const scale = opts.log ? logScale(finite) : linearScale(finite);
  const nSeries = Math.max(1, series.length);

  // Layout.
  const longest = Math.max(4, ...groups.map((g) => g.label.length));
  const labelWidth = Math.min(260, longest * CHAR + 16);
  const plotLeft = labelWidth + 12;
  const plotRight = WIDTH - (showValues ? VALUE_ROOM : 24);
  const plotWidth = plotRight - plotLeft;

  // Legend: entries flow left to right, wrapping.
  const legend: Array<{ x: number; y: number; name: string; color: string }> = [];
  let lx = 16;
  let ly = 52;
  series.forEach((name, i) => {
    const w = 22 + Math.min(name.length, 40) * CHAR + 18;
    if (lx + w > WIDTH - 16 && lx > 16) {
      lx = 16;
      ly += 20;
    }
    legend.push({ x: lx, y: ly, name, color: PALETTE[i % PALETTE.length]! });
    lx += w;
  });
  const plotTop = (series.length > 0 ? ly : 40) + 22;
  const groupHeight = nSeries * BAR + (nSeries - 1) * BAR_GAP;
  const plotHeight = Math.max(
    groupHeight,
    groups.length * groupHeight + Math.max(0, groups.length) * GROUP_GAP,
  );
  const axisY = plotTop + plotHeight;
  const noteLines = opts.note ? wrap(opts.note, 110) : [];
  const height = axisY + 48 + noteLines.length * 16 + 10;

  const x = (p: number) => plotLeft + p * plotWidth;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${round(height)}" width="${WIDTH}" height="${round(height)}" role="img" aria-label="${escapeXml(title)}" font-family="${FONT}" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${round(height)}" fill="#ffffff"/>`,
    `<text x="16" y="28" font-size="16" font-weight="600" fill="#111111">${escapeXml(title)}</text>`,
  );

  // Legend.
  for (const e of legend) {
    out.push(
      `<g class="legend"><rect x="${e.x}" y="${e.y - 10}" width="14" height="14" rx="2" fill="${e.color}"/>` +
        `<text x="${e.x + 20}" y="${e.y + 1}" fill="#222222">${escapeXml(e.name)}</text></g>`,
    );
  }

  // Grid and ticks.
  const tickParts: string[] = [];
  for (const t of scale.ticks) {
    const p = scale.pos(t);
    if (p === undefined) continue;
    const tx = round(x(p));
    tickParts.push(
      `<line x1="${tx}" y1="${plotTop - 4}" x2="${tx}" y2="${axisY}" stroke="#e3e3e3"/>`,
      `<line x1="${tx}" y1="${axisY}" x2="${tx}" y2="${axisY + 5}" stroke="#555555"/>`,
      `<text class="tick" x="${tx}" y="${axisY + 18}" text-anchor="middle" fill="#333333">${escapeXml(formatValue(t))}</text>`,
    );
  }
  out.push(`<g class="axis">`, ...tickParts);
  out.push(
    `<line x1="${plotLeft}" y1="${axisY}" x2="${plotRight}" y2="${axisY}" stroke="#555555"/>`,
    `<text class="unit" x="${round((plotLeft + plotRight) / 2)}" y="${axisY + 38}" text-anchor="middle" fill="#222222">${escapeXml(unit)}${opts.log ? " (log scale)" : ""}</text>`,
    `</g>`,
  );

  // Bars.
  groups.forEach((g, gi) => {
    const gy = plotTop + GROUP_GAP / 2 + gi * (groupHeight + GROUP_GAP);
    out.push(
      `<g class="group"><text class="label" x="${plotLeft - 8}" y="${round(gy + groupHeight / 2 + 4)}" text-anchor="end" fill="#111111">${escapeXml(g.label)}</text>`,
    );
    for (let si = 0; si < nSeries; si++) {
      const v = g.values[si];
      const by = gy + si * (BAR + BAR_GAP);
      const ty = round(by + BAR / 2 + 4);
      const name = series[si] ?? "";
      const color = PALETTE[si % PALETTE.length]!;
      if (typeof v !== "number" || !Number.isFinite(v)) {
        out.push(
          `<text class="na" x="${round(x(scale.origin) + 4)}" y="${ty}" fill="#777777" font-style="italic">n/a</text>`,
        );
        continue;
      }
      const p = scale.pos(v);
      const tip = `${g.label} · ${name}: ${formatValue(v)} ${unit}`;
      if (p === undefined) {
        out.push(
          `<text class="value" x="${round(x(0) + 4)}" y="${ty}" fill="#777777">≤0<title>${escapeXml(tip)}</title></text>`,
        );
        continue;
      }
      const x0 = x(Math.min(p, scale.origin));
      const w = Math.abs(x(p) - x(scale.origin));
      out.push(
        `<rect class="bar" data-series="${si}" data-value="${v}" x="${round(x0)}" y="${round(by)}" width="${round(w)}" height="${BAR}" fill="${color}"><title>${escapeXml(tip)}</title></rect>`,
      );
      if (showValues) {
        out.push(
          `<text class="value" x="${round(x0 + w + 4)}" y="${ty}" fill="#222222">${escapeXml(formatValue(v))}</text>`,
        );
      }
    }
    out.push(`</g>`);
  });

  noteLines.forEach((line, i) => {
    out.push(
      `<text class="note" x="16" y="${round(axisY + 60 + i * 16)}" font-size="11" fill="#555555">${escapeXml(line)}</text>`,
    );
  });
  out.push(`</svg>`);
  return `${out.join("\n")}\n`;
}

/** Writes `svg` to DIR/NAME.svg (creating DIR); returns the path. */
export function writeChart(dir: string, name: string, svg: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.svg`);
  writeFileSync(path, svg.endsWith("\n") ? svg : `${svg}\n`);
  return path;
}
