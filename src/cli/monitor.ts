import { type FSWatcher, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { type AdminServer, startAdmin } from "../admin/server.ts";
import { type Loaded, loadConfig } from "../config/load.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { HealthEngine } from "../health/engine.ts";
import { defaultRegistry } from "../health/probes/index.ts";
import type { Transition } from "../health/types.ts";
import { createLogger, type Logger, type LogLevel } from "../util/logger.ts";
import type { CliIO } from "./io.ts";
import { type CommonFlags, flagsToRaw } from "./options.ts";
import { untilShutdown } from "./signals.ts";
import { renderSummary, renderTable, renderTransition } from "./table.ts";

export interface MonitorFlags extends CommonFlags {
  /** Also print every check result as a JSON line (non-TTY only). */
  results?: boolean;
  /** Do not watch the config file for changes (SIGHUP still reloads). */
  watch?: boolean;
  /** Admin HTTP address, "host:port" (admin.listen). */
  admin?: string;
  /** Admin token (admin.token; also LIFELINE_ADMIN_TOKEN). */
  adminToken?: string;
}

export interface MonitorHandle {
  engine: HealthEngine;
  /** The admin server, when one was asked for. */
  admin: AdminServer | undefined;
  /** Re-reads the configuration; on error keeps the old one and returns the error. */
  reload(): ConfigError | undefined;
  /** Shows a line of commentary: in the event pane on a terminal, as a `note` JSON line otherwise. */
  note(text: string): void;
  /** Stops checks, timers and watchers. */
  stop(): Promise<void>;
}

const FRAME_INTERVAL = 500;
const EVENT_LINES = 8;

/**
 * Starts a monitor: the health engine, reload on SIGHUP and on file change, and output —
 * a live table on a terminal, JSON lines otherwise (a `start` line, then every state change
 * and config change, and with --results every result).
 */
export async function startMonitor(
  targets: string[],
  flags: MonitorFlags,
  io: CliIO,
): Promise<MonitorHandle> {
  const registry = defaultRegistry();
  const file = flags.config ?? io.env.LIFELINE_CONFIG;
  const load = (): Loaded => loadConfig({ registry, file, env: io.env, flags: flagsToRaw(flags), targets });
  const loaded = load();
  if (loaded.config.targets.length === 0 && !file) {
    throw new UsageError("nothing to monitor: give TARGET arguments or a config file (-c)");
  }
  const tty = io.stdout.isTTY === true && !flags.json;
  // On a terminal the table shows state changes; logs would tear it, so only explicit
  // --log-level output goes to stderr there.
  const level: LogLevel = tty && flags.logLevel === undefined ? "silent" : loaded.config.log.level;
  const logger: Logger = createLogger(level);
  const engine = new HealthEngine(loaded.config, { registry, logger });
  const write = (obj: unknown) => io.stdout.write(`${JSON.stringify(obj)}\n`);

  // The admin server first: if it cannot start, nothing else has been set up yet.
  const listen = flags.admin ?? loaded.config.admin.listen;
  let admin: AdminServer | undefined;
  if (listen) {
    const token = flags.adminToken ?? io.env.LIFELINE_ADMIN_TOKEN ?? loaded.config.admin.token;
    admin = await startAdmin({ listen, token, engine, logger });
    logger.info({ event: "admin", url: admin.url }, `admin API on ${admin.url}`);
    if (!tty) write({ type: "admin", url: admin.url });
  }

  const recent: string[] = [];
  const remember = (line: string) => {
    recent.push(line);
    if (recent.length > EVENT_LINES) recent.splice(0, recent.length - EVENT_LINES);
  };
  let frameTimer: NodeJS.Timeout | undefined;
  const render = () => {
    const snaps = engine.snapshot();
    const width = io.stdout.columns ?? 120;
    const lines = [
      renderSummary(snaps, true),
      "",
      ...renderTable(snaps, { now: Date.now(), width, colour: true }),
      "",
      ...recent,
    ];
    io.stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`);
  };

  if (tty) {
    io.stdout.write("\x1b[?1049h\x1b[?25l");
    engine.on("state", (t: Transition) => remember(renderTransition(t, true)));
    frameTimer = setInterval(render, FRAME_INTERVAL);
  } else {
    write({
      type: "start",
      at: new Date().toISOString(),
      profile: loaded.config.profile,
      targets: loaded.config.targets.map((t) => t.id),
    });
    engine.on("state", (t) => write({ type: "state", ...t, at: new Date(t.at).toISOString() }));
    engine.on("config", (c) => write({ type: "config", ...c }));
    if (flags.results) {
      engine.on("result", (r) => write({ type: "result", ...r, at: new Date(r.at).toISOString() }));
    }
  }

  /** Never throws: whatever is wrong with the new configuration, the old one keeps running. */
  const reload = (): ConfigError | undefined => {
    try {
      const next = load();
      const change = engine.apply(next.config);
      logger.info({ event: "config", ...change }, "configuration reloaded");
      if (tty) {
        remember(
          `config reloaded: +${change.added.length} -${change.removed.length} ~${change.changed.length}`,
        );
      }
      return undefined;
    } catch (caught) {
      const err =
        caught instanceof ConfigError
          ? caught
          : new ConfigError(
              [{ path: "", message: caught instanceof Error ? caught.message : String(caught) }],
              {
                cause: caught,
              },
            );
      logger.error(
        { event: "config-rejected", issues: err.issues },
        `${err.message}; keeping the running configuration`,
      );
      if (tty) remember(`config rejected: ${err.message}`);
      else write({ type: "config-rejected", issues: err.issues });
      return err;
    }
  };

  const onHup = () => reload();
  process.on("SIGHUP", onHup);
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  if (file && flags.watch !== false) {
    try {
      // Watch the directory, not the file: editors that save by renaming a new file over
      // the old one would leave a watch on the file looking at a deleted inode.
      const name = basename(file);
      watcher = watch(dirname(resolve(file)), (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(debounce);
        debounce = setTimeout(reload, 300);
      });
    } catch (err) {
      logger.warn(
        { event: "watch-failed", file, err: String(err) },
        "cannot watch the config file; SIGHUP still reloads",
      );
    }
  }

  engine.start();
  if (tty) render();

  return {
    engine,
    admin,
    reload,
    note(text: string) {
      if (tty) remember(`${new Date().toISOString().slice(11, 19)}  ${text}`);
      else write({ type: "note", at: new Date().toISOString(), text });
    },
    async stop() {
      process.off("SIGHUP", onHup);
      watcher?.close();
      clearTimeout(debounce);
      clearInterval(frameTimer);
      await engine.stop();
      await admin?.close();
      if (tty) io.stdout.write("\x1b[?25h\x1b[?1049l");
    },
  };
}

/** `lifeline monitor`: runs until SIGINT or SIGTERM, then exits 0. */
export async function runMonitor(targets: string[], flags: MonitorFlags, io: CliIO): Promise<number> {
  const shutdown = untilShutdown();
  let handle: Awaited<ReturnType<typeof startMonitor>>;
  try {
    handle = await startMonitor(targets, flags, io);
  } catch (err) {
    shutdown.cancel();
    throw err;
  }
  await shutdown;
  await handle.stop();
  return 0;
}
