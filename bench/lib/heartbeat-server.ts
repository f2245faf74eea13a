/**
 * Benchmark heartbeat server (a child of bench/probe-cost.ts): a stand-in for many
 * Lifeline nodes that speaks the node side of the monitor's protocol, and nothing else.
 *
 *   node --import tsx bench/lib/heartbeat-server.ts --ports 1000
 *
 * Listens on PORTS loopback ports (port 0 each) and prints `{"type":"ports","ports":[...]}`.
 * On every connection it does what src/node/connection.ts does for a `monitor` (or `peer`)
 * HELLO: version check, WELCOME (no session; the heartbeat interval asked for, clamped to
 * the node's default 100 ms..60 s), TOPOLOGY, then a HEARTBEAT at once and every interval
 * after (one timer per connection, like a node), PONG for every PING. Frames are encoded
 * and parsed with src/protocol, so the monitor receives exactly the bytes a node sends.
 * Anything else (a client HELLO, a MSG) gets a fatal ERROR, as a node without sessions.
 *
 * Prints a `tick` line every second (connections accepted/open, heartbeats sent) and exits
 * on SIGTERM/SIGINT or when stdin closes (the parent has gone).
 */
import type net from "node:net";
import { ProtocolError } from "../../src/errors.ts";
import { decodeMessage, encodeMessage } from "../../src/protocol/codec.ts";
import { DEFAULT_MAX_FRAME, FrameParser } from "../../src/protocol/frame.ts";
import { type Message, PROTOCOL_VERSION } from "../../src/protocol/messages.ts";
import { connections, countFlag, servePorts } from "./port-server.ts";

const portCount = countFlag("heartbeat-server", "ports", 100);

/** The node's defaults (src/node/options.ts NODE_DEFAULTS). */
const HEARTBEAT_MIN = 100;
const HEARTBEAT_MAX = 60_000;
const HANDSHAKE_TIMEOUT = 5000;
const NODE_ID = `bench-hb-${process.pid}`;

let welcomed = 0;
let heartbeats = 0;
let pongs = 0;
let rejected = 0;
let heartbeatSeq = 0;

function onConnection(socket: net.Socket): void {
  socket.setNoDelay(true);
  const parser = new FrameParser(DEFAULT_MAX_FRAME);
  let timer: NodeJS.Timeout | undefined;
  let ready = false;
  const send = (m: Message) => {
    if (!socket.destroyed) socket.write(encodeMessage(m));
  };
  const fail = (code: string, message: string) => {
    rejected++;
    send({ type: "error", code, message, fatal: true });
    socket.end();
    setTimeout(() => socket.destroy(), 2000).unref();
  };
  const handshake = setTimeout(() => fail("LL_HANDSHAKE_TIMEOUT", "no HELLO in time"), HANDSHAKE_TIMEOUT);
  const beat = (every: number) => {
    if (socket.destroyed) return;
    heartbeats++;
    send({
      type: "heartbeat",
      seq: ++heartbeatSeq,
      sentAt: Date.now(),
      state: "healthy",
      load: { connections: connections.open.size, sessions: 0, lag: 0, queue: 0, cpu: 0 },
    });
    timer = setTimeout(beat, every, every);
  };
  const dispatch = (m: Message) => {
    if (!ready) {
      clearTimeout(handshake);
      if (m.type !== "hello") return fail("LL_HANDSHAKE_REQUIRED", `expected HELLO, got ${m.type}`);
      if (m.role === "client") return fail("LL_PROTOCOL", "this bench server has no sessions");
      const version = Math.min(m.maxVersion, PROTOCOL_VERSION.max);
      if (version < Math.max(m.minVersion, PROTOCOL_VERSION.min))
        return fail("LL_VERSION", "no common protocol version");
      const every = m.heartbeat <= 0 ? 0 : Math.min(HEARTBEAT_MAX, Math.max(HEARTBEAT_MIN, m.heartbeat));
      ready = true;
      welcomed++;
      send({
        type: "welcome",
        version,
        nodeId: NODE_ID,
        sessionId: "",
        resumeToken: "",
        resumed: false,
        lastClientSeq: 0,
        epoch: 0,
        heartbeat: every,
        maxFrame: DEFAULT_MAX_FRAME,
        sessionTtl: 0,
      });
      const address = `127.0.0.1:${socket.localPort}`;
      send({ type: "topology", epoch: 1, nodes: [{ id: NODE_ID, address, state: "healthy" }] });
      if (every > 0) beat(every);
      return;
    }
    if (m.type === "ping") {
      pongs++;
      send({ type: "pong", id: m.id, sentAt: m.sentAt, answeredAt: Date.now() });
    } else if (m.type !== "pong" && m.type !== "error") fail("LL_PROTOCOL", `unexpected ${m.type}`);
  };
  socket.on("data", (chunk: Buffer) => {
    const r = parser.push(chunk);
    for (const f of r.frames) {
      const m = decodeMessage(f);
      if (m instanceof ProtocolError) return fail("LL_PROTOCOL", m.message);
      dispatch(m);
    }
    if (r.error) fail("LL_PROTOCOL", r.error.message);
  });
  socket.on("error", () => socket.destroy()); // a reset from the monitor closing: expected
  socket.on("close", () => {
    clearTimeout(handshake);
    clearTimeout(timer);
  });
}

await servePorts({
  name: "heartbeat-server",
  count: portCount,
  onConnection,
  tick: () => ({
    accepted: connections.accepted,
    welcomed,
    open: connections.open.size,
    heartbeats,
    pongs,
    rejected,
  }),
  stopped: () => ({ accepted: connections.accepted, welcomed, heartbeats, pongs, rejected }),
});
