/**
 * Every error Lifeline raises is a `LifelineError` with a stable `code` that programs can
 * switch on (the message is for people and may change). The original error, when there is
 * one, is kept in `cause`.
 */
export class LifelineError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "LifelineError";
  }
}

/** A configuration file, flag or environment variable is invalid. `path` names the field. */
export class ConfigError extends LifelineError {
  readonly issues: ReadonlyArray<{ path: string; message: string }>;

  constructor(issues: ReadonlyArray<{ path: string; message: string }>, options?: { cause?: unknown }) {
    super(
      "LL_CONFIG_INVALID",
      `invalid configuration: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ")}`,
      options,
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** A command-line invocation that cannot be understood. */
export class UsageError extends LifelineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("LL_USAGE", message, options);
    this.name = "UsageError";
  }
}

/** A deadline passed. Never used for a refusal or any other failure. */
export class TimeoutError extends LifelineError {
  readonly timeoutMs: number;

  constructor(message: string, timeoutMs: number, options?: { cause?: unknown }) {
    super("LL_TIMEOUT", message, options);
    this.name = "TimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** A peer sent something that does not follow the protocol we expected. */
export class ProtocolError extends LifelineError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? "LL_PROTOCOL", message, options);
    this.name = "ProtocolError";
  }
}
