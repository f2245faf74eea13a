/** State-change hooks: commands and webhooks notified of target state changes. */
export { type CommandResult, commandArgv, runCommand, type SpawnFn } from "./command.ts";
export { HookDispatcher, type HookDispatcherOptions, type HookStats } from "./dispatcher.ts";
export { HookError, type HookErrorCode } from "./errors.ts";
export { compileFilter, type HookFilter, targetMatcher } from "./filter.ts";
export { FlapDamper, type FlapDecision, type StableNotice } from "./flap.ts";
export { type Notification, notificationEnv, notificationOf } from "./notification.ts";
export {
  type CommandHookConfig,
  FLAP_DEFAULTS,
  type FlapOptions,
  HOOK_EVENTS,
  type HookConfig,
  type HookEvent,
  type HookInput,
  hookSchema,
  hooksSchema,
  parseHooks,
  type WebhookHookConfig,
} from "./schema.ts";
export { classifyStatus, type FetchFn, parseRetryAfter, retryDelay, sendWebhook } from "./webhook.ts";
