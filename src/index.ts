/**
 * Lifeline's public API. The health engine can be embedded: build a configuration with
 * `resolveConfig` (or `loadConfig`), create a `HealthEngine` with `defaultRegistry()`, start
 * it, and listen to its typed events or iterate `engine.events()`.
 */
export { DEFAULT_ADMIN } from "./admin/http.ts";
export { type MonitorMetrics, monitorMetrics } from "./admin/monitor-metrics.ts";
export { nodeMetrics } from "./admin/node-metrics.ts";
export { type AdminOptions, type AdminServer, startAdmin } from "./admin/server.ts";
export {
  type ClientEvents,
  type ClientState,
  type ClientStatus,
  type CloseReport,
  createClient,
  LifelineClient,
} from "./client/client.ts";
export { NoServerError } from "./client/dialer.ts";
export { AppError, DroppedError, SessionLostError } from "./client/errors.ts";
export type { Incoming } from "./client/inbox.ts";
export type { Connector, Link } from "./client/link.ts";
export { type ClientMetricsOptions, clientMetrics } from "./client/metrics.ts";
export {
  CLIENT_DEFAULTS,
  type ClientOptions,
  type OutboxOptions,
  type OverflowPolicy,
} from "./client/options.ts";
export { type LoadOptions, loadConfig, readConfigFile } from "./config/load.ts";
export { PROFILE_NAMES, PROFILES, type Profile, type ProfileName } from "./config/profiles.ts";
export { type ResolvedConfig, resolveConfig } from "./config/resolve.ts";
export { ConfigError, LifelineError, ProtocolError, TimeoutError, UsageError } from "./errors.ts";
export { PhiAccrualDetector, type PhiOptions, phi } from "./health/detectors/phi.ts";
export { ThresholdDetector, type ThresholdOptions, type Verdict } from "./health/detectors/threshold.ts";
export {
  type CheckConfig,
  type ConfigChange,
  type EngineConfig,
  type EngineEvent,
  type EngineEvents,
  type EngineOptions,
  HealthEngine,
  type TargetConfig,
} from "./health/engine.ts";
export { availability, meanTimes, type Trends } from "./health/history.ts";
export { DEFAULT_RETENTION, type HistoryOptions, HistoryStore } from "./health/history-store.ts";
export { type Classified, classifyError, ERROR_KINDS, type ErrorKind } from "./health/kinds.ts";
export { LocalHealth, stretchTimeout } from "./health/local-health.ts";
export { defaultRegistry } from "./health/probes/index.ts";
export { ProbeRegistry, type ProbeType } from "./health/probes/registry.ts";
export { type RttOptions, type RttState, rttInit, rttSample, rttTimeout } from "./health/rtt.ts";
export type {
  CheckSettings,
  LocalHealthSettings,
  MonitorSettings,
  TimeoutSettings,
} from "./health/settings.ts";
export { assess, type CheckView } from "./health/state.ts";
export type { CheckSnapshot, TargetSnapshot } from "./health/target.ts";
export {
  type CheckResult,
  type CheckStatus,
  isServing,
  type Probe,
  type ProbeContext,
  type ProbeOutcome,
  TARGET_STATES,
  type TargetState,
  type Transition,
} from "./health/types.ts";
export { HookDispatcher, type HookDispatcherOptions, type HookStats } from "./hooks/dispatcher.ts";
export { type HookConfig, hooksSchema, parseHooks } from "./hooks/schema.ts";
export * from "./membership/index.ts";
export type { App, AppContext } from "./node/app.ts";
export { echoApp } from "./node/apps/echo.ts";
export { pubsubApp } from "./node/apps/pubsub.ts";
export { GossipView } from "./node/gossip.ts";
export { LifelineNode, type NodeStats } from "./node/node.ts";
export { NODE_DEFAULTS, type NodeOptions } from "./node/options.ts";
export {
  MemoryStore,
  openStore,
  parseStoreUrl,
  RedisStore,
  type RedisStoreOptions,
  SqliteStore,
  type Store,
} from "./store/index.ts";
export { type BackoffOptions, backoffDelay, type Jitter } from "./util/backoff.ts";
export { type Clock, type Random, seededRandom, systemClock, type Timer } from "./util/clock.ts";
export { FakeClock } from "./util/fake-clock.ts";
export { createLogger, type Logger, silentLogger } from "./util/logger.ts";
