import { readFileSync } from "node:fs";
import YAML from "yaml";
import { ConfigError } from "../errors.ts";
import type { ProbeRegistry } from "../health/probes/registry.ts";
import { type ResolvedConfig, resolveConfig } from "./resolve.ts";

/**
 * Where configuration comes from, lowest precedence first: the profile's defaults, the file
 * (YAML or JSON), environment variables, command-line flags. TARGET arguments add targets.
 *
 * Environment: `LIFELINE_PROFILE=wan`, and any setting by its path in upper snake case with
 * `__` between levels: `LIFELINE_DEFAULTS__INTERVAL=1s`, `LIFELINE_MONITOR__MAX_IN_FLIGHT=64`,
 * `LIFELINE_LOG__LEVEL=debug`. Values are read as YAML scalars (`true`, `3`, `2s`).
 */
export type RawObject = Record<string, unknown>;

/** Variables that are not settings paths. */
const RESERVED_ENV = new Set(["LIFELINE_CONFIG", "LIFELINE_ADMIN_TOKEN"]);

export function readConfigFile(path: string): RawObject {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError([{ path: "", message: `cannot read ${path}: ${code}` }], { cause: err });
  }
  return parseConfigText(text, path);
}

/** A configuration document (YAML, of which JSON is a part); `source` names it in errors. */
export function parseConfigText(text: string, source: string): RawObject {
  const path = source;
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: "", message: `${path}: ${e.message.split("\n")[0]}` })),
      { cause: doc.errors[0] },
    );
  }
  let value: unknown;
  try {
    // Unresolved aliases and alias bombs throw here, not in doc.errors.
    value = doc.toJS({ maxAliasCount: 1000 }) ?? {};
  } catch (err) {
    throw new ConfigError(
      [{ path: "", message: `${path}: ${err instanceof Error ? err.message : String(err)}` }],
      {
        cause: err,
      },
    );
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError([{ path: "", message: `${path}: the top level must be a mapping` }]);
  }
  return value as RawObject;
}

function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function envOverrides(env: NodeJS.ProcessEnv): RawObject {
  return envSources(env).raw;
}

/** Environment settings, and for each the configuration path it sets and its variable. */
function envSources(env: NodeJS.ProcessEnv): { raw: RawObject; vars: Array<{ path: string; name: string }> } {
  const out: RawObject = {};
  const vars: Array<{ path: string; name: string }> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("LIFELINE_") || value === undefined || RESERVED_ENV.has(name)) continue;
    const path = name.slice("LIFELINE_".length).split("__").map(camel);
    if (path.some((p) => p.length === 0)) continue;
    let parsed: unknown = value;
    try {
      parsed = YAML.parse(value);
    } catch {
      parsed = value;
    }
    let node = out;
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
      node = node[key] as RawObject;
    }
    node[path[path.length - 1]!] = parsed;
    vars.push({ path: path.join("."), name });
  }
  return { raw: out, vars };
}

/** Adds "(from LIFELINE_X)" to issues about settings that came from the environment. */
function blameEnvironment(err: ConfigError, vars: Array<{ path: string; name: string }>): ConfigError {
  if (vars.length === 0) return err;
  let changed = false;
  const issues = err.issues.map((i) => {
    const v = vars.find((e) => {
      const dot = e.path.lastIndexOf(".");
      const parent = dot < 0 ? "" : e.path.slice(0, dot);
      const key = e.path.slice(dot + 1);
      // the setting itself, something inside it, or an unknown key of its parent
      return (
        i.path === e.path ||
        i.path.startsWith(`${e.path}.`) ||
        (i.path === parent && i.message.includes(`"${key}"`))
      );
    });
    if (!v) return i;
    changed = true;
    return { ...i, message: `${i.message} (from environment variable ${v.name})` };
  });
  return changed ? new ConfigError(issues, { cause: err }) : err;
}

const SECRET_KEY = /token|password|passwd|secret|authorization|api[-_]?key|cookie/i;

/** A copy with every value under a secret-looking key replaced (for display and the API). */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (!isObject(value)) return value;
  const out: RawObject = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null ? "[redacted]" : redact(v);
  return out;
}

function isObject(v: unknown): v is RawObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep merge of plain objects; arrays and scalars in `b` replace those in `a`. */
export function mergeRaw(a: RawObject, b: RawObject): RawObject {
  const out: RawObject = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    out[k] = isObject(v) && isObject(out[k]) ? mergeRaw(out[k] as RawObject, v) : v;
  }
  return out;
}

export interface LoadOptions {
  registry: ProbeRegistry;
  /** Configuration file path (YAML or JSON). */
  file?: string | undefined;
  /** A configuration document given directly (PUT /api/config): used instead of the file. */
  document?: RawObject | undefined;
  env?: NodeJS.ProcessEnv;
  /** From command-line flags; highest precedence. */
  flags?: RawObject;
  /** TARGET arguments: "host:port" or a URL; each becomes a target. An object is a whole
   *  target definition (as in the file), e.g. `{ id, address }` from `--cluster`. */
  targets?: ReadonlyArray<string | RawObject>;
}

export interface Loaded {
  config: ResolvedConfig;
  /** The merged input before resolution (for display and reload comparison). */
  raw: RawObject;
}

export function loadConfig(opts: LoadOptions): Loaded {
  let raw: RawObject = opts.document ?? (opts.file ? readConfigFile(opts.file) : {});
  const env = envSources(opts.env ?? {});
  raw = mergeRaw(raw, env.raw);
  raw = mergeRaw(raw, opts.flags ?? {});
  if (opts.targets && opts.targets.length > 0) {
    const existing = Array.isArray(raw.targets) ? raw.targets : [];
    const added = opts.targets.map((t) => (typeof t === "string" ? { address: t } : t));
    raw = { ...raw, targets: [...existing, ...added] };
  }
  try {
    return { config: resolveConfig(raw, opts.registry), raw };
  } catch (err) {
    throw err instanceof ConfigError ? blameEnvironment(err, env.vars) : err;
  }
}
