import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { envOverrides, loadConfig, mergeRaw } from "../../src/config/load.ts";
import { PROFILES } from "../../src/config/profiles.ts";
import { applyOverride, formatPath, resolveConfig } from "../../src/config/resolve.ts";
import { ConfigError } from "../../src/errors.ts";
import { defaultRegistry } from "../../src/health/probes/index.ts";

const registry = defaultRegistry();

function issuesOf(input: unknown): Array<{ path: string; message: string }> {
  try {
    resolveConfig(input, registry);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("LL_CONFIG_INVALID");
    return [...(err as ConfigError).issues];
  }
  throw new Error("expected a ConfigError");
}

describe("configuration: validation names the field", () => {
  // [input, path, message fragment]
  const cases: Array<[unknown, string, string]> = [
    [{ profile: "fast" }, "profile", "expected one of"],
    [{ defaults: { interval: "soon" } }, "defaults.interval", "invalid duration"],
    [{ defaults: { fall: 0 } }, "defaults.fall", ">=1"],
    [{ defaults: { jitter: 2 } }, "defaults.jitter", "<=0.5"],
    [{ defaults: { intervall: "1s" } }, "defaults", "intervall"],
    [{ targets: [{ id: "a" }] }, "targets[0]", "needs an address or at least one check"],
    [{ targets: [{ address: "nowhere" }] }, "targets[0].address", "not host:port"],
    [{ targets: [{ address: "127.0.0.1:1", interval: -1 }] }, "targets[0].interval", "invalid duration"],
    [
      { targets: [{ checks: [{ type: "smoke" }] }] },
      "targets[0].checks[0].type",
      'unknown check type "smoke"',
    ],
    [{ targets: [{ checks: [{ type: "tcp", address: "x" }] }] }, "targets[0].checks[0].address", "host:port"],
    [
      { targets: [{ checks: [{ type: "tcp", address: "a:1", expect: "/[/" }] }] },
      "targets[0].checks[0].expect",
      "regular expression",
    ],
    [
      { targets: [{ checks: [{ type: "tcp", address: "a:1", colour: "red" }] }] },
      "targets[0].checks[0]",
      "colour",
    ],
    [
      { targets: [{ checks: [{ type: "tcp", address: "a:1", fall: "many" }] }] },
      "targets[0].checks[0].fall",
      "expected number",
    ],
    [{ targets: [{ address: "a:1" }, { address: "a:1" }] }, "targets[1].id", "duplicate target id"],
    [
      { defaults: { timeout: { min: "5s", max: "1s" } } },
      "defaults.timeout.min",
      "must not exceed timeout.max",
    ],
    [{ defaults: { fastInterval: "5s" } }, "defaults.fastInterval", "must not exceed interval"],
    [{ monitor: { maxInFlight: 0 } }, "monitor.maxInFlight", ">=1"],
    [{ log: { level: "loud" } }, "log.level", "expected one of"],
  ];
  it.each(cases)("%j → %s", (input, path, message) => {
    const issues = issuesOf(input);
    const match = issues.find((i) => i.path === path);
    expect(match, JSON.stringify(issues)).toBeDefined();
    expect(match!.message).toContain(message);
  });

  it("formats paths", () => {
    expect(formatPath(["targets", 0, "checks", 1, "url"])).toBe("targets[0].checks[1].url");
    expect(formatPath([])).toBe("");
  });
});

describe("configuration: resolution", () => {
  it("applies profile < defaults < target < check, and names checks", () => {
    const c = resolveConfig(
      {
        profile: "lan",
        defaults: { interval: "5s", fall: 4 },
        targets: [
          {
            id: "db",
            interval: "3s",
            checks: [
              { type: "tcp", address: "127.0.0.1:6379", send: "PING\r\n", expect: "+PONG" },
              { type: "tcp", address: "127.0.0.1:6380", interval: 1000, critical: false },
              { type: "tcp", name: "replica", address: "127.0.0.1:6381", timeout: "750ms" },
            ],
          },
        ],
      },
      registry,
    );
    const [a, b, r] = c.targets[0]!.checks;
    expect([a!.name, b!.name, r!.name]).toEqual(["tcp", "tcp-2", "replica"]);
    expect(a!.settings.interval).toBe(3000);
    expect(a!.settings.fall).toBe(4);
    expect(a!.settings.rise).toBe(PROFILES.lan.check.rise);
    expect(a!.spec).toMatchObject({ send: "PING\r\n", expect: "+PONG", close: "rst" });
    expect(b!.settings.interval).toBe(1000);
    expect(b!.settings.critical).toBe(false);
    expect(r!.settings.timeout).toEqual({ mode: "fixed", initial: 750, min: 750, max: 750, floor: 0 });
  });

  it("a short interval brings the profile's fastInterval down with it, unless that is set too", () => {
    const c = resolveConfig(
      { profile: "classic", defaults: { interval: "1s" }, targets: [{ address: "a:1" }] },
      registry,
    );
    expect(c.targets[0]!.checks[0]!.settings).toMatchObject({ interval: 1000, fastInterval: 1000 });
    const t = resolveConfig({ targets: [{ address: "a:1", interval: "100ms" }] }, registry);
    expect(t.targets[0]!.checks[0]!.settings).toMatchObject({ interval: 100, fastInterval: 100 });
    expect(issuesOf({ targets: [{ address: "a:1", interval: "100ms", fastInterval: "1s" }] })).toEqual([
      { path: "targets[0].fastInterval", message: "must not exceed interval (100 ms)" },
    ]);
  });

  it("a lower timeout.max clamps the profile's initial timeout instead of failing", () => {
    const c = resolveConfig(
      { defaults: { timeout: { max: "500ms", min: "100ms" } }, targets: [{ address: "a:1" }] },
      registry,
    );
    expect(c.targets[0]!.checks[0]!.settings.timeout).toMatchObject({ initial: 2000, min: 100, max: 500 });
  });

  it("classic is the seed exactly", () => {
    const c = resolveConfig({ profile: "classic", targets: [{ address: "127.0.0.1:1" }] }, registry);
    const s = c.targets[0]!.checks[0]!.settings;
    expect(s).toMatchObject({ interval: 3000, jitter: 0, fall: 1, rise: 1, patience: false });
    expect(s.timeout).toMatchObject({ mode: "fixed", initial: 2000 });
    expect(c.monitor.scheduling).toBe("sequential");
    expect(c.monitor.localHealth.enabled).toBe(false);
  });

  it("turns addresses into checks by their scheme and uses the address as id", () => {
    const c = resolveConfig(
      { targets: [{ address: "127.0.0.1:80" }, { address: "tcp://[::1]:81?send=hi&expect=ok" }] },
      registry,
    );
    expect(c.targets.map((t) => t.id)).toEqual(["127.0.0.1:80", "tcp://[::1]:81?send=hi&expect=ok"]);
    expect(c.targets[1]!.checks[0]!.spec).toMatchObject({ address: "[::1]:81", send: "hi", expect: "ok" });
  });

  it("a fixed timeout via applyOverride leaves other settings alone", () => {
    const s = applyOverride(PROFILES.lan.check, { timeout: 300 });
    expect(s.timeout.max).toBe(300);
    expect(s.fall).toBe(3);
    const t = applyOverride(PROFILES.lan.check, { timeout: { max: 20_000 } });
    expect(t.timeout).toMatchObject({ mode: "adaptive", min: 1000, max: 20_000 });
  });
});

describe("configuration: sources", () => {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads YAML, then environment, then flags, then TARGET arguments", () => {
    const file = join(dir, "a.yaml");
    writeFileSync(
      file,
      "profile: wan\ndefaults:\n  interval: 10s\n  fall: 5\ntargets:\n  - id: one\n    address: 127.0.0.1:1\n",
    );
    const { config } = loadConfig({
      registry,
      file,
      env: {
        LIFELINE_DEFAULTS__FALL: "6",
        LIFELINE_MONITOR__MAX_IN_FLIGHT: "64",
        LIFELINE_LOG__LEVEL: "debug",
        HOME: "/x",
      },
      flags: { defaults: { fall: 7 } },
      targets: ["127.0.0.1:2"],
    });
    expect(config.profile).toBe("wan");
    expect(config.targets.map((t) => t.id)).toEqual(["one", "127.0.0.1:2"]);
    expect(config.targets[0]!.checks[0]!.settings.interval).toBe(10_000);
    expect(config.targets[0]!.checks[0]!.settings.fall).toBe(7);
    expect(config.monitor.maxInFlight).toBe(64);
    expect(config.log.level).toBe("debug");
  });

  it("reports unreadable and malformed files", () => {
    expect(() => loadConfig({ registry, file: join(dir, "missing.yaml") })).toThrow(/cannot read .*ENOENT/);
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "targets: [\n  - id: x\n");
    expect(() => loadConfig({ registry, file: bad })).toThrow(ConfigError);
    const alias = join(dir, "alias.yaml");
    writeFileSync(alias, "targets:\n  - *nope\n");
    expect(() => loadConfig({ registry, file: alias })).toThrow(ConfigError);
    const list = join(dir, "list.yaml");
    writeFileSync(list, "- 1\n- 2\n");
    expect(() => loadConfig({ registry, file: list })).toThrow(/top level must be a mapping/);
  });

  it("maps environment names to paths", () => {
    expect(
      envOverrides({
        LIFELINE_PROFILE: "classic",
        LIFELINE_MONITOR__LOCAL_HEALTH__ENABLED: "false",
        LIFELINE_CONFIG: "x",
      }),
    ).toEqual({
      profile: "classic",
      monitor: { localHealth: { enabled: false } },
    });
  });

  it("merges deeply, later wins, arrays replace", () => {
    expect(mergeRaw({ a: { b: 1, c: [1] }, d: 1 }, { a: { c: [2] }, e: 2 })).toEqual({
      a: { b: 1, c: [2] },
      d: 1,
      e: 2,
    });
  });
});

describe("configuration: errors from the environment name the variable", () => {
  // [env, message fragment]
  const cases: Array<[Record<string, string>, string]> = [
    [{ LIFELINE_FOO: "1" }, 'Unrecognized key: "foo" (from environment variable LIFELINE_FOO)'],
    [{ LIFELINE_DEFAULTS__INTERVAL: "x" }, "defaults.interval: invalid duration"],
    [{ LIFELINE_DEFAULTS__INTERVALL: "1s" }, "(from environment variable LIFELINE_DEFAULTS__INTERVALL)"],
    [
      { LIFELINE_MONITOR__LOCAL_HEALTH__ENABLED: "maybe" },
      "(from environment variable LIFELINE_MONITOR__LOCAL_HEALTH__ENABLED)",
    ],
  ];
  it.each(cases)("%j", (env, fragment) => {
    expect(() => loadConfig({ registry, env })).toThrow(fragment);
  });
});
