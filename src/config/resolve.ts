import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import type { CheckConfig, EngineConfig, TargetConfig } from "../health/engine.ts";
import { DEFAULT_RETENTION } from "../health/history-store.ts";
import type { ProbeRegistry } from "../health/probes/registry.ts";
import type { CheckSettings, MonitorSettings } from "../health/settings.ts";
import type { HookConfig } from "../hooks/schema.ts";
import type { LogLevel } from "../util/logger.ts";
import { PROFILES, type ProfileName } from "./profiles.ts";
import {
  type ParsedConfig,
  rawConfig,
  SETTINGS_KEYS,
  type SettingsOverride,
  settingsOverride,
} from "./schema.ts";

export interface ResolvedConfig extends EngineConfig {
  profile: ProfileName;
  log: { level: LogLevel };
  admin: { listen?: string | undefined; token?: string | undefined };
  /** Lasting history: the file (undefined: off) and how long rows are kept, ms. */
  history: { path: string | undefined; retention: number };
  /** State-change hooks. */
  hooks: HookConfig[];
}

/** Where the monitor keeps its history unless told otherwise (relative to the working dir). */
export const DEFAULT_HISTORY_PATH = ".lifeline/history.db";

export interface Issue {
  path: string;
  message: string;
}

/** `["targets", 0, "checks", 1, "url"]` → `targets[0].checks[1].url`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

function zodIssues(error: z.ZodError, prefix: ReadonlyArray<PropertyKey> = []): Issue[] {
  return error.issues.map((i) => ({ path: formatPath([...prefix, ...i.path]), message: i.message }));
}

/** Applies an override on top of settings (later wins). */
export function applyOverride(base: CheckSettings, o: SettingsOverride | undefined): CheckSettings {
  if (!o) return base;
  const next: CheckSettings = { ...base, timeout: { ...base.timeout } };
  // A shorter interval than the profile's fastInterval brings fastInterval down with it,
  // unless fastInterval is set in the same place (then both are checked as given).
  if (o.interval !== undefined && o.fastInterval === undefined) {
    next.fastInterval = Math.min(base.fastInterval, o.interval);
  }
  for (const key of SETTINGS_KEYS) {
    const v = o[key];
    if (v === undefined) continue;
    if (key === "timeout") {
      if (typeof v === "number") {
        // A single duration: a fixed timeout, as the seed had.
        next.timeout = { mode: "fixed", initial: v, min: v, max: v, floor: 0 };
      } else {
        Object.assign(next.timeout, v);
      }
    } else {
      (next as unknown as Record<string, unknown>)[key] = v;
    }
  }
  return next;
}

function settingsIssues(s: CheckSettings, path: string): Issue[] {
  const issues: Issue[] = [];
  const t = s.timeout;
  if (t.min > t.max)
    issues.push({ path: `${path}.timeout.min`, message: `must not exceed timeout.max (${t.max} ms)` });
  return issues;
}

function pick(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

function omit(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/** Validates a whole configuration object and resolves every setting; throws ConfigError. */
export function resolveConfig(input: unknown, registry: ProbeRegistry): ResolvedConfig {
  const parsed = rawConfig.safeParse(input ?? {});
  if (!parsed.success) throw new ConfigError(zodIssues(parsed.error));
  const cfg: ParsedConfig = parsed.data;
  const profile = PROFILES[cfg.profile];
  const issues: Issue[] = [];

  const lh = { ...profile.monitor.localHealth, ...cfg.monitor.localHealth };
  const monitor: MonitorSettings = { ...profile.monitor, ...cfg.monitor, localHealth: lh };
  const base = applyOverride(profile.check, cfg.defaults);
  issues.push(...settingsIssues(base, "defaults"));
  if (cfg.defaults.fastInterval !== undefined && base.fastInterval > base.interval) {
    issues.push({ path: "defaults.fastInterval", message: `must not exceed interval (${base.interval} ms)` });
  }

  const targets: TargetConfig[] = [];
  const ids = new Set<string>();
  cfg.targets.forEach((raw, ti) => {
    const where = `targets[${ti}]`;
    const targetSettings = applyOverride(base, pick(raw, SETTINGS_KEYS) as SettingsOverride);
    const rawChecks: Array<{ entry: Record<string, unknown>; path: string }> = [];
    if (raw.address !== undefined) {
      const parsedTarget = safeParseTarget(registry, raw.address);
      if (!parsedTarget) {
        issues.push({
          path: `${where}.address`,
          message: `"${raw.address}" is not host:port or a tcp://, http://, https://, tls:// URL`,
        });
      } else {
        rawChecks.push({
          entry: { type: parsedTarget.type, ...parsedTarget.spec },
          path: `${where}.address`,
        });
      }
    }
    raw.checks.forEach((c, ci) => {
      rawChecks.push({ entry: c as Record<string, unknown>, path: `${where}.checks[${ci}]` });
    });
    if (rawChecks.length === 0) {
      issues.push({ path: where, message: "a target needs an address or at least one check" });
      return;
    }
    const checks: CheckConfig[] = [];
    const names = new Set<string>();
    for (const { entry, path } of rawChecks) {
      const type = String(entry.type);
      const probeType = registry.get(type);
      if (!probeType) {
        issues.push({
          path: `${path}.type`,
          message: `unknown check type "${type}" (known: ${registry.names().join(", ")})`,
        });
        continue;
      }
      const overrides = settingsOverride.safeParse(pick(entry, SETTINGS_KEYS));
      if (!overrides.success) {
        issues.push(...zodIssues(overrides.error).map((i) => ({ ...i, path: `${path}.${i.path}` })));
        continue;
      }
      const fields = omit(entry, ["type", "name", ...SETTINGS_KEYS]);
      const spec = probeType.schema.safeParse(fields);
      if (!spec.success) {
        issues.push(
          ...zodIssues(spec.error).map((i) => ({ ...i, path: i.path ? `${path}.${i.path}` : path })),
        );
        continue;
      }
      const probeSpec = spec.data as Record<string, unknown>;
      let settings = applyOverride(
        targetSettings,
        probeType.settings?.(probeSpec) as SettingsOverride | undefined,
      );
      settings = applyOverride(settings, overrides.data);
      issues.push(...settingsIssues(settings, path));
      if (settings.fastInterval > settings.interval) {
        // An error only where fastInterval was written; otherwise it follows the interval down.
        const at =
          overrides.data.fastInterval !== undefined
            ? path
            : raw.fastInterval !== undefined
              ? where
              : undefined;
        if (at)
          issues.push({
            path: `${at}.fastInterval`,
            message: `must not exceed interval (${settings.interval} ms)`,
          });
        else settings = { ...settings, fastInterval: settings.interval };
      }
      let name = typeof entry.name === "string" ? entry.name : type;
      if (names.has(name)) {
        if (typeof entry.name === "string") {
          issues.push({ path: `${path}.name`, message: `duplicate check name "${name}" in this target` });
          continue;
        }
        let n = 2;
        while (names.has(`${type}-${n}`)) n++;
        name = `${type}-${n}`;
      }
      names.add(name);
      checks.push({ name, type, spec: probeSpec, settings });
    }
    const id = raw.id ?? raw.address ?? defaultId(checks[0]);
    if (ids.has(id)) {
      issues.push({ path: `${where}.id`, message: `duplicate target id "${id}"` });
      return;
    }
    ids.add(id);
    targets.push({ id, tags: raw.tags, disabled: raw.disabled, checks });
  });

  if (issues.length > 0) throw new ConfigError(issues);
  const historyPath = cfg.history.path ?? DEFAULT_HISTORY_PATH;
  const history = {
    path: /^(off|false|none|no)$/i.test(historyPath) ? undefined : historyPath,
    retention: cfg.history.retention ?? DEFAULT_RETENTION,
  };
  return {
    profile: cfg.profile,
    log: cfg.log,
    admin: cfg.admin,
    history,
    hooks: cfg.hooks,
    monitor,
    targets,
  };
}

function safeParseTarget(registry: ProbeRegistry, address: string) {
  try {
    return registry.parseTarget(address);
  } catch {
    return undefined;
  }
}

function defaultId(check: CheckConfig | undefined): string {
  if (!check) return "target";
  const s = check.spec;
  for (const key of ["address", "url", "command"]) {
    const v = s[key];
    if (typeof v === "string") return v;
    if (Array.isArray(v)) return v.join(" ");
  }
  return check.name;
}
