import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import net from "node:net";
import { formatHostPort } from "../health/probes/address.ts";
import type { Hello, Message, NodeInfo, NodeState } from "../protocol/messages.ts";
import { type Change, OWNER_LEASE, type Store } from "../store/types.ts";
import { type Clock, systemClock, type Timer } from "../util/clock.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { TypedEmitter } from "../util/typed-emitter.ts";
import type { App } from "./app.ts";
import { type ConnectionHost, NodeConnection } from "./connection.ts";
import { type NodeCounters, newCounters } from "./counters.ts";
import { LoadMonitor } from "./load.ts";
import { NODE_DEFAULTS, type NodeLimits, type NodeOptions } from "./options.ts";
import { LiveSession } from "./session.ts";

export type NodeEvents = {
  /** The node's own state changed (healthy, degraded, draining, stopped). */
  state: [NodeState | "stopped"];
  session: [{ id: string; event: "created" | "resumed" | "detached"; remote: string }];
};

export interface NodeStats {
  connections: number;
  sessions: number;
  queue: number;
  state: NodeState | "stopped";
  /** Why it is not healthy (the store is unavailable; the drain's reason), if it is not. */
  reason?: string;
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/**
 * A Lifeline node: the cluster server. It accepts client connections speaking the Lifeline
 * protocol, keeps their sessions (in the store, so that another node can resume them),
 * hands each message to the app exactly once, streams heartbeats with its load to whoever
 * asks, pushes the cluster topology, and drains gracefully: GOAWAY first, then close.
 */
export class LifelineNode extends TypedEmitter<NodeEvents> implements ConnectionHost {
  readonly nodeId: string;
  readonly clock: Clock;
  readonly limits: NodeLimits;
  /** What this node has done since it started (its /metrics). */
  readonly counters: NodeCounters = newCounters();
  private readonly store: Store;
  private readonly app: App;
  private readonly logger: Logger;
  private readonly opts: NodeOptions;
  private server: net.Server | undefined;
  private readonly connections = new Set<NodeConnection>();
  private readonly sessions = new Map<string, { session: LiveSession; conn: NodeConnection }>();
  private readonly load = new LoadMonitor();
  private current: NodeState | "stopped" = "healthy";
  private heartbeatSeq = 0;
  private topologyEpoch = 1;
  private peers: NodeInfo[] = [];
  private advertised = "";
  private sweepTimer: Timer | undefined;
  private renewTimer: Timer | undefined;
  private storeTimer: Timer | undefined;
  /** Why the node is `degraded` (its store cannot be written), while it is. */
  private degradedReason: string | undefined;
  private unwatch: (() => void) | undefined;
  private syncing = false;
  private resync: Change | undefined;
  private drainInfo: { reason: string; deadline: number; started: number } | undefined;

  constructor(opts: NodeOptions) {
    super();
    this.opts = opts;
    this.nodeId = opts.id;
    this.clock = opts.clock ?? systemClock;
    this.limits = { ...NODE_DEFAULTS.limits, ...opts.limits };
    this.store = opts.store;
    this.app = opts.app;
    this.logger = opts.logger ?? silentLogger;
  }

  /** The node's own event-loop lag (ms) and CPU use (share of one core), as heartbeats carry. */
  get loadNow(): { lag: number; cpu: number } {
    return this.load.value;
  }

  get state(): NodeState | "stopped" {
    return this.current;
  }

  /** "host:port" clients use to reach this node. */
  get address(): string {
    return this.advertised;
  }

  get port(): number {
    return (this.server?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  /** Why the node is not healthy (`degraded`: its store cannot be written), if it is not. */
  get reason(): string | undefined {
    if (this.current === "draining" || this.current === "stopped") return this.drainInfo?.reason;
    return this.degradedReason;
  }

  /** The store cannot be written now (as last checked): the node is `degraded`. */
  get storeUnavailable(): boolean {
    return this.degradedReason !== undefined;
  }

  stats(): NodeStats {
    let queue = 0;
    for (const { session } of this.sessions.values()) queue += session.queueDepth;
    const stats: NodeStats = {
      connections: this.connections.size,
      sessions: this.sessions.size,
      queue,
      state: this.current,
    };
    const reason = this.reason;
    if (reason !== undefined) stats.reason = reason;
    return stats;
  }

  /**
   * Compares the node's state with its store's: a store that cannot be written (Redis
   * unreachable) makes the node `degraded` with the reason, and its return makes it
   * `healthy` again. Called every `storeCheckInterval` and after a failed store write.
   */
  checkStore(): void {
    if (this.current === "draining" || this.current === "stopped") return;
    const healthy = this.store.healthy();
    if (!healthy && this.degradedReason === undefined) {
      this.degradedReason = `store unavailable: ${this.store.description}`;
      this.counters.storeOutages++;
      this.logger.warn(
        { event: "store-down", node: this.nodeId, store: this.store.description },
        `degraded: ${this.degradedReason} (messages are not acknowledged until it returns)`,
      );
      this.setState("degraded");
    } else if (healthy && this.degradedReason !== undefined) {
      this.degradedReason = undefined;
      this.logger.info(
        { event: "store-up", node: this.nodeId, store: this.store.description },
        "the store is back: healthy",
      );
      this.setState("healthy");
      // Whatever other nodes wrote meanwhile (pushes, publishes) is read again.
      this.onStoreChange({ kind: "any" });
    }
  }

  async start(): Promise<void> {
    const host = this.opts.host ?? NODE_DEFAULTS.host;
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.opts.port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err) =>
      this.logger.error({ event: "server-error", err: String(err) }, "listener error"),
    );
    this.server = server;
    this.advertised = this.opts.advertise ?? formatHostPort(host, this.port);
    this.load.start();
    this.unwatch = this.store.watch((change) => this.onStoreChange(change));
    const sweepEvery = this.opts.sweepInterval ?? NODE_DEFAULTS.sweepInterval;
    const sweep = () => {
      this.store
        .sweep(this.clock.wall())
        .catch((err: unknown) =>
          this.logger.warn({ event: "store-error", err: String(err) }, "sweep failed"),
        );
      this.sweepTimer = this.clock.timeout(sweepEvery, sweep);
    };
    this.sweepTimer = this.clock.timeout(sweepEvery, sweep);
    // Keep this node's sessions alive while it lives (see OWNER_LEASE).
    const renew = () => {
      this.store
        .renew(this.nodeId, this.clock.wall())
        .catch((err: unknown) =>
          this.logger.warn({ event: "store-error", err: String(err) }, "renewing sessions failed"),
        );
      this.renewTimer = this.clock.timeout(OWNER_LEASE / 3, renew);
    };
    this.renewTimer = this.clock.timeout(OWNER_LEASE / 3, renew);
    const storeEvery = this.opts.storeCheckInterval ?? NODE_DEFAULTS.storeCheckInterval;
    const checkStore = () => {
      this.checkStore();
      this.storeTimer = this.clock.timeout(storeEvery, checkStore);
    };
    checkStore();
    this.logger.info(
      { event: "listening", node: this.nodeId, address: this.advertised, store: this.store.description },
      `node ${this.nodeId} listening on ${this.advertised}`,
    );
  }

  private accept(socket: net.Socket): void {
    if (this.current === "stopped") {
      socket.destroy();
      return;
    }
    const conn = new NodeConnection(socket, this);
    this.connections.add(conn);
    if (this.connections.size > this.limits.maxConnections) {
      conn.fail("LL_OVERLOADED", `connection limit ${this.limits.maxConnections} reached`);
    }
  }

  // ConnectionHost

  async hello(conn: NodeConnection, hello: Hello) {
    const heartbeat =
      hello.heartbeat <= 0
        ? 0
        : Math.min(
            this.opts.heartbeat?.max ?? NODE_DEFAULTS.heartbeat.max,
            Math.max(this.opts.heartbeat?.min ?? NODE_DEFAULTS.heartbeat.min, hello.heartbeat),
          );
    const sessionTtl = this.opts.sessionTtl ?? NODE_DEFAULTS.sessionTtl;
    if (hello.role !== "client") {
      return {
        ok: true as const,
        session: undefined,
        sessionId: "",
        token: "",
        resumed: false,
        heartbeat,
        sessionTtl,
      };
    }
    if (this.current === "draining" || this.current === "stopped") {
      return {
        ok: false as const,
        code: "LL_DRAINING" as const,
        message: "this node is draining; use another",
      };
    }
    if (hello.sessionId !== undefined) {
      const record = await this.store.getSession(hello.sessionId);
      const alive = record && (record.expiresAt === null || record.expiresAt > this.clock.wall());
      if (record && alive) {
        // Check the token before claiming: a wrong guess must not disturb the real owner.
        if (!hello.resumeToken || !sameHash(hashToken(hello.resumeToken), record.tokenHash)) {
          return { ok: false as const, code: "LL_SESSION_TOKEN" as const, message: "wrong resume token" };
        }
        // Claim only the epoch the client last saw (when it says): of the attempts of one
        // connect race, one claim wins, and a slow loser cannot take the session back from
        // the winner after the client adopted it.
        const claimed = await this.store.claim(record.id, this.nodeId, this.clock.wall(), hello.sessionEpoch);
        if (!claimed && hello.sessionEpoch !== undefined) {
          const now = await this.store.getSession(record.id);
          if (now && (now.expiresAt === null || now.expiresAt > this.clock.wall())) {
            return {
              ok: false as const,
              code: "LL_SESSION_MOVED" as const,
              message: `the session was claimed by another connection (epoch ${now.epoch}, not ${hello.sessionEpoch})`,
              epoch: now.epoch,
            };
          }
        }
        if (claimed) {
          const previous = this.sessions.get(record.id);
          if (previous) {
            previous.session.stop();
            previous.conn.fail("LL_SESSION_MOVED", "the session was resumed on another connection");
            this.sessions.delete(record.id);
          }
          const session = this.live(claimed.id, claimed.epoch, claimed);
          await this.loadSubscriptions(session);
          this.sessions.set(claimed.id, { session, conn });
          this.counters.sessionsResumed++;
          this.emit("session", { id: claimed.id, event: "resumed", remote: conn.remote });
          return {
            ok: true as const,
            session,
            sessionId: claimed.id,
            token: hello.resumeToken,
            resumed: true,
            heartbeat,
            sessionTtl,
          };
        }
      }
      // Expired or never known: a new session. WELCOME says `resumed: false`, and the
      // client reports the loss to its application with what it had not had acknowledged.
    }
    if (this.sessions.size >= this.limits.maxSessions) {
      return {
        ok: false as const,
        code: "LL_OVERLOADED" as const,
        message: `session limit ${this.limits.maxSessions} reached`,
      };
    }
    const id = randomUUID();
    const token = randomBytes(16).toString("base64url"); // 128 bits
    const now = this.clock.wall();
    await this.store.createSession({
      id,
      tokenHash: hashToken(token),
      createdAt: now,
      lastClientSeq: 0,
      lastPushSeq: 0,
      ackedPushSeq: 0,
      ttl: sessionTtl,
      expiresAt: now + sessionTtl + OWNER_LEASE, // the owner's lease, renewed while it lives
      owner: this.nodeId,
      epoch: 1,
    });
    const session = this.live(id, 1, { lastClientSeq: 0, lastPushSeq: 0, ackedPushSeq: 0 });
    this.sessions.set(id, { session, conn });
    this.counters.sessionsCreated++;
    this.emit("session", { id, event: "created", remote: conn.remote });
    return { ok: true as const, session, sessionId: id, token, resumed: false, heartbeat, sessionTtl };
  }

  private live(
    id: string,
    epoch: number,
    record: { lastClientSeq: number; lastPushSeq: number; ackedPushSeq: number },
  ) {
    return new LiveSession(id, epoch, record, {
      nodeId: this.nodeId,
      store: this.store,
      app: this.app,
      logger: this.logger,
      pushWindow: this.limits.pushWindow,
      counters: this.counters,
    });
  }

  private async loadSubscriptions(session: LiveSession): Promise<void> {
    for (const s of await this.store.subscriptions(session.id)) session.topics.add(s.topic);
    if (session.topics.size > 0) void session.deliver();
  }

  heartbeatFrame(): Message {
    const { lag, cpu } = this.load.value;
    const stats = this.stats();
    return {
      type: "heartbeat",
      seq: ++this.heartbeatSeq,
      sentAt: this.clock.wall(),
      state: this.current === "stopped" ? "draining" : this.current,
      load: { connections: stats.connections, sessions: stats.sessions, lag, queue: stats.queue, cpu },
      ...(stats.reason !== undefined ? { reason: stats.reason } : {}),
    };
  }

  topology(): { epoch: number; nodes: NodeInfo[] } {
    const { lag, cpu } = this.load.value;
    const stats = this.stats();
    const self: NodeInfo = {
      id: this.nodeId,
      address: this.advertised,
      state: this.current,
      load: { connections: stats.connections, sessions: stats.sessions, lag, queue: stats.queue, cpu },
      ...(stats.reason !== undefined ? { reason: stats.reason } : {}),
    };
    return { epoch: this.topologyEpoch, nodes: [self, ...this.peers] };
  }

  /** Replaces the view of the other nodes (from the peer watcher or gossip); clients get it. */
  setPeers(peers: NodeInfo[]): void {
    const before = JSON.stringify(this.peers.map((p) => [p.id, p.address, p.state]));
    this.peers = peers;
    if (JSON.stringify(peers.map((p) => [p.id, p.address, p.state])) === before) return;
    this.topologyEpoch++;
    for (const c of this.connections) c.sendTopology();
  }

  private sendGoaway(c: NodeConnection): void {
    const d = this.drainInfo;
    if (!d) return;
    const nodes = this.peers.filter((p) => p.state === "healthy" || p.state === "degraded");
    const left = Math.max(0, Math.round(d.deadline - (this.clock.now() - d.started)));
    c.send({ type: "goaway", reason: d.reason, deadline: left, nodes });
  }

  welcomed(conn: NodeConnection): void {
    if (this.current === "draining") this.sendGoaway(conn);
  }

  closed(conn: NodeConnection): void {
    this.connections.delete(conn);
    const s = conn.session;
    if (!s) return;
    const held = this.sessions.get(s.id);
    if (held?.conn !== conn) return;
    this.sessions.delete(s.id);
    s.stop();
    const ttl = this.opts.sessionTtl ?? NODE_DEFAULTS.sessionTtl;
    void s
      .settled()
      .then(() => this.store.release(s.id, s.epoch, this.clock.wall() + ttl))
      .catch((err: unknown) =>
        this.logger.warn({ event: "store-error", session: s.id, err: String(err) }, "release failed"),
      );
    this.counters.sessionsDetached++;
    this.emit("session", { id: s.id, event: "detached", remote: conn.remote });
  }

  log(level: "debug" | "info" | "warn", obj: object, msg: string): void {
    this.logger[level](obj, msg);
  }

  /** Routes store changes (from this node or others sharing the store) to attached sessions. */
  private onStoreChange(change: Change): void {
    if (this.syncing) {
      this.resync =
        this.resync && this.resync.kind !== change.kind ? { kind: "any" } : (this.resync ?? change);
      return;
    }
    this.syncing = true;
    void this.sync(change).finally(() => {
      this.syncing = false;
      const next = this.resync;
      this.resync = undefined;
      if (next) this.onStoreChange(next);
    });
  }

  private async sync(change: Change): Promise<void> {
    try {
      if (change.kind !== "topics") {
        const ids =
          change.kind === "sessions"
            ? change.ids.filter((id) => this.sessions.has(id))
            : [...this.sessions.keys()];
        if (ids.length > 0) {
          const heads = await this.store.pushHeads(ids);
          for (const [id, head] of heads) this.sessions.get(id)?.session.notePush(head);
        }
      }
      if (change.kind !== "sessions") {
        const topics = change.kind === "topics" ? new Set(change.topics) : undefined;
        for (const { session } of this.sessions.values()) {
          if (session.topics.size === 0) continue;
          if (topics && ![...session.topics].some((t) => topics.has(t))) continue;
          await session.deliver();
        }
      }
    } catch (err) {
      this.logger.warn({ event: "store-error", err: String(err) }, "routing store changes failed");
    }
  }

  private setState(state: NodeState | "stopped"): void {
    if (state === this.current) return;
    this.current = state;
    this.topologyEpoch++;
    for (const c of this.connections) {
      c.heartbeatNow();
      c.sendTopology();
    }
    this.emit("state", state);
  }

  /**
   * Graceful shutdown: stop accepting, send GOAWAY (with the healthy nodes to go to) to
   * every connection, wait until clients have left and every queued message is committed
   * and acknowledged — at most `deadline` ms — then close what is left and stop.
   */
  async drain(
    reason = "shutting down",
    deadline = this.opts.drainDeadline ?? NODE_DEFAULTS.drainDeadline,
  ): Promise<void> {
    if (this.current === "stopped") return;
    const started = this.clock.now();
    this.counters.drains++;
    this.drainInfo = { reason, deadline, started };
    this.setState("draining");
    this.server?.close();
    // Connections still in their handshake get it right after their WELCOME (welcomed()).
    for (const c of this.connections) if (c.welcomed) this.sendGoaway(c);
    this.logger.info(
      { event: "drain", node: this.nodeId, connections: this.connections.size, deadline },
      `draining: ${reason}`,
    );
    while (this.clock.now() - started < deadline) {
      const clients = [...this.connections].filter((c) => c.role === "client" || c.role === undefined);
      if (clients.length === 0) break;
      await new Promise<void>((resolve) => this.clock.timeout(25, resolve));
    }
    await Promise.all([...this.sessions.values()].map((s) => s.session.settled()));
    await this.stop();
  }

  /** Closes everything now (sessions are released, so clients can resume elsewhere). */
  async stop(): Promise<void> {
    if (this.current === "stopped") return;
    this.setState("stopped");
    this.sweepTimer?.cancel();
    this.renewTimer?.cancel();
    this.storeTimer?.cancel();
    this.unwatch?.();
    this.load.stop();
    const server = this.server;
    for (const c of [...this.connections]) c.close();
    await Promise.all([...this.sessions.values()].map((s) => s.session.settled()));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    // Let the releases of the closed sessions reach the store before it may be closed.
    await new Promise((r) => setTimeout(r, 10));
  }
}
