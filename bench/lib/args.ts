import { randomUUID } from "node:crypto";
import { join, resolve } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { repoRoot } from "./children.ts";

/**
 * Command-line helpers shared by the benchmarks: node:util's parseArgs with the options they
 * all take (--quick, --out, --run-id, --help), and checks of numbers and lists that throw a
 * UsageError saying what is wrong. (The benchmarks' usage texts stay their own.)
 */

/** A bad command line: main prints the message and the usage, and exits 2. */
export class UsageError extends Error {}

/** What every benchmark's options have: --quick, --out (default bench/results), --run-id. */
export interface CommonOptions {
  quick: boolean;
  out: string;
  /** Tag for this run's child processes (default: random). */
  runId: string;
}

type Values<S extends string, B extends string> = { [K in S]?: string } & { [K in B]: boolean };

/**
 * parseArgs (strict) with the string options `strings`, the boolean ones `booleans` and the
 * common ones (--quick, --out, --run-id, --help); `--help` prints `usage` and exits 0.
 */
export function parseBenchArgs<S extends string, B extends string = never>(
  argv: string[],
  usage: string,
  strings: readonly S[],
  booleans: readonly B[] = [],
): { values: Values<S, B> & { out?: string }; common: CommonOptions } {
  const options: NonNullable<ParseArgsConfig["options"]> = {
    quick: { type: "boolean", default: false },
    out: { type: "string" },
    "run-id": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  };
  for (const name of strings) options[name] = { type: "string" };
  for (const name of booleans) options[name] = { type: "boolean", default: false };
  const { values } = parseArgs({ args: argv, options, strict: true });
  if (values.help === true) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const out = values.out as string | undefined;
  const runId = values["run-id"] as string | undefined;
  return {
    values: values as Values<S, B> & { out?: string },
    common: {
      quick: values.quick === true,
      out: resolve(out ?? join(repoRoot, "bench", "results")),
      runId: runId ?? randomUUID().slice(0, 8),
    },
  };
}

/** A numeric option: `fallback` when absent; otherwise a number >= `min` (an integer unless
 *  `integer: false`). */
export function numberArg(
  name: string,
  value: string | undefined,
  fallback: number,
  { min = 1, integer = true }: { min?: number; integer?: boolean } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${integer ? "an integer" : "a number"} >= ${min}`);
  return n;
}

/**
 * A comma-separated subset of `all`, named by `id` (default: the item itself), in the order of
 * `all`. `known` is the list an error shows (default: every id); `skipEmpty` ignores empty items.
 */
export function pickList<T>(
  name: string,
  value: string,
  all: readonly T[],
  opts: { id?: (item: T) => string; known?: readonly string[]; skipEmpty?: boolean } = {},
): T[] {
  const id = opts.id ?? String;
  const ids = value.split(",").map((s) => s.trim());
  const wanted = opts.skipEmpty ? ids.filter(Boolean) : ids;
  const unknown = wanted.filter((w) => !all.some((item) => id(item) === w));
  if (unknown.length > 0)
    throw new UsageError(
      `--${name}: unknown ${unknown.join(", ")} (known: ${(opts.known ?? all.map(id)).join(", ")})`,
    );
  return all.filter((item) => wanted.includes(id(item)));
}
