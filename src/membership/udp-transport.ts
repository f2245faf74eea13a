import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server, type Socket } from "node:net";
import { LifelineError, ProtocolError, TimeoutError } from "../errors.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { MAX_STREAM_FRAME } from "./codec.ts";
import type { PacketHandler, ReliableHandler, Transport } from "./transport.ts";

/**
 * The production transport: UDP datagrams and TCP streams on the same port number (as
 * memberlist), so a member is one "host:port". A TCP stream carries one request and one
 * response, each framed as `u32 length · bytes` (≤ MAX_STREAM_FRAME), then closes.
 */
export interface UdpTransportOptions {
  /** Address to bind. Default "127.0.0.1" (cluster traffic stays local unless asked). */
  host?: string;
  /** Port for both UDP and TCP; 0 picks a free one. Default 0. */
  port?: number;
  /** "host:port" to tell other members, when it differs from the bound one (NAT, 0.0.0.0). */
  advertise?: string;
  /** Clock for stream timeouts. */
  clock?: Clock;
  /** How long an inbound stream may take to send its request, ms. Default 10 000. */
  inboundTimeout?: number;
}

/** Splits "host:port" or "[v6]:port". */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!m) throw new LifelineError("LL_ADDRESS_INVALID", `not a host:port address: "${address}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

function joinAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export class UdpTransport implements Transport {
  private packetHandler: PacketHandler = () => {};
  private reliableHandler: ReliableHandler = async () => undefined;
  private readonly sockets = new Set<Socket>();
  private closed = false;
  /** Datagrams handed to the socket whose send has not completed. */
  private sending = 0;
  private drained: (() => void) | undefined;

  private constructor(
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    readonly address: string,
    private readonly clock: Clock,
    private readonly inboundTimeout: number,
  ) {
    udp.on("message", (msg, rinfo) => {
      if (!this.closed) this.packetHandler(msg, joinAddress(rinfo.address, rinfo.port));
    });
    udp.on("error", () => {}); // ICMP unreachable and the like: a lost packet
    tcp.on("connection", (s) => this.serve(s));
  }

  /** Binds UDP and TCP on one port (retrying when port 0 gave a UDP port TCP cannot have). */
  static async listen(opts: UdpTransportOptions = {}): Promise<UdpTransport> {
    const host = opts.host ?? "127.0.0.1";
    const family = host.includes(":") ? "udp6" : "udp4";
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket({ type: family, reuseAddr: false });
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(opts.port ?? 0, host, () => {
          udp.off("error", reject);
          resolve();
        });
      });
      const port = udp.address().port;
      const tcp = createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once("error", reject);
          tcp.listen(port, host, () => {
            tcp.off("error", reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        if ((opts.port ?? 0) === 0 && attempt < 10) continue;
        throw new LifelineError("LL_ADDRESS_IN_USE", `cannot listen on TCP ${host}:${port}`, { cause: err });
      }
      return new UdpTransport(
        udp,
        tcp,
        opts.advertise ?? joinAddress(host, port),
        opts.clock ?? systemClock,
        opts.inboundTimeout ?? 10_000,
      );
    }
  }

  sendPacket(to: string, bytes: Uint8Array): void {
    if (this.closed) return;
    try {
      const { host, port } = splitAddress(to);
      // A send completes asynchronously (the address is looked up first): close() waits for
      // the ones in flight, so that a leave announced just before stop() still goes out.
      this.sending++;
      this.udp.send(bytes, port, host, () => {
        this.sending--;
        if (this.sending === 0) this.drained?.();
      });
    } catch {
      // an unparsable address or a closed socket: the packet is lost
    }
  }

  sendReliable(to: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new LifelineError("LL_CLOSED", "transport closed"));
    return new Promise((resolve, reject) => {
      const { host, port } = splitAddress(to);
      const socket = connect({ host, port });
      this.sockets.add(socket);
      let settled = false;
      const finish = (err: Error | undefined, value?: Uint8Array) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        this.sockets.delete(socket);
        socket.destroy();
        if (err) reject(err);
        else resolve(value!);
      };
      const timer = this.clock.timeout(timeoutMs, () =>
        finish(new TimeoutError(`no response from ${to} within ${timeoutMs} ms`, timeoutMs)),
      );
      socket.on("connect", () => socket.write(frame(bytes)));
      readFrame(socket, (err, body) => finish(err, body));
      socket.on("error", (err: NodeJS.ErrnoException) =>
        finish(new LifelineError("LL_CONNECT_FAILED", `${to}: ${err.code ?? err.message}`, { cause: err })),
      );
      socket.on("close", () =>
        finish(new LifelineError("LL_CLOSED", `${to} closed the stream without a response`)),
      );
    });
  }

  onPacket(handler: PacketHandler): void {
    this.packetHandler = handler;
  }

  onReliable(handler: ReliableHandler): void {
    this.reliableHandler = handler;
  }

  private serve(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const timer = this.clock.timeout(this.inboundTimeout, () => socket.destroy());
    const from = joinAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0);
    readFrame(socket, (err, body) => {
      timer.cancel();
      if (err || !body) {
        socket.destroy();
        return;
      }
      this.reliableHandler(body, from).then(
        (resp) => {
          if (resp) socket.end(frame(resp));
          else socket.end();
        },
        () => socket.destroy(),
      );
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sending > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const s of this.sockets) s.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.tcp.close(() => resolve())),
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
    ]);
  }
}

function frame(bytes: Uint8Array): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(bytes.length);
  return Buffer.concat([head, bytes]);
}

/** Reads one `u32 length · bytes` frame from `socket`, then stops reading. */
function readFrame(socket: Socket, done: (err: Error | undefined, body?: Uint8Array) => void): void {
  let chunks: Buffer[] = [];
  let have = 0;
  let finished = false;
  const onData = (chunk: Buffer) => {
    if (finished) return;
    chunks.push(chunk);
    have += chunk.length;
    if (have < 4) return;
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks = [all];
    const length = all.readUInt32BE(0);
    if (length > MAX_STREAM_FRAME) {
      finished = true;
      socket.off("data", onData);
      done(
        new ProtocolError(`stream frame of ${length} bytes over ${MAX_STREAM_FRAME}`, {
          code: "LL_FRAME_TOO_LARGE",
        }),
      );
      return;
    }
    if (have < 4 + length) return;
    finished = true;
    socket.off("data", onData);
    done(undefined, all.subarray(4, 4 + length));
  };
  socket.on("data", onData);
}
