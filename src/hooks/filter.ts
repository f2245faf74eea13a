import type { Transition } from "../health/types.ts";
import type { HookCommon } from "./schema.ts";

/**
 * A hook's filters. `targets` are exact ids or patterns in which `*` matches any run of
 * characters (none included) and `?` exactly one; nothing else is special. `to` lists the
 * states whose arrival is notified. Absent means "all".
 */
export interface HookFilter {
  /** The target is one this hook reports on (for every kind of event). */
  target(id: string): boolean;
  /** A state change of a matching target is one this hook notifies (`to`, `notifyInitial`). */
  change(t: Pick<Transition, "from" | "to">): boolean;
}

/** Compiles `*`/`?` patterns into one anchored regular expression; undefined for "all". */
export function targetMatcher(patterns: readonly string[] | undefined): (id: string) => boolean {
  if (!patterns) return () => true;
  const exact = new Set(patterns.filter((p) => !/[*?]/.test(p)));
  const globs = patterns.filter((p) => /[*?]/.test(p));
  if (globs.length === 0) return (id) => exact.has(id);
  const source = globs
    .map((p) =>
      p
        .split("")
        .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\/-]/g, "\\$&")))
        .join(""),
    )
    .join("|");
  const re = new RegExp(`^(?:${source})$`, "s");
  return (id) => exact.has(id) || re.test(id);
}

export function compileFilter(hook: Pick<HookCommon, "targets" | "to" | "notifyInitial">): HookFilter {
  const target = targetMatcher(hook.targets);
  const to = hook.to ? new Set<string>(hook.to) : undefined;
  const initial = hook.notifyInitial;
  return {
    target,
    change: (t) => (initial || t.from !== "unknown") && (to === undefined || to.has(t.to)),
  };
}
