import { pino } from "pino";

/** The logging surface components depend on; pino satisfies it, tests pass a recorder. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** Structured one-line JSON logs on stderr (stdout is kept for a command's own output). */
export function createLogger(level: LogLevel = "info", fd = 2): Logger {
  return pino(
    { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd, sync: true }),
  );
}
