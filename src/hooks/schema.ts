import { z } from "zod";
import { positiveDuration } from "../config/duration.ts";
import { ConfigError } from "../errors.ts";
import { TARGET_STATES, type TargetState } from "../health/types.ts";

/**
 * Configuration of state-change hooks (`hooks:` in the configuration file): a list of
 * command hooks and webhooks, each with its filters, its flap damping and its queue.
 *
 * ```yaml
 * hooks:
 *   - name: page-ops
 *     targets: ["db-*", api]        # default: every target
 *     to: [down, healthy]           # default: every state
 *     command: ["/usr/local/bin/page", "--team", "ops"]
 *     timeout: 10s
 *   - name: chat
 *     webhook: https://chat.example.com/hooks/T000/B000
 *     headers: { Authorization: "Bearer ..." }
 *     attempts: 5
 *     backoff: { base: 500ms, cap: 30s }
 *     flap: { window: 10m, threshold: 5, quiet: 5m }
 * ```
 *
 * Durations are milliseconds as numbers, or strings such as "500ms", "5s", "10m".
 * What every option does, its unit, its default and what it trades is documented on the
 * resolved types below (`HookCommon`, `CommandHookConfig`, `WebhookHookConfig`, `FlapOptions`).
 */

/** What a notification reports: a state change, the start of flapping, the end of it. */
export const HOOK_EVENTS = ["state", "flapping", "stable"] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

/** Flap damping (see `src/hooks/flap.ts` for the rule). */
export interface FlapOptions {
  /** Damp flapping targets at all. Default true; false sends every change, however many. */
  enabled: boolean;
  /** Span over which changes are counted, ms. Default 600 000 (10 min): longer catches slower
   *  flapping, but also calls "flapping" a target that merely had a bad hour. */
  window: number;
  /** Changes within `window` that make a target flapping, 2 to 1000. Default 5: lower pages
   *  less during an incident, but hides more real changes; the change that reaches the
   *  threshold is reported as "flapping" instead of as a state change. */
  threshold: number;
  /** Time a flapping target must hold one state before "stable" is sent and its changes are
   *  notified again, ms. Default 300 000 (5 min): shorter resumes sooner, but a target that
   *  flaps slowly enters and leaves flapping over and over. */
  quiet: number;
}

export const FLAP_DEFAULTS: FlapOptions = { enabled: true, window: 600_000, threshold: 5, quiet: 300_000 };

/** Options every hook has. */
export interface HookCommon {
  /** Names the hook in logs and metrics; unique. Default `hook-N`, N its 1-based position. */
  name: string;
  /** Target ids this hook reports on: exact ids or patterns where `*` matches any run of
   *  characters and `?` one character ("db-*", "*.eu-west"). Default (absent): every target. */
  targets?: string[];
  /** States whose arrival is notified ("down", "healthy"...). Default (absent): every state.
   *  Applies to `state` events only; `flapping` and `stable` follow `events`. */
  to?: TargetState[];
  /** Kinds of notification sent. Default all three: "state", "flapping", "stable". */
  events: HookEvent[];
  /** Notify transitions from `unknown` (the first verdict after start, reload or enable).
   *  Default false: a restart of the monitor does not page everyone with "healthy". */
  notifyInitial: boolean;
  flap: FlapOptions;
  /** Notifications waiting for delivery, at most, besides the one being delivered. Default
   *  100; when full the oldest waiting one is dropped (with a warning): a dead receiver costs
   *  bounded memory, and the newest news — usually the one that matters — survives. */
  queue: number;
  /** Time allowed to one command run, or to one webhook attempt, ms. Default 10 000 for a
   *  command (then SIGKILL to its process group), 5 000 for a webhook attempt (then it is
   *  aborted and retried). Longer tolerates a slow receiver but delays the notifications queued
   *  behind it (each hook delivers in order, one at a time). */
  timeout: number;
}

/** Runs a program for each notification. */
export interface CommandHookConfig extends HookCommon {
  type: "command";
  /** argv, e.g. ["/usr/local/bin/page", "--team", "ops"], run without a shell: nothing in it
   *  is interpreted. Or one string, run with `/bin/sh -c`: pipes, redirections and `$VAR`
   *  work, at the price of quoting — values of the change come only through the environment
   *  (always quote them: "$LIFELINE_REASON"), never spliced into the command text. */
  command: string | string[];
  /** Working directory. Default the monitor's. */
  cwd?: string;
  /** Variables set over the monitor's own environment (the LIFELINE_* ones win). Default none. */
  env: Record<string, string>;
}

/** POSTs the notification as JSON. */
export interface WebhookHookConfig extends HookCommon {
  type: "webhook";
  /** http: or https: URL. Only its origin is ever logged (paths often carry the secret). */
  url: string;
  /** Extra request headers (Authorization...). Default none; content-type is always JSON. */
  headers: Record<string, string>;
  /** Attempts per notification, the first included, 1 to 100. Default 5: more rides out a
   *  longer receiver outage, but holds up the notifications behind it for longer. */
  attempts: number;
  /** Delay before retry n (n = 0, 1, ...): uniform in [0, min(cap, base · 2^n)] ("full
   *  jitter"), at least a 429/503's Retry-After (up to cap). Defaults base 500 ms, cap 30 000
   *  ms: with 5 attempts a notification is abandoned after at most ~7.5 s of waiting plus the
   *  attempts' own timeouts. */
  backoff: { base: number; cap: number };
}

export type HookConfig = CommandHookConfig | WebhookHookConfig;

// ---------------------------------------------------------------------------------------

const duration = positiveDuration;

const NAME = /^[A-Za-z0-9_.:-]+$/;

const flapInput = z.union([
  z.boolean().transform((enabled): FlapOptions => ({ ...FLAP_DEFAULTS, enabled })),
  z
    .object({
      enabled: z.boolean().default(FLAP_DEFAULTS.enabled),
      window: duration.default(FLAP_DEFAULTS.window),
      threshold: z.number().int().min(2).max(1000).default(FLAP_DEFAULTS.threshold),
      quiet: duration.default(FLAP_DEFAULTS.quiet),
    })
    .strict(),
]);

const httpUrl = z
  .string()
  .min(1)
  .refine(
    (s) => {
      try {
        const u = new URL(s);
        return u.protocol === "http:" || u.protocol === "https:";
      } catch {
        return false;
      }
    },
    { message: "must be an http: or https: URL" },
  );

/** A hook as `hookSchema` gives it: the name only if one was written. */
export type UnnamedHook = (Omit<CommandHookConfig, "name"> | Omit<WebhookHookConfig, "name">) & {
  name?: string;
};

const WEBHOOK_ONLY = ["headers", "attempts", "backoff"] as const;
const COMMAND_ONLY = ["cwd", "env"] as const;

/** One hook as written in the configuration (the `name` may be left out here; `hooksSchema`
 *  gives it one). Exactly one of `command` and `webhook`. */
export const hookSchema = z
  .object({
    name: z.string().regex(NAME, { message: "use letters, digits and _ . : -" }).optional(),
    targets: z.array(z.string().min(1)).min(1, { message: "leave out to match every target" }).optional(),
    to: z.array(z.enum(TARGET_STATES)).min(1, { message: "leave out to match every state" }).optional(),
    events: z
      .array(z.enum(HOOK_EVENTS))
      .min(1)
      .default([...HOOK_EVENTS]),
    notifyInitial: z.boolean().default(false),
    flap: flapInput.default({ ...FLAP_DEFAULTS }),
    queue: z.number().int().min(1).max(100_000).default(100),
    timeout: duration.optional(),
    command: z
      .union([
        z.string().min(1, { message: "must not be empty" }),
        z.array(z.string()).min(1, { message: "must name a program" }),
      ])
      .optional(),
    cwd: z.string().min(1).optional(),
    env: z.record(z.string(), z.string()).optional(),
    webhook: httpUrl.optional(),
    headers: z.record(z.string(), z.string()).optional(),
    attempts: z.number().int().min(1).max(100).optional(),
    backoff: z
      .object({ base: duration.default(500), cap: duration.default(30_000) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((h, ctx) => {
    if ((h.command === undefined) === (h.webhook === undefined)) {
      ctx.addIssue({ code: "custom", message: "give exactly one of `command` and `webhook`", path: [] });
      return;
    }
    const wrong = h.command !== undefined ? WEBHOOK_ONLY : COMMAND_ONLY;
    for (const key of wrong) {
      if (h[key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          message: `only for ${h.command !== undefined ? "webhook" : "command"} hooks`,
          path: [key],
        });
      }
    }
  })
  .transform((h): UnnamedHook => {
    const common = {
      ...(h.targets ? { targets: h.targets } : {}),
      ...(h.to ? { to: h.to } : {}),
      events: h.events,
      notifyInitial: h.notifyInitial,
      flap: h.flap,
      queue: h.queue,
    };
    const named = h.name !== undefined ? { name: h.name } : {};
    if (h.command !== undefined) {
      return {
        ...named,
        type: "command",
        ...common,
        timeout: h.timeout ?? 10_000,
        command: h.command,
        ...(h.cwd !== undefined ? { cwd: h.cwd } : {}),
        env: h.env ?? {},
      };
    }
    return {
      ...named,
      type: "webhook",
      ...common,
      timeout: h.timeout ?? 5_000,
      url: h.webhook!,
      headers: h.headers ?? {},
      attempts: h.attempts ?? 5,
      backoff: h.backoff ?? { base: 500, cap: 30_000 },
    };
  });

/** The `hooks:` list: gives each unnamed hook the name `hook-N` (N its 1-based position) and
 *  rejects duplicate names. */
export const hooksSchema = z.array(hookSchema).transform((hooks, ctx): HookConfig[] => {
  const seen = new Set<string>();
  const out: HookConfig[] = [];
  hooks.forEach((h, i) => {
    const name = h.name ?? `hook-${i + 1}`;
    if (seen.has(name)) {
      ctx.addIssue({
        code: "custom",
        message: `duplicate hook name ${JSON.stringify(name)} (unnamed hooks are called hook-N by position)`,
        path: [i, "name"],
      });
    }
    seen.add(name);
    out.push({ ...h, name } as HookConfig);
  });
  return out;
});

export type HookInput = z.input<typeof hookSchema>;

/** Validates a `hooks:` list; throws `ConfigError` (LL_CONFIG_INVALID) naming each bad field. */
export function parseHooks(input: unknown, pathPrefix = "hooks"): HookConfig[] {
  const result = hooksSchema.safeParse(input);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => ({
      path: [pathPrefix, ...issue.path]
        .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
        .join("")
        .replace(/^\./, ""),
      message: issue.message,
    })),
  );
}
