import type { Command } from "commander";
import type { RawObject } from "../config/load.ts";

/** Flags shared by `check` and `monitor`; each maps onto a configuration path. */
export interface CommonFlags {
  config?: string;
  profile?: string;
  interval?: string;
  timeout?: string;
  fall?: string;
  rise?: string;
  maxInFlight?: string;
  logLevel?: string;
  json?: boolean;
}

export function addCommonOptions(cmd: Command): Command {
  return cmd
    .option("-c, --config <file>", "configuration file (YAML or JSON); also LIFELINE_CONFIG")
    .option("-p, --profile <name>", "lan (default), wan, or classic (the seed's behaviour)")
    .option("--interval <duration>", "time between checks of a healthy target (defaults.interval)")
    .option("--timeout <duration>", "fixed check timeout instead of the adaptive one (defaults.timeout)")
    .option("--fall <n>", "consecutive failures before down (defaults.fall)")
    .option("--rise <n>", "consecutive successes before a down target is healthy (defaults.rise)")
    .option("--max-in-flight <n>", "most probes in flight at once (monitor.maxInFlight)")
    .option("--log-level <level>", "debug, info, warn, error or silent (log.level)")
    .option("--json", "machine-readable output");
}

function num(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  return /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : Number.NaN;
}

function durationOrNumber(v: string | undefined): string | number | undefined {
  if (v === undefined) return undefined;
  return /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
}

/** Flags as a partial configuration object (highest precedence). */
export function flagsToRaw(flags: CommonFlags): RawObject {
  const raw: RawObject = {};
  if (flags.profile !== undefined) raw.profile = flags.profile;
  const defaults: RawObject = {};
  if (flags.interval !== undefined) defaults.interval = durationOrNumber(flags.interval);
  if (flags.timeout !== undefined) defaults.timeout = durationOrNumber(flags.timeout);
  if (flags.fall !== undefined) defaults.fall = num(flags.fall);
  if (flags.rise !== undefined) defaults.rise = num(flags.rise);
  if (Object.keys(defaults).length > 0) raw.defaults = defaults;
  if (flags.maxInFlight !== undefined) raw.monitor = { maxInFlight: num(flags.maxInFlight) };
  if (flags.logLevel !== undefined) raw.log = { level: flags.logLevel };
  return raw;
}
