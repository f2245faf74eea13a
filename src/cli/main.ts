import { Command, CommanderError } from "commander";
import { LifelineError } from "../errors.ts";
import { runCheck } from "./check.ts";
import { runClient } from "./client.ts";
import { runDemo } from "./demo.ts";
import { type CliIO, EXIT, processIO } from "./io.ts";
import { runMonitor } from "./monitor.ts";
import { runNode } from "./node.ts";
import { addCommonOptions } from "./options.ts";

/** Builds the `lifeline` command line; `run` resolves with the exit code. */
export function buildProgram(io: CliIO, setExit: (code: number) => void): Command {
  const program = new Command("lifeline")
    .description(
      "Keeps clients connected to a cluster of TCP servers through failures, and tells you which servers are healthy, why, and since when.",
    )
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  addCommonOptions(
    program
      .command("check")
      .description("check targets once; exit 0 healthy, 1 degraded, 2 down, 3 usage or configuration error")
      .argument(
        "[targets...]",
        "host:port (tcp), tcp://host:port?send=..&expect=.., http(s)://..., tls://host:port",
      ),
  ).action(async (targets: string[], flags) => setExit(await runCheck(targets, flags, io)));

  addCommonOptions(
    program
      .command("monitor")
      .description("watch targets continuously: a live table on a terminal, JSON lines otherwise")
      .argument("[targets...]", "host:port (tcp), tcp://..., http(s)://..., tls://host:port")
      .option("--results", "also print every check result (JSON lines mode)")
      .option(
        "--cluster <list>",
        "follow a whole cluster through any of these nodes (host:port,...): every node it lists is watched",
      )
      .option("--no-watch", "do not reload when the config file changes (SIGHUP still does)")
      .option(
        "--admin <host:port>",
        "dashboard, metrics and admin API address (admin.listen; default 127.0.0.1:7840; off: none)",
      )
      .option("--no-admin", "no dashboard or admin API")
      .option(
        "--history <file>",
        "lasting history file (history.path; default .lifeline/history.db; off: none)",
      )
      .option("--admin-token <token>", "bearer token for the admin API (admin.token; LIFELINE_ADMIN_TOKEN)")
      .option(
        "--admin-token-file <file>",
        "where a generated token goes when none is set (.lifeline/admin-token)",
      ),
  ).action(async (targets: string[], flags) => setExit(await runMonitor(targets, flags, io)));

  program
    .command("node")
    .description("run a cluster node: sessions, exactly-once processing, heartbeats, graceful drain")
    .requiredOption("--id <id>", "node id, unique in the cluster")
    .requiredOption("--port <port>", "port to listen on (0 = any free port)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--advertise <host:port>", "address clients should use (default: the listening one)")
    .option("--peers <list>", "other nodes, host:port,... (watched with heartbeats; pushed to clients)")
    .option(
      "--join <list>",
      "gossip seeds, host:port,... of other nodes' --gossip addresses (instead of --peers)",
    )
    .option("--gossip <host:port>", "gossip (SWIM) address, UDP and TCP (default: --host, a free port)")
    .option("--gossip-advertise <host:port>", "gossip address other nodes reach this one at (NAT, 0.0.0.0)")
    .option("--gossip-preset <name>", "gossip timing: lan (default), wan, local")
    .option(
      "--gossip-key-file <path>",
      "cluster keys, base64 32 bytes per line, first one encrypts (also LIFELINE_GOSSIP_KEYS)",
    )
    .option(
      "--store <url>",
      "memory | sqlite:PATH (default ./lifeline.db) | redis[s]://[:PW@]HOST:PORT/DB | " +
        "redis+sentinel://HOST:PORT,…/MASTER (?prefix=NAME); also LIFELINE_STORE",
    )
    .option("--app <name>", "echo | pubsub | path of a module exporting an app", "echo")
    .option("--session-ttl <ms>", "how long a session survives without a connection")
    .option("--drain-deadline <ms>", "longest wait for clients to move on shutdown")
    .option("--log-level <level>", "debug, info, warn, error or silent", "info")
    .option(
      "--admin <host:port>",
      "node admin API: healthz, readyz, metrics, sessions, topology (default 127.0.0.1:7841; off: none)",
    )
    .option("--no-admin", "no admin API")
    .option("--admin-token <token>", "bearer token for it (also LIFELINE_ADMIN_TOKEN)")
    .option("--exit-with-stdin", "drain and exit when stdin closes (for nodes started by another program)")
    .action(async (flags) => setExit(await runNode(flags, io)));

  program
    .command("client")
    .description("connect to a cluster and stay connected: stdin lines are messages, replies are printed")
    .requiredOption("--servers <list>", "host:port,... to start from (the nodes tell the rest)")
    .option("--publish <topic>", "publish each stdin line to this topic (pubsub app)")
    .option("--subscribe <topic>", "print this topic's entries until Ctrl-C (pubsub app)")
    .option("--from <offset>", "with --subscribe: continue after this offset (default: new entries only)")
    .option("--strategy <name>", "lifeline (default) or classic (the seed's loop, for comparison)")
    .option("--outbox <path>", "keep the session and unacknowledged messages in this SQLite file")
    .option("--connect-timeout <ms>", "first connect attempt's timeout (default 5000; adapts after)")
    .option("--name <name>", "shown in the nodes' logs")
    .option("--flush-timeout <ms>", "at the end of stdin, wait this long for replies (default 10000)")
    .option("--json", "JSON lines on stdout: replies, entries and connection events")
    .action(async (flags) => setExit(await runClient(flags, io)));

  program
    .command("demo")
    .description(
      "three nodes, a monitor and a client on this machine, with a live view (what `npm start` runs)",
    )
    .option("--duration <seconds>", "stop after this many seconds (default: run until Ctrl-C)")
    .option("--chaos", "kill, freeze and restart random nodes every few seconds")
    .option("--admin <host:port>", "the dashboard's address (default 127.0.0.1:7840, else any free port)")
    .action(async (flags) => setExit(await runDemo(flags, io)));

  return program;
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : EXIT.usage;
    }
    if (err instanceof LifelineError) {
      io.stderr.write(`lifeline: ${err.message}\n`);
      return err.code === "LL_CONFIG_INVALID" || err.code === "LL_USAGE" ? EXIT.usage : EXIT.internal;
    }
    io.stderr.write(
      `lifeline: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return EXIT.internal;
  }
}

const isEntry = process.argv[1] !== undefined && /(?:^|[\\/])src[\\/]cli[\\/]main\.ts$/.test(process.argv[1]);
if (isEntry) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Commands that keep servers or sockets open have closed them; exit promptly anyway.
    setTimeout(() => process.exit(code), 200).unref();
  });
}
