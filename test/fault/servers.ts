import type { Namespace } from "./netns.ts";
import { run } from "./netns.ts";
import { type ChildHandle, startProcess } from "./process.ts";

/**
 * Target servers and a connect timer, as small `node -e` scripts run as children — inside a
 * namespace or not. A server that lives in its own process keeps accepting while the test
 * process is blocked, stopped or busy, which is what fault tests need.
 */

export type ServerMode = "hold" | "echo" | "close" | "reply";

export interface ServerOptions {
  /** Start it inside this namespace (default: the test's own network). */
  ns?: Namespace;
  /** Ports to listen on; 0 picks a free one. Default: `count` free ports. */
  ports?: number[];
  /** How many free ports to listen on when `ports` is not given. Default 1. */
  count?: number;
  host?: string;
  /** hold (default): keep each connection open until the client closes it;
   *  echo: send back what arrives; close: close at once after accepting;
   *  reply: answer each chunk that arrives with `reply`, `delay` ms later. */
  mode?: ServerMode;
  /** For mode reply: the answer. Default "PONG\n". */
  reply?: string;
  /** For mode reply: how long to think before answering, ms. Default 0. */
  delay?: number;
  /** How long to wait for the server to listen, ms. Default 15 s. */
  timeout?: number;
}

export interface Servers {
  child: ChildHandle;
  ports: number[];
  host: string;
}

/** Listens on every port in argv[1].ports; prints {"type":"listening","ports":[..],"pid":..}. */
const SERVER_SCRIPT = `
const net = require("node:net");
const { host, ports, mode, reply, delay } = JSON.parse(process.argv[1]);
const listen = (port) => new Promise((resolve, reject) => {
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    if (mode === "close") return socket.destroy();
    if (mode === "echo") return socket.pipe(socket);
    if (mode === "reply") socket.on("data", () => setTimeout(() => socket.writable && socket.write(reply), delay));
    socket.resume();
    socket.on("end", () => socket.end());
  });
  server.once("error", reject);
  server.listen({ host, port, backlog: 511 }, () => resolve(server.address().port));
});
Promise.all(ports.map(listen)).then(
  (bound) => console.log(JSON.stringify({ type: "listening", host, ports: bound, pid: process.pid })),
  (err) => { console.log(JSON.stringify({ type: "error", message: String(err) })); process.exit(1); },
);
process.on("SIGTERM", () => process.exit(0));
`;

/** Starts TCP servers in one child process and resolves once they all listen. */
export async function startServers(opts: ServerOptions = {}): Promise<Servers> {
  const host = opts.host ?? "127.0.0.1";
  const ports = opts.ports ?? Array.from({ length: opts.count ?? 1 }, () => 0);
  const spec = {
    host,
    ports,
    mode: opts.mode ?? "hold",
    reply: opts.reply ?? "PONG\n",
    delay: opts.delay ?? 0,
  };
  const args = ["-e", SERVER_SCRIPT, JSON.stringify(spec)];
  const child = opts.ns
    ? opts.ns.spawn(process.execPath, args, { name: "server" })
    : startProcess(process.execPath, args, { name: "server" });
  try {
    const line = await child.waitForJson<{ ports: number[] }>((o) => o.type === "listening", {
      timeout: opts.timeout ?? 15_000,
      what: "the server to listen",
    });
    return { child, ports: line.ports, host };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

export interface ConnectResult {
  ok: boolean;
  /** ms from connect() to connected or to the error. */
  ms: number;
  /** errno on failure: ECONNREFUSED, ETIMEDOUT (our own timeout)... */
  code?: string;
}

/** Connects `parallel` times at once; prints {"results":[...]}. */
const CONNECT_SCRIPT = `
const net = require("node:net");
const { host, port, parallel, timeout } = JSON.parse(process.argv[1]);
const one = () => new Promise((resolve) => {
  const start = performance.now();
  const socket = net.connect({ host, port });
  const done = (r) => { clearTimeout(timer); socket.destroy(); resolve({ ...r, ms: Math.round(performance.now() - start) }); };
  const timer = setTimeout(() => done({ ok: false, code: "ETIMEDOUT" }), timeout);
  socket.once("connect", () => done({ ok: true }));
  socket.once("error", (err) => done({ ok: false, code: err.code }));
});
Promise.all(Array.from({ length: parallel }, one)).then((results) => console.log(JSON.stringify({ results })));
`;

/**
 * Times TCP connects to host:port from inside `ns` (or from here without one): `parallel`
 * connects at once (each from its own source port), each given up after `timeout` ms.
 */
export async function measureConnects(
  ns: Namespace | undefined,
  port: number,
  opts: { host?: string; parallel?: number; timeout?: number } = {},
): Promise<ConnectResult[]> {
  const spec = {
    host: opts.host ?? "127.0.0.1",
    port,
    parallel: opts.parallel ?? 1,
    timeout: opts.timeout ?? 15_000,
  };
  const args = ["-e", CONNECT_SCRIPT, JSON.stringify(spec)];
  const { stdout } = ns ? await ns.exec(process.execPath, args) : await run(process.execPath, args);
  return (JSON.parse(stdout.trim()) as { results: ConnectResult[] }).results;
}
