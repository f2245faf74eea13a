/**
 * Runs the benchmarks: every bench/*.ts but this file (helpers live in bench/lib/), each as
 * a child `npx tsx` process, one after the other; remaining arguments are passed through.
 *
 *   npm run bench                          every benchmark
 *   npm run bench -- probe-cost         one (several: probe-cost,other)
 *   npm run bench -- probe-cost --quick ...with its own options
 *   npm run bench -- --quick               every benchmark, each with --quick
 *   npm run bench -- --list                the names
 *
 * Exits with the first non-zero status of a benchmark (after running the others).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const benchDir = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = fileURLToPath(new URL("../", import.meta.url));

const available = readdirSync(benchDir, { withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith(".ts") && e.name !== "run.ts" && !e.name.endsWith(".d.ts"))
  .map((e) => e.name.slice(0, -3))
  .sort();

const args = process.argv.slice(2);
if (args[0] === "--list") {
  process.stdout.write(`${available.join("\n")}\n`);
  process.exit(0);
}

let selected = available;
let passThrough = args;
if (args[0] !== undefined && !args[0].startsWith("-")) {
  const names = args[0].split(",").map((n) => n.replace(/^bench\//, "").replace(/\.ts$/, ""));
  const unknown = names.filter((n) => !available.includes(n));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark: ${unknown.join(", ")} (available: ${available.join(", ")})\n`);
    process.exit(2);
  }
  selected = names;
  passThrough = args.slice(1);
}
if (selected.length === 0) {
  process.stderr.write("no benchmarks in bench/\n");
  process.exit(2);
}

/**
 * When the whole suite runs (no names given), these benchmarks get shorter settings so that
 * `npm run bench` stays under 15 minutes on a 2-core machine; run one by name for its full
 * length (false-positives: 10 minutes; swim-sim: 10, 100 and 1,000 members; failover: 30
 * kills and 6 freezes per strategy; gossip-vs-serf: 5 trials, 60 s windows). Explicit options
 * still win (they come after). Measured on a quiet 2-core machine (2026-11-29): the whole
 * suite with these, 865 s (14.4 min); every benchmark at its full length, 1195 s.
 */
const SUITE_DEFAULTS: Record<string, string[]> = {
  "false-positives": ["--minutes", "1.5"],
  failover: ["--kills", "10", "--freezes", "4"],
  // Both systems' clusters run at once; each false-failure window is followed by a 25 s tail.
  "gossip-vs-serf": ["--trials", "2", "--window", "15"],
  "probe-cost": ["--seconds", "5"],
  store: ["--seconds", "3"],
  // 1,000 simulated members under loss take minutes of CPU: run alone for those.
  "swim-sim": ["--sizes", "10,100", "--seconds", "30"],
  throughput: ["--seconds", "3"],
};
const wholeSuite = selected === available && !passThrough.includes("--quick");
// The long soak last, so the timing benchmarks run on a machine that is otherwise quiet.
if (wholeSuite)
  selected = [
    ...selected.filter((n) => n !== "false-positives"),
    ...selected.filter((n) => n === "false-positives"),
  ];

let current: ChildProcess | undefined;
let stopping = false;

/** Signals the running benchmark's whole process group: npx, tsx and the benchmark itself. */
function signalCurrent(signal: NodeJS.Signals): void {
  if (current?.pid === undefined || current.exitCode !== null || current.signalCode !== null) return;
  try {
    process.kill(-current.pid, signal);
  } catch {
    // already gone
  }
}

// npx does not pass a signal on to the program it runs, so each benchmark runs in its own
// process group and a signal goes to the group (as Ctrl-C would); the benchmark stops its
// own children. No further benchmark starts.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    stopping = true;
    signalCurrent(signal);
  });
}
process.on("exit", () => signalCurrent("SIGTERM"));

function run(name: string): Promise<number> {
  return new Promise((resolve) => {
    const args = [...(wholeSuite ? (SUITE_DEFAULTS[name] ?? []) : []), ...passThrough];
    process.stderr.write(`\n== bench ${name} ${args.join(" ")}\n`);
    const child = spawn("npx", ["tsx", `bench/${name}.ts`, ...args], {
      cwd: repoRoot,
      // Its own process group (see signalCurrent); a background group must not read the terminal.
      detached: true,
      stdio: ["ignore", "inherit", "inherit"],
    });
    current = child;
    child.once("error", (err) => {
      process.stderr.write(`bench ${name}: ${err.message}\n`);
      resolve(1);
    });
    child.once("exit", (code, signal) => {
      current = undefined;
      resolve(code ?? (signal === "SIGINT" ? 130 : 1));
    });
  });
}

let status = 0;
const suiteStart = Date.now();
for (const name of selected) {
  if (stopping) break;
  const code = await run(name);
  if (code !== 0) {
    process.stderr.write(`bench ${name} exited with status ${code}\n`);
    if (status === 0) status = code;
  }
}
process.stderr.write(
  `\n== ${selected.length} benchmark(s) in ${Math.round((Date.now() - suiteStart) / 1000)} s\n`,
);
process.exit(stopping && status === 0 ? 130 : status);
