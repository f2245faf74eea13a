import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.ts";
import { compileFilter, targetMatcher } from "../../src/hooks/filter.ts";
import { hookSchema, hooksSchema, parseHooks } from "../../src/hooks/schema.ts";

describe("hook configuration", () => {
  it("fills defaults and names hooks by position", () => {
    const hooks = parseHooks([
      { command: ["/bin/true"] },
      {
        name: "chat",
        webhook: "https://chat.example.com/hook/SECRET",
        headers: { Authorization: "Bearer x" },
      },
    ]);
    expect(hooks[0]).toEqual({
      name: "hook-1",
      type: "command",
      command: ["/bin/true"],
      env: {},
      timeout: 10_000,
      events: ["state", "flapping", "stable"],
      notifyInitial: false,
      flap: { enabled: true, window: 600_000, threshold: 5, quiet: 300_000 },
      queue: 100,
    });
    expect(hooks[1]).toMatchObject({
      name: "chat",
      type: "webhook",
      url: "https://chat.example.com/hook/SECRET",
      headers: { Authorization: "Bearer x" },
      timeout: 5_000,
      attempts: 5,
      backoff: { base: 500, cap: 30_000 },
    });
  });

  it("reads durations, filters, flap options and `flap: false`", () => {
    const [a, b] = parseHooks([
      {
        command: 'notify-send "$LIFELINE_TARGET"',
        targets: ["db-*", "api"],
        to: ["down", "healthy"],
        timeout: "3s",
        flap: { window: "2m", threshold: 3, quiet: "30s" },
      },
      { webhook: "http://127.0.0.1:9/x", flap: false, backoff: { base: "100ms" }, attempts: 2 },
    ]);
    expect(a).toMatchObject({ targets: ["db-*", "api"], to: ["down", "healthy"], timeout: 3000 });
    expect(a!.flap).toEqual({ enabled: true, window: 120_000, threshold: 3, quiet: 30_000 });
    expect(b!.flap.enabled).toBe(false);
    expect(b).toMatchObject({ attempts: 2, backoff: { base: 100, cap: 30_000 } });
  });

  // [input, path in the error, words in the message]
  const bad: Array<[unknown, string, string]> = [
    [[{}], "hooks[0]", "exactly one of `command` and `webhook`"],
    [[{ command: "x", webhook: "http://a/" }], "hooks[0]", "exactly one"],
    [[{ webhook: "ftp://example.com/x" }], "hooks[0].webhook", "http: or https:"],
    [[{ webhook: "file:///etc/passwd" }], "hooks[0].webhook", "http: or https:"],
    [[{ webhook: "not a url" }], "hooks[0].webhook", "http: or https:"],
    [[{ command: [] }], "hooks[0].command", "must name a program"],
    [[{ command: "x", headers: { a: "b" } }], "hooks[0].headers", "only for webhook hooks"],
    [[{ webhook: "http://a/", env: { A: "b" } }], "hooks[0].env", "only for command hooks"],
    [[{ command: "x", to: ["sideways"] }], "hooks[0].to[0]", ""],
    [[{ command: "x", targets: [] }], "hooks[0].targets", "every target"],
    [[{ command: "x", timeout: "soon" }], "hooks[0].timeout", "invalid duration"],
    [[{ command: "x", flap: { threshold: 1 } }], "hooks[0].flap.threshold", ""],
    [[{ command: "x", queue: 0 }], "hooks[0].queue", ""],
    [[{ command: "x", colour: "red" }], "hooks[0]", "colour"],
    [
      [
        { name: "a", command: "x" },
        { name: "a", command: "y" },
      ],
      "hooks[1].name",
      "duplicate",
    ],
    [[{ command: "x" }, { name: "hook-1", command: "y" }], "hooks[1].name", "duplicate"],
  ];
  it.each(bad)("rejects %j at %s", (input, path, words) => {
    let error: unknown;
    try {
      parseHooks(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.code).toBe("LL_CONFIG_INVALID");
    expect(e.issues.map((i) => i.path)).toContain(path);
    expect(e.message).toContain(words);
  });

  it("exports the single-hook and list schemas for the config file", () => {
    expect(hookSchema.safeParse({ command: ["x"] }).success).toBe(true);
    expect(hooksSchema.parse([])).toEqual([]);
  });
});

describe("hook filters", () => {
  // [patterns, id, matches]
  const targets: Array<[string[] | undefined, string, boolean]> = [
    [undefined, "anything", true],
    [["api"], "api", true],
    [["api"], "api-2", false],
    [["db-*"], "db-1", true],
    [["db-*"], "db-", true],
    [["db-*"], "xdb-1", false],
    [["*.eu"], "cache.eu", true],
    [["*.eu"], "cache-eu", false], // "." is not special
    [["node-?"], "node-7", true],
    [["node-?"], "node-17", false],
    [["a*b*c"], "a--b--c", true],
    [["(x)+"], "(x)+", true], // regex characters are literal
    [["(x)+"], "xx", false],
    [["api", "db-*"], "db-9", true],
  ];
  it.each(targets)("targets %j vs %s → %s", (patterns, id, expected) => {
    expect(targetMatcher(patterns)(id)).toBe(expected);
  });

  // [to, notifyInitial, from, to state, notified]
  const changes: Array<[string[] | undefined, boolean, string, string, boolean]> = [
    [undefined, false, "healthy", "suspect", true],
    [undefined, false, "unknown", "healthy", false], // initial change: not by default
    [undefined, true, "unknown", "healthy", true],
    [undefined, false, "down", "unknown", true], // only changes *from* unknown are initial
    [["down"], false, "suspect", "down", true],
    [["down"], false, "down", "recovering", false],
    [["down"], false, "unknown", "down", false],
    [["down"], true, "unknown", "down", true],
  ];
  it.each(changes)(
    "to %j, notifyInitial %s: %s → %s notified: %s",
    (to, notifyInitial, from, toState, expected) => {
      const f = compileFilter({ ...(to ? { to: to as never } : {}), notifyInitial });
      expect(f.change({ from: from as never, to: toState as never })).toBe(expected);
    },
  );
});
