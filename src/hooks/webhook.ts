import { backoffDelay } from "../util/backoff.ts";
import type { Clock, Random } from "../util/clock.ts";
import { HookError } from "./errors.ts";
import type { Notification } from "./notification.ts";
import type { WebhookHookConfig } from "./schema.ts";

/**
 * The webhook: POSTs the notification as JSON (`content-type: application/json`, the hook's
 * `headers` beside it), each attempt bounded by the hook's `timeout`. A 2xx answer is
 * success. A network error, a timeout, a 5xx or a 429 is retried — up to `attempts` in all,
 * after `backoff` delays with full jitter (or the Retry-After of a 429/503, if longer, up to
 * `backoff.cap`); any other status (3xx included: redirects are not followed, as a redirected
 * POST may turn into a GET) fails at once, since sending the same request again would get the
 * same answer.
 */

export type FetchFn = (url: string, init: RequestInit) => Promise<Response>;

export interface WebhookDeps {
  clock: Clock;
  random: Random;
  fetch?: FetchFn;
  /** Called before each retry: the attempt that failed (1-based), why, and the delay, ms. */
  onRetry?: (attempt: number, err: HookError, delay: number) => void;
}

export interface WebhookResult {
  status: number;
  /** Attempts made, the successful one included. */
  attempts: number;
}

/** Status classes: success, worth retrying, or final. */
export function classifyStatus(status: number): "ok" | "retry" | "fail" {
  if (status >= 200 && status < 300) return "ok";
  if (status === 429 || status >= 500) return "retry";
  return "fail";
}

/** A Retry-After header (seconds, or an HTTP date) as ms from `nowWall`; undefined if absent or
 *  unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowWall: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowWall);
}

/** Delay before retry number `retry` (0 = the first retry), ms: full-jitter exponential
 *  backoff, at least `retryAfter` when the server asked for it, never over `cap`. */
export function retryDelay(
  retry: number,
  backoff: { base: number; cap: number },
  random: Random,
  retryAfter?: number,
): number {
  const d = backoffDelay(retry, { base: backoff.base, cap: backoff.cap, jitter: "full" }, random);
  return Math.min(backoff.cap, Math.max(d, retryAfter ?? 0));
}

/** The URL as it may be logged: its origin only (paths and queries often carry the secret). */
export function redactUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid url)";
  }
}

/** Waits `ms` on the clock; resolves early (false) if `signal` aborts. */
function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      timer.cancel();
      resolve(false);
    };
    const timer = clock.timeout(ms, () => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    });
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** One attempt. Resolves with the status on 2xx; rejects with a HookError otherwise. */
async function attempt(
  hook: WebhookHookConfig,
  body: string,
  deps: WebhookDeps,
  stop: AbortSignal,
): Promise<number> {
  const doFetch = deps.fetch ?? (globalThis.fetch as FetchFn);
  const controller = new AbortController();
  let timedOut = false;
  const timer = deps.clock.timeout(hook.timeout, () => {
    timedOut = true;
    controller.abort();
  });
  const onStop = () => controller.abort();
  stop.addEventListener("abort", onStop, { once: true });
  const where = redactUrl(hook.url);
  try {
    let res: Response;
    try {
      res = await abortable(
        doFetch(hook.url, {
          method: "POST",
          headers: requestHeaders(hook.headers),
          body,
          redirect: "manual",
          signal: controller.signal,
        }),
        controller.signal,
      );
    } catch (err) {
      if (stop.aborted) throw new HookError("LL_HOOK_STOPPED", `${hook.name}: stopped`, { cause: err });
      if (timedOut) {
        throw new HookError(
          "LL_HOOK_TIMEOUT",
          `${hook.name}: no answer from ${where} in ${hook.timeout} ms`,
          {
            cause: err,
            retryable: true,
          },
        );
      }
      const cause = (err as { cause?: { code?: string } }).cause;
      const errno = cause?.code ?? (err as NodeJS.ErrnoException).code;
      throw new HookError(
        "LL_HOOK_NETWORK",
        `${hook.name}: POST ${where} failed${errno ? ` (${errno})` : `: ${(err as Error).message}`}`,
        { cause: err, retryable: true },
      );
    }
    // Read (a little of) the body so the connection can be reused; it explains a failure.
    const text = await abortable(readSome(res, 512), controller.signal).catch(() => "");
    const verdict = classifyStatus(res.status);
    if (verdict === "ok") return res.status;
    const retryAfter =
      res.status === 429 || res.status === 503
        ? parseRetryAfter(res.headers.get("retry-after"), deps.clock.wall())
        : undefined;
    throw new HookError(
      "LL_HOOK_HTTP",
      `${hook.name}: POST ${where} answered ${res.status}${text.trim() ? `: ${text.trim().slice(0, 200)}` : ""}`,
      {
        retryable: verdict === "retry",
        status: res.status,
        ...(retryAfter !== undefined ? { retryAfter } : {}),
      },
    );
  } finally {
    timer.cancel();
    stop.removeEventListener("abort", onStop);
  }
}

/** The hook's headers and ours: content-type is always JSON, whatever its spelling there. */
function requestHeaders(headers: Record<string, string>): Record<string, string> {
  const out = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== "content-type"));
  return { ...out, "content-type": "application/json" };
}

/** `p`, or a rejection as soon as `signal` aborts (whether or not `p`'s producer heeds it). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(new DOMException("aborted", "AbortError"));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DOMException("aborted", "AbortError"));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Up to `max` characters of the body, then the rest is discarded. */
async function readSome(res: Response, max: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < max) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text.slice(0, max);
}

/**
 * Delivers one notification, retrying as the hook says. Resolves on a 2xx; rejects with the
 * last attempt's HookError when attempts run out or the failure is final, or LL_HOOK_STOPPED
 * when `stop` aborts (during an attempt or a backoff wait).
 */
export async function sendWebhook(
  hook: WebhookHookConfig,
  n: Notification,
  deps: WebhookDeps,
  stop: AbortSignal,
): Promise<WebhookResult> {
  const body = JSON.stringify(n);
  for (let i = 1; ; i++) {
    if (stop.aborted) throw new HookError("LL_HOOK_STOPPED", `${hook.name}: stopped`);
    try {
      return { status: await attempt(hook, body, deps, stop), attempts: i };
    } catch (e) {
      const err =
        e instanceof HookError
          ? e
          : new HookError("LL_HOOK_NETWORK", `${hook.name}: ${(e as Error)?.message ?? String(e)}`, {
              cause: e,
            });
      if (!err.retryable || i >= hook.attempts || stop.aborted) throw err;
      const delay = retryDelay(i - 1, hook.backoff, deps.random, err.retryAfter);
      deps.onRetry?.(i, err, delay);
      if (!(await sleep(deps.clock, delay, stop))) {
        throw new HookError("LL_HOOK_STOPPED", `${hook.name}: stopped while waiting to retry`, {
          cause: err,
        });
      }
    }
  }
}
