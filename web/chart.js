import { clock, formatLatency } from "./format.js";

/** Line colours for up to six checks, readable on both the light and the dark theme. */
const PALETTE = ["#2f81f7", "#8957e5", "#1b7c83", "#bf8700", "#d05ca2", "#57606a"];

/** A y-axis tick: "0", "0.5 ms", "15 ms", "1.5 s" (no padding zeros, so labels stay short). */
function tick(v) {
  if (v === null || v === undefined) return "";
  if (v === 0) return "0";
  if (v >= 1000) return `${+(v / 1000).toFixed(2)} s`;
  return `${+v.toFixed(2)} ms`;
}

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/**
 * The latency chart of one target (uPlot, loaded globally from /vendor): one line per check
 * for successful results, and failed results as red points at their latency (a timeout's
 * latency is its deadline, so a dead target shows a row of points at the top).
 */
export class LatencyChart {
  /** @param {HTMLElement} el */
  constructor(el) {
    this.el = el;
    this.plot = undefined;
    this.checks = [];
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(el);
  }

  /** True when uPlot loaded (the page still works without charts). */
  static get available() {
    return typeof globalThis.uPlot === "function";
  }

  /** @param {Array<{check: string, at: number, latency: number, status: string, spoiled?: string, provisional?: boolean}>} results */
  setData(results) {
    if (!LatencyChart.available) {
      this.el.textContent = "Chart unavailable: uPlot did not load.";
      return;
    }
    const checks = [...new Set(results.map((r) => r.check))].sort();
    if (!this.plot || checks.join("\n") !== this.checks.join("\n")) this.create(checks);
    const col = new Map(checks.map((c, i) => [c, i]));
    const xs = [];
    const lines = checks.map(() => []);
    const failed = [];
    for (const r of results) {
      if (r.spoiled || !Number.isFinite(r.latency)) continue;
      xs.push(r.at / 1000);
      const i = col.get(r.check);
      for (let j = 0; j < lines.length; j++) lines[j].push(j === i && r.status !== "fail" ? r.latency : null);
      failed.push(r.status === "fail" ? r.latency : null);
    }
    this.plot.setData([xs, ...lines, failed]);
    this.el.dataset.points = String(xs.length);
  }

  create(checks) {
    this.plot?.destroy();
    this.checks = checks;
    const fg = cssVar("--muted", "#57606a");
    const grid = cssVar("--grid", "rgba(128,128,128,0.2)");
    const down = cssVar("--c-down", "#cf222e");
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const width = Math.max(200, this.el.clientWidth);
    this.plot = new globalThis.uPlot(
      {
        width,
        height: this.height(width),
        cursor: { drag: { x: true, y: false } },
        scales: {
          x: { time: true },
          y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
        },
        series: [
          { value: (_u, v) => (v === null ? "—" : clock(v * 1000)) },
          ...checks.map((c, i) => ({
            label: c,
            stroke: PALETTE[i % PALETTE.length],
            width: 1.5,
            spanGaps: true,
            points: { show: false },
            value: (_u, v) => formatLatency(v),
          })),
          {
            label: "failed",
            stroke: down,
            fill: down,
            paths: () => null,
            points: { show: true, size: 7, stroke: down, fill: down },
            value: (_u, v) => formatLatency(v),
          },
        ],
        axes: [
          { ...axis, space: 70, values: (_u, vals) => vals.map((v) => clock(v * 1000)) },
          {
            ...axis,
            size: 64,
            values: (_u, vals) => vals.map(tick),
          },
        ],
      },
      [[], ...checks.map(() => []), []],
      this.el,
    );
  }

  height(width) {
    return width < 420 ? 160 : 200;
  }

  fit() {
    if (!this.plot) return;
    const width = Math.max(200, this.el.clientWidth);
    if (Math.abs(width - this.plot.width) < 2) return;
    this.plot.setSize({ width, height: this.height(width) });
  }

  destroy() {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = undefined;
    this.checks = [];
  }
}
