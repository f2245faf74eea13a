import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { barChart, escapeXml, formatValue, writeChart } from "../../bench/lib/svg-chart.ts";

const out = mkdtempSync(join(tmpdir(), "lifeline-svg-chart-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Bar {
  series: number;
  value: number;
  x: number;
  width: number;
}

function bars(svg: string): Bar[] {
  return [
    ...svg.matchAll(
      /<rect class="bar" data-series="(\d+)" data-value="([^"]+)" x="([^"]+)" y="[^"]+" width="([^"]+)"/g,
    ),
  ].map((m) => ({ series: Number(m[1]), value: Number(m[2]), x: Number(m[3]), width: Number(m[4]) }));
}

/** Checks that tags nest and close properly (a tiny XML well-formedness check). */
function expectWellFormed(svg: string): void {
  expect(svg.startsWith("<svg ")).toBe(true);
  expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
  // No raw "<" or "&" outside tags and entities.
  const text = svg.replace(/<\/?[a-zA-Z][^<>]*>/g, "");
  expect(text).not.toMatch(/[<>]/);
  expect(text).not.toMatch(/&(?!amp;|lt;|gt;|quot;|#39;)/);
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)([^<>]*?)(\/?)>/g)) {
    const [, closing, name, attrs, selfClosing] = m;
    expect(attrs ?? "").not.toMatch(/[<&](?!amp;|lt;|gt;|quot;|#39;)/);
    if (selfClosing) continue;
    if (closing) expect(stack.pop()).toBe(name);
    else stack.push(name!);
  }
  expect(stack).toEqual([]);
}

const base = {
  title: "Probe cost",
  unit: "probes/s",
  series: ["1,000 targets", "10,000 targets"],
  groups: [
    { label: "lan-rst", values: [1000, 400] },
    { label: "classic", values: [250, 100] },
  ],
};

describe("barChart", () => {
  it("produces a standalone, well-formed SVG with title, legend, axis and unit", () => {
    const svg = barChart(base);
    expectWellFormed(svg);
    expect(svg).toMatch(/viewBox="0 0 \d+ \d+(\.\d)?"/);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain("Probe cost");
    expect(svg).toContain(">1,000 targets<");
    expect(svg).toContain(">10,000 targets<");
    expect(svg).toContain('class="unit"');
    expect(svg).toContain(">probes/s<");
    expect(svg.match(/class="tick"/g)?.length).toBeGreaterThanOrEqual(3);
    // One colour per series.
    const fills = new Set(
      [...svg.matchAll(/class="bar" data-series="(\d)"[^>]*fill="([^"]+)"/g)].map((m) => `${m[1]}=${m[2]}`),
    );
    expect(fills.size).toBe(2);
  });

  it("draws bars proportional to their values on a linear scale", () => {
    const b = bars(barChart(base));
    expect(b).toHaveLength(4);
    const perUnit = b[0]!.width / b[0]!.value;
    for (const bar of b) expect(bar.width).toBeCloseTo(bar.value * perUnit, 0);
    // All bars start at zero.
    expect(new Set(b.map((bar) => bar.x)).size).toBe(1);
  });

  it("uses decades on a log scale", () => {
    const svg = barChart({ ...base, log: true, groups: [{ label: "a", values: [10, 1000] }] });
    expectWellFormed(svg);
    expect(svg).toContain("(log scale)");
    const [ten, thousand] = bars(svg);
    // 1 → 1000 spans three decades; 10 sits one decade above the axis start.
    expect(thousand!.width / ten!.width).toBeCloseTo(3, 1);
    const ticks = [...svg.matchAll(/class="tick"[^>]*>([^<]+)</g)].map((m) => m[1]);
    expect(ticks).toEqual(["1", "10", "100", "1,000"]);
  });

  it("shows null values as n/a gaps without a bar", () => {
    const svg = barChart({ ...base, groups: [{ label: "x", values: [null, 5] }] });
    expectWellFormed(svg);
    expect(svg).toContain(">n/a<");
    const b = bars(svg);
    expect(b.map((bar) => bar.series)).toEqual([1]);
  });

  it("escapes <, & and quotes in titles, labels, series and notes", () => {
    const svg = barChart({
      title: 'A < B & "C"',
      unit: "ms <p99>",
      series: ['s<1> & "q"'],
      groups: [{ label: 'g<script>&"', values: [1] }],
      note: "note with <tags> & 'quotes'",
    });
    expectWellFormed(svg);
    expect(svg).not.toContain("<script>");
    expect(svg).toContain("g&lt;script&gt;&amp;&quot;");
    expect(svg).toContain("A &lt; B &amp; &quot;C&quot;");
    expect(escapeXml(`<&">'`)).toBe("&lt;&amp;&quot;&gt;&#39;");
  });

  it("copes with empty input and all-null values", () => {
    expectWellFormed(barChart({ title: "empty", unit: "x", series: [], groups: [] }));
    expectWellFormed(
      barChart({ title: "nulls", unit: "x", series: ["a"], groups: [{ label: "g", values: [null] }] }),
    );
    expectWellFormed(barChart({ ...base, log: true, groups: [{ label: "g", values: [0, -1] }] }));
  });

  it("can leave out value labels", () => {
    expect(barChart(base)).toContain('class="value"');
    expect(barChart({ ...base, valueLabels: false })).not.toContain('class="value"');
  });

  it("formats values compactly", () => {
    expect(formatValue(12345.6)).toBe("12,346");
    expect(formatValue(12.345)).toBe("12.3");
    expect(formatValue(1.2345)).toBe("1.23");
    expect(formatValue(0.012345)).toBe("0.0123");
    expect(formatValue(0)).toBe("0");
  });
});

describe("writeChart", () => {
  it("writes DIR/NAME.svg, creating DIR", () => {
    const dir = join(out, "nested", "dir");
    const path = writeChart(dir, "chart", barChart(base));
    expect(path).toBe(join(dir, "chart.svg"));
    expect(readFileSync(path, "utf8")).toContain("</svg>");
  });
});

describe("axis", () => {
  it("starts a non-negative linear axis at 0", () => {
    const ticks = [...barChart(base).matchAll(/class="tick"[^>]*>([^<]+)</g)].map((m) => m[1]);
    expect(ticks[0]).toBe("0");
    expect(ticks.at(-1)).toBe("1,000");
  });
});
