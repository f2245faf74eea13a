import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Helpers for the benchmark smoke tests: run a benchmark, read its tables, look for leftovers. */

export const root = fileURLToPath(new URL("../../", import.meta.url));

export interface Run {
  code: number | null;
  pid: number;
  stdout: string;
  stderr: string;
}

/** Runs a script under tsx; interrupts it (SIGINT, by pid) if it overstays `ms`. */
export function runScript(args: string[], ms: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGINT"), ms);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, pid: child.pid ?? 0, stdout, stderr });
    });
  });
}

/** Pids whose command line contains `pattern`. */
export function pgrep(pattern: string): number[] {
  try {
    return execFileSync("pgrep", ["-f", "--", pattern], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Network namespaces (`ip netns list`); empty when `ip` is missing. */
export function namespaces(): string[] {
  try {
    return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0] ?? "")
      .filter(Boolean);
  } catch {
    return [];
  }
}

/** Every Markdown table in `text`, each as its rows keyed by header. */
export function parseTables(text: string): Array<Array<Record<string, string>>> {
  const cells = (l: string) =>
    l
      .slice(1, -1)
      .split("|")
      .map((c) => c.trim());
  const tables: string[][] = [];
  let current: string[] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("|")) {
      if (!current) {
        current = [];
        tables.push(current);
      }
      current.push(line);
    } else current = undefined;
  }
  return tables.map((lines) => {
    const headers = cells(lines[0]!);
    return lines.slice(2).map((l) => Object.fromEntries(cells(l).map((c, i) => [headers[i], c])));
  });
}
