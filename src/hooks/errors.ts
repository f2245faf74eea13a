import { LifelineError } from "../errors.ts";

/**
 * Stable codes of the errors a hook delivery can end with (programs switch on the code; the
 * message is for people):
 *
 * - `LL_HOOK_SPAWN`   the command could not be started (ENOENT, EACCES...); not retried.
 * - `LL_HOOK_EXIT`    the command exited non-zero or was killed by a signal; not retried.
 * - `LL_HOOK_TIMEOUT` a command run or one webhook attempt passed its `timeout`.
 * - `LL_HOOK_NETWORK` a webhook attempt failed before an HTTP answer (refused, reset, DNS).
 * - `LL_HOOK_HTTP`    the webhook answered with a status that is not 2xx.
 * - `LL_HOOK_STOPPED` the dispatcher stopped (or the hook was removed) before the delivery ended.
 */
export type HookErrorCode =
  | "LL_HOOK_SPAWN"
  | "LL_HOOK_EXIT"
  | "LL_HOOK_TIMEOUT"
  | "LL_HOOK_NETWORK"
  | "LL_HOOK_HTTP"
  | "LL_HOOK_STOPPED";

export class HookError extends LifelineError {
  declare readonly code: HookErrorCode;
  /** Worth another attempt (webhooks only: network error, timeout, 5xx, 429). */
  readonly retryable: boolean;
  /** The HTTP status, for `LL_HOOK_HTTP`. */
  readonly status: number | undefined;
  /** The receiver's Retry-After (a 429 or 503), ms. */
  readonly retryAfter: number | undefined;

  constructor(
    code: HookErrorCode,
    message: string,
    options?: { cause?: unknown; retryable?: boolean; status?: number; retryAfter?: number },
  ) {
    super(code, message, options);
    this.name = "HookError";
    this.retryable = options?.retryable ?? false;
    this.status = options?.status;
    this.retryAfter = options?.retryAfter;
  }
}
