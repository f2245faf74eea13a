import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";

export type Cell = string | number | null | undefined;

/** Formats a number with `digits` decimals; null/undefined as "n/a". */
export function num(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "n/a";
  return v.toFixed(digits);
}

/** A Markdown table; numeric-looking columns are right-aligned. */
export function markdownTable(headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => headers.map((_, i) => String(r[i] ?? "")));
  const numeric = headers.map(
    (_, i) => text.length > 0 && text.every((r) => /^-?[\d.,]+%?$|^n\/a$/.test(r[i]!)),
  );
  const widths = headers.map((h, i) => Math.max(h.length, 3, ...text.map((r) => r[i]!.length)));
  const pad = (s: string, i: number) => (numeric[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!));
  const line = (cells: string[]) => `| ${cells.map(pad).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (numeric[i] ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [line(headers), rule, ...text.map(line)].join("\n");
}

/** Facts about the machine, for the results file. */
export function hostInfo(): Record<string, unknown> {
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** How a benchmark run started (runBenchmark gives it to the benchmark's main). */
export interface RunStart {
  /** The benchmark's name. */
  name: string;
  /** The command that ran it, as given. */
  command: string;
  host: Record<string, unknown>;
  startedAt: string;
}

/**
 * The first fields of a results file: what ran, when and where; with `measured`, the run's
 * length and the machine's CPU use over it (all processes, % of one core).
 */
export function runFields(
  run: RunStart,
  measured?: { elapsedS: number; machineCpu: number },
): Record<string, unknown> {
  return {
    bench: run.name,
    command: run.command,
    startedAt: run.startedAt,
    finishedAt: new Date().toISOString(),
    ...(measured ? { elapsedSeconds: measured.elapsedS, machineCpuPercent: measured.machineCpu } : {}),
    host: run.host,
    loadavgAtEnd: hostInfo().loadavg,
  };
}

/** The first lines of a results .md: title, command, date and host — with a line break after
 *  the host when `more` lines follow in the same paragraph. */
export function markdownHeader(run: RunStart, more = false): string[] {
  const { host } = run;
  return [
    `# ${run.name}`,
    "",
    `Command: \`${run.command}\`  `,
    `Date: ${new Date().toISOString()}  `,
    `Host: node ${host.node}, ${host.platform}, ${host.cpus} CPUs (${host.cpuModel}), load ${JSON.stringify(host.loadavg)}${more ? "  " : ""}`,
  ];
}

/** Writes NAME.json and NAME.md into `dir` (created if needed); returns their paths. */
export function writeResults(dir: string, name: string, json: unknown, markdown: string): string[] {
  mkdirSync(dir, { recursive: true });
  const jsonPath = join(dir, `${name}.json`);
  const mdPath = join(dir, `${name}.md`);
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(mdPath, markdown.endsWith("\n") ? markdown : `${markdown}\n`);
  return [jsonPath, mdPath];
}
