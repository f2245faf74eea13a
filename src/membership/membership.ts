import { LifelineError } from "../errors.ts";
import { type Clock, type Random, systemClock } from "../util/clock.ts";
import { EventStream } from "../util/event-stream.ts";
import { type Logger, silentLogger } from "../util/logger.ts";
import { TypedEmitter } from "../util/typed-emitter.ts";
import { Awareness } from "./awareness.ts";
import { BroadcastQueue } from "./broadcast-queue.ts";
import { encodeMessage, MAX_ID_BYTES } from "./codec.ts";
import { type MembershipConfig, type MembershipPreset, membershipConfig } from "./config.ts";
import { Gossiper } from "./gossip.ts";
import type { Keyring } from "./keyring.ts";
import { retransmitLimit } from "./math.ts";
import { MemberTable } from "./member-table.ts";
import { Prober } from "./prober.ts";
import { PushPullSync } from "./push-pull.ts";
import type { Transport } from "./transport.ts";
import {
  type Member,
  type MemberEvent,
  type MemberMeta,
  type MembershipCounters,
  zeroCounters,
} from "./types.ts";
import { type Received, Wire } from "./wire.ts";

/**
 * A member of a Lifeline cluster: SWIM failure detection with Lifeguard's refinements, gossip
 * dissemination and push-pull anti-entropy over an injected transport and clock.
 *
 *   const m = new Membership({ id: "n1", transport, meta: { client: "10.0.0.1:7400" } });
 *   m.on("member", (e) => log(e.member.id, e.previous, "→", e.member.state, e.reason));
 *   m.start();
 *   await m.join(["10.0.0.2:7946"]);
 *   ...
 *   await m.leave();   // others see `left`, not `dead`
 *   await m.stop();
 *
 * Lifecycle: new → start() → [join()] → running → leave() → stop(). stop() closes the
 * transport: the Membership owns it from construction.
 */
export interface MembershipOptions {
  /** This member's unique id (≤ 128 bytes). */
  id: string;
  transport: Transport;
  /** Metadata gossiped with this member (client address, role, load…), ≤ 512 bytes encoded. */
  meta?: MemberMeta;
  /** Preset the config starts from. Default "lan". */
  preset?: MembershipPreset;
  /** Overrides of the preset (validated). */
  config?: Partial<MembershipConfig>;
  /** Encrypts and authenticates every message when set (and then requires it). */
  keyring?: Keyring;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
}

export type MembershipEvents = {
  /** A member's state changed (joined, suspected, refuted, died, left). */
  member: [MemberEvent];
  /** A member's address or metadata changed (state unchanged). */
  update: [MemberEvent];
  /** The local health score changed (0 = healthy; see awareness.ts). */
  health: [{ score: number; delta: number }];
};

export class Membership extends TypedEmitter<MembershipEvents> {
  readonly config: MembershipConfig;
  readonly keyring: Keyring | undefined;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly stats = zeroCounters();
  private readonly queue: BroadcastQueue;
  private readonly awareness: Awareness;
  private readonly table: MemberTable;
  private readonly wire: Wire;
  private readonly prober: Prober;
  private readonly gossiper: Gossiper;
  private readonly sync: PushPullSync;
  private state: "new" | "running" | "leaving" | "left" | "stopped" = "new";

  constructor(opts: MembershipOptions) {
    super();
    if (!opts.id || Buffer.byteLength(opts.id) > MAX_ID_BYTES)
      throw new LifelineError("LL_MEMBERSHIP_ID", `a member id is 1 to ${MAX_ID_BYTES} bytes: "${opts.id}"`);
    this.config = membershipConfig(opts.preset ?? "lan", opts.config);
    this.keyring = opts.keyring;
    this.transport = opts.transport;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
    const random = opts.random ?? Math.random;
    this.queue = new BroadcastQueue(() => retransmitLimit(this.config.retransmitMult, this.table.size));
    this.awareness = new Awareness(this.config.awarenessMaxMultiplier, (score, delta) =>
      this.emit("health", { score, delta }),
    );
    this.table = new MemberTable({
      selfId: opts.id,
      address: this.transport.address,
      meta: opts.meta ?? {},
      clock: this.clock,
      config: this.config,
      queue: this.queue,
      awareness: this.awareness,
      counters: this.stats,
      logger: this.logger,
      emit: (kind, event) => this.report(kind, event),
      onNew: (id) => this.prober.add(id),
    });
    this.wire = new Wire(this.config, opts.id, this.transport, this.queue, this.stats, this.keyring);
    this.prober = new Prober({
      config: this.config,
      clock: this.clock,
      random,
      table: this.table,
      wire: this.wire,
      awareness: this.awareness,
      counters: this.stats,
      logger: this.logger,
    });
    this.gossiper = new Gossiper(this.config, this.clock, random, this.table, this.queue, this.wire);
    this.sync = new PushPullSync(
      this.config,
      this.clock,
      random,
      this.table,
      this.wire,
      this.stats,
      this.logger,
    );
    this.transport.onPacket((bytes, from) => this.onPacket(bytes, from));
    this.transport.onReliable((bytes, from) => this.onReliable(bytes, from));
  }

  get id(): string {
    return this.table.selfId;
  }

  get address(): string {
    return this.transport.address;
  }

  /** Starts probing, gossiping and anti-entropy. A lone member until it joins or is joined. */
  start(): void {
    if (this.state !== "new") return;
    this.state = "running";
    this.queue.enqueue(this.id, encodeMessage(this.table.localAlive()), undefined, false);
    this.prober.start();
    this.gossiper.start();
    this.sync.start();
  }

  /**
   * Joins the cluster through `seeds` ("host:port" of any members): a push-pull with each.
   * Resolves with how many answered; rejects with LL_MEMBERSHIP_JOIN_FAILED when none did.
   */
  join(seeds: readonly string[]): Promise<number> {
    if (this.state === "new") this.start();
    const others = seeds.filter((s) => s !== this.address);
    if (others.length === 0) return Promise.resolve(0);
    return this.sync.join(others);
  }

  /**
   * Leaves gracefully: announces `left` (others do not wait out a suspicion) and resolves once
   * the announcement has been sent its retransmit limit, or after `timeoutMs`. Probing stops;
   * the member keeps answering until stop().
   */
  leave(timeoutMs = 5000): Promise<void> {
    if (this.state !== "running") return Promise.resolve();
    this.state = "leaving";
    this.prober.stop();
    return new Promise((resolve) => {
      let timer: { cancel(): void } | undefined;
      const done = () => {
        timer?.cancel();
        if (this.state === "leaving") this.state = "left";
        resolve();
      };
      // Nobody to tell: done at once.
      if (this.table.liveCount() <= 1) {
        this.table.leave(() => {});
        done();
        return;
      }
      timer = this.clock.timeout(timeoutMs, done);
      this.table.leave(done);
      this.gossiper.round();
    });
  }

  /** Stops every timer and closes the transport. */
  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopped";
    this.prober.stop();
    this.gossiper.stop();
    this.sync.stop();
    this.table.close();
    this.queue.clear();
    await this.transport.close();
  }

  /** Every known member, the local one included (dead and left ones until forgotten). */
  members(): Member[] {
    return this.table.all();
  }

  member(id: string): Member | undefined {
    return this.table.get(id);
  }

  local(): Member {
    return this.table.get(this.id)!;
  }

  /**
   * State changes as an async iterator (`for await (const e of m.events())`), bounded: when
   * the reader falls `capacity` behind, the oldest are dropped and counted in `dropped`.
   */
  events(capacity = 1024): EventStream<MemberEvent> {
    const push = (e: MemberEvent) => stream.push(e);
    const stream = new EventStream<MemberEvent>(capacity, () => this.off("member", push));
    this.on("member", push);
    return stream;
  }

  /** Gossips new metadata (under a new incarnation). */
  updateMeta(meta: MemberMeta): void {
    this.table.updateMeta(meta);
  }

  /** Lifeguard's local health score: 0 healthy .. awarenessMaxMultiplier − 1. */
  get healthScore(): number {
    return this.awareness.score;
  }

  /** A snapshot of the counters, including messages dropped for failing authentication. */
  counters(): MembershipCounters {
    return { ...this.stats };
  }

  private report(kind: "member" | "update", event: MemberEvent): void {
    const m = event.member;
    this.logger.info(
      {
        member: m.id,
        address: m.address,
        state: m.state,
        previous: event.previous,
        incarnation: m.incarnation,
      },
      `membership: ${m.id} ${kind === "member" ? `is ${m.state}` : "updated"}: ${event.reason}`,
    );
    this.emit(kind, event);
  }

  private onPacket(bytes: Uint8Array, from: string): void {
    if (this.state === "stopped" || this.state === "new") return;
    this.stats.packetsReceived++;
    this.stats.bytesReceived += bytes.length;
    const got = this.wire.open(bytes);
    if (got) this.dispatch(got, from);
  }

  private dispatch(got: Received, from: string): void {
    // Before answering (so the reminder rides the ack), unless the packet itself refutes.
    const known = this.table.get(got.sender);
    if (
      known &&
      !got.messages.some(
        (m) => m.type === "alive" && m.id === got.sender && m.incarnation > known.incarnation,
      )
    )
      this.table.remind(got.sender);
    for (const m of got.messages) {
      switch (m.type) {
        case "ping":
          this.prober.onPing(m, from, got.sender);
          break;
        case "pingReq":
          this.prober.onPingReq(m, from, got.sender);
          break;
        case "ack":
          this.prober.onAck(m.seq);
          break;
        case "nack":
          this.prober.onNack(m.seq);
          break;
        case "alive":
          this.table.applyAlive(m);
          break;
        case "suspect":
          this.table.applySuspect(m);
          break;
        case "dead":
          this.table.applyDead(m);
          break;
        case "pushPull":
          this.stats.droppedMalformed++; // only valid on the reliable channel
          break;
      }
    }
  }

  private async onReliable(bytes: Uint8Array, _from: string): Promise<Uint8Array | undefined> {
    if (this.state === "stopped" || this.state === "new") return undefined;
    this.stats.reliableReceived++;
    const got = this.wire.open(bytes);
    const m = got?.messages[0];
    if (!got || !m) return undefined;
    if (m.type === "pushPull") return this.wire.response(this.sync.answer(m, got.sender));
    if (m.type === "ping" && m.target === this.id) return this.wire.response({ type: "ack", seq: m.seq });
    this.stats.droppedUnexpected++;
    return undefined;
  }
}
