import type { ErrorKind } from "../health/kinds.ts";
import type { TargetState, Transition } from "../health/types.ts";
import type { HookEvent } from "./schema.ts";

/**
 * What a hook receives: the JSON body of a webhook, a command's stdin (one line), and —
 * field by field — a command's LIFELINE_* environment variables.
 */
export interface Notification {
  /** "state": a change; "flapping": the target started flapping (later changes are not sent
   *  until "stable"); "stable": it has held `to` for the quiet period, changes are sent again. */
  event: HookEvent;
  target: string;
  from: TargetState;
  to: TargetState;
  /** When it happened, ISO 8601 (UTC). */
  at: string;
  reason: string;
  kind?: ErrorKind;
  errno?: string;
  /** The monitor's name, when it has one (several monitors reporting to one receiver). */
  monitor?: string;
}

export function notificationOf(
  event: HookEvent,
  t: Pick<Transition, "target" | "from" | "to" | "kind" | "errno">,
  at: number,
  reason: string,
  monitor?: string,
): Notification {
  return {
    event,
    target: t.target,
    from: t.from,
    to: t.to,
    at: new Date(at).toISOString(),
    reason,
    ...(t.kind !== undefined ? { kind: t.kind } : {}),
    ...(t.errno !== undefined ? { errno: t.errno } : {}),
    ...(monitor !== undefined ? { monitor } : {}),
  };
}

/** The variables a command hook gets. Every one is always set (empty when the notification
 *  has no such field), so scripts running with `set -u` need no defaults. */
export function notificationEnv(n: Notification, hook: string): Record<string, string> {
  return {
    LIFELINE_EVENT: n.event,
    LIFELINE_TARGET: n.target,
    LIFELINE_FROM: n.from,
    LIFELINE_TO: n.to,
    LIFELINE_AT: n.at,
    LIFELINE_REASON: n.reason,
    LIFELINE_KIND: n.kind ?? "",
    LIFELINE_ERRNO: n.errno ?? "",
    LIFELINE_MONITOR: n.monitor ?? "",
    LIFELINE_HOOK: hook,
  };
}
