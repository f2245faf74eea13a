import { z } from "zod";
import { hooksSchema } from "../hooks/schema.ts";
import { duration, positiveDuration } from "./duration.ts";
import { PROFILE_NAMES } from "./profiles.ts";

/**
 * The configuration file's shape (YAML or JSON), validated with zod so every message names
 * the field's path. Durations are milliseconds as numbers, or strings such as "2s", "500ms".
 * What each field does is documented on the resolved settings in `src/health/settings.ts`.
 */
export { duration };

export const timeoutOverride = z.union([
  positiveDuration,
  z
    .object({
      mode: z.enum(["adaptive", "fixed"]),
      initial: positiveDuration,
      min: positiveDuration,
      max: positiveDuration,
      floor: duration,
    })
    .partial()
    .strict(),
]);

/** Settings that may be given in `defaults:`, on a target, or on a check. */
export const settingsOverride = z
  .object({
    interval: positiveDuration,
    fastInterval: positiveDuration,
    jitter: z.number().min(0).max(0.5),
    /** A duration means a fixed timeout; an object tunes the adaptive one. */
    timeout: timeoutOverride,
    patience: z.boolean(),
    fall: z.number().int().min(1).max(100),
    rise: z.number().int().min(1).max(100),
    slowThreshold: duration,
    downBackoffCap: duration,
    critical: z.boolean(),
  })
  .partial()
  .strict();

export type SettingsOverride = z.infer<typeof settingsOverride>;
export const SETTINGS_KEYS = Object.keys(settingsOverride.shape) as Array<keyof SettingsOverride>;

/** A check: `type`, an optional `name`, setting overrides, and the probe's own fields (any
 *  other key), which the probe's schema validates. */
export const rawCheck = z
  .object({
    type: z.string().min(1),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]+$/, { message: "use letters, digits and _ . : -" })
      .optional(),
  })
  .loose();

export const rawTarget = z
  .object({
    id: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[^\s/]+$/, { message: "no spaces or slashes" })
      .optional(),
    /** Shorthand for one check: "host:port", "http://...", "https://...", "tls://host:port". */
    address: z.string().min(1).optional(),
    tags: z.array(z.string()).default([]),
    disabled: z.boolean().default(false),
    checks: z.array(rawCheck).default([]),
  })
  .extend(settingsOverride.shape)
  .strict();

export const monitorOverride = z
  .object({
    maxInFlight: z.number().int().min(1).max(100_000),
    scheduling: z.enum(["spread", "sequential"]),
    localHealth: z
      .object({
        enabled: z.boolean(),
        sampleInterval: positiveDuration,
        stallThreshold: positiveDuration,
        maxStretch: z.number().min(1).max(64),
      })
      .partial()
      .strict(),
    historyResults: z.number().int().min(1).max(1_000_000),
    historyTransitions: z.number().int().min(1).max(1_000_000),
  })
  .partial()
  .strict();

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;

export const rawConfig = z
  .object({
    profile: z.enum(PROFILE_NAMES).default("lan"),
    defaults: settingsOverride.default({}),
    monitor: monitorOverride.default({}),
    log: z
      .object({ level: z.enum(LOG_LEVELS).default("info") })
      .strict()
      .default({ level: "info" }),
    /**
     * Lasting history (results and transitions in SQLite), so a restarted monitor keeps its
     * trends. Read at start; a reload does not move it.
     */
    history: z
      .object({
        /**
         * The SQLite file, relative to the working directory; "off": history lives only in
         * memory and goes with the process. Default `.lifeline/history.db` (DEFAULT_HISTORY_PATH).
         */
        path: z.string().min(1).optional(),
        /** How long results and transitions are kept. Default 7d: longer costs disk (about
         *  5 MB a day per target checked every 2 s, capped per target), shorter loses trends. */
        retention: positiveDuration.optional(),
      })
      .strict()
      .default({}),
    /** The admin HTTP server (dashboard, metrics, status API, ttl reports). */
    admin: z
      .object({
        /**
         * "host:port", or "off". Default 127.0.0.1:7840 (DEFAULT_ADMIN.monitor): on, local
         * only. Anything but loopback needs a token. When the default port is taken the
         * monitor runs without (and says so); an address given explicitly must bind.
         */
        listen: z.string().optional(),
        /** Bearer token for writes (and for reads off loopback). Prefer LIFELINE_ADMIN_TOKEN. */
        token: z.string().min(16, { message: "use at least 16 characters" }).optional(),
      })
      .strict()
      .default({}),
    /** Commands and webhooks told of state changes (src/hooks/schema.ts). */
    hooks: hooksSchema.default([]),
    targets: z.array(rawTarget).default([]),
  })
  .strict();

export type RawConfig = z.input<typeof rawConfig>;
export type ParsedConfig = z.output<typeof rawConfig>;
