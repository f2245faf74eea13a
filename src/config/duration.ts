import ms from "ms";
import { z } from "zod";

/**
 * A duration in configuration: milliseconds as a number, or a string such as "500ms", "2s",
 * "10m", "7d". Its own module so that every schema (config, hooks) can share it without
 * importing each other.
 */
export const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const n = typeof value === "number" ? value : ms(value as ms.StringValue);
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) {
    ctx.addIssue({
      code: "custom",
      message: `invalid duration ${JSON.stringify(value)} (e.g. 500ms, 2s, 1m)`,
    });
    return z.NEVER;
  }
  return n;
});

/** A duration above zero. */
export const positiveDuration = duration.refine((v) => v > 0, { message: "must be greater than 0" });
