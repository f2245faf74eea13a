import type { Clock, Random, Timer } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { Awareness } from "./awareness.ts";
import type { MembershipConfig } from "./config.ts";
import { indirectProbeCount, ProbeOrder, pickRandom } from "./math.ts";
import type { MemberTable } from "./member-table.ts";
import type { Message, Ping, PingReq } from "./messages.ts";
import type { MembershipCounters } from "./types.ts";
import type { Wire } from "./wire.ts";

/**
 * SWIM's failure detector: the protocol period loop. Each period (probeInterval × the local
 * health multiplier) it probes the next member of a shuffled round-robin:
 *
 *   t = 0             ping (with a `suspect` about the target piggybacked first when it is
 *                     suspect: Lifeguard's buddy system, so it can refute at once)
 *   t = probeTimeout  no ack: ping-req to `indirectChecks` random members (who answer with a
 *                     nack if the target does not answer them either) and a ping over the
 *                     reliable channel (TCP fallback)
 *   t = period        still no ack from any path: the target is suspected; the local health
 *                     score rises by the number of missing nacks (or by 1 without helpers)
 *
 * An ack in the direct phase lowers the local health score by 1. The loop also answers pings
 * and ping-reqs for others.
 */
/** Share of the requester's window after which an intermediary sends its nack (Lifeguard). */
export const NACK_FRACTION = 0.8;

interface Pending {
  onAck(): void;
  onNack(): void;
  timer: Timer;
}

export interface ProberDeps {
  config: MembershipConfig;
  clock: Clock;
  random: Random;
  table: MemberTable;
  wire: Wire;
  awareness: Awareness;
  counters: MembershipCounters;
  logger: Logger;
}

export class Prober {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly order: ProbeOrder;
  private tickTimer: Timer | undefined;
  private running = false;
  private readonly probeTimers = new Set<Timer>();

  constructor(private readonly d: ProberDeps) {
    this.order = new ProbeOrder(d.random);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // A random first tick spreads the members' periods apart.
    this.schedule(this.d.random() * this.d.config.probeInterval);
  }

  stop(): void {
    this.running = false;
    this.tickTimer?.cancel();
    for (const t of this.probeTimers) t.cancel();
    this.probeTimers.clear();
    for (const p of this.pending.values()) p.timer.cancel();
    this.pending.clear();
  }

  /** A member just learned: it joins the current round at a random place. */
  add(id: string): void {
    this.order.add(id);
  }

  private schedule(delay: number): void {
    const due = this.d.clock.now() + delay;
    this.tickTimer = this.d.clock.timeout(delay, () => this.tick(due));
  }

  private tick(due: number): void {
    if (!this.running) return;
    const late = this.d.clock.now() - due;
    if (this.d.config.lagThreshold > 0 && late > this.d.config.lagThreshold) {
      this.d.logger.warn({ lateMs: Math.round(late) }, "membership: protocol timer ran late (local stall)");
      this.d.awareness.apply(1);
    }
    this.d.table.reap();
    // The period of this probe, fixed now: the next tick comes when the probe is over.
    const period = this.d.awareness.scale(this.d.config.probeInterval);
    const target = this.order.next(this.d.table.peers(), (id) => {
      const s = this.d.table.state(id);
      return s === "alive" || s === "suspect";
    });
    if (target) this.probe(target, period);
    this.schedule(period);
  }

  private probe(targetId: string, period: number): void {
    const target = this.d.table.get(targetId);
    if (!target) return;
    const timeout = Math.min(this.d.awareness.scale(this.d.config.probeTimeout), period);
    const seq = this.nextSeq();
    let done = false;
    let indirect = false;
    let expectedNacks = 0;
    let nacks = 0;
    const timers: Timer[] = [];
    const finish = (delta: number) => {
      done = true;
      for (const t of timers) {
        t.cancel();
        this.probeTimers.delete(t);
      }
      this.forget(seq);
      this.d.awareness.apply(delta);
    };
    this.expect(seq, period, {
      onAck: () => {
        if (!done) finish(indirect ? 0 : -1);
      },
      onNack: () => {
        nacks++;
        this.d.counters.nacksReceived++;
      },
    });

    const ping: Ping = { type: "ping", seq, target: target.id };
    const messages: Message[] = [ping];
    if (target.state === "suspect") {
      messages.push({
        type: "suspect",
        id: target.id,
        incarnation: target.incarnation,
        from: this.d.table.selfId,
      });
    }
    this.d.counters.probes++;
    this.d.wire.send(target.address, messages, target.id);

    const later = (ms: number, fn: () => void) => {
      const t = this.d.clock.timeout(ms, () => {
        this.probeTimers.delete(t);
        fn();
      });
      this.probeTimers.add(t);
      timers.push(t);
    };

    later(timeout, () => {
      if (done) return;
      indirect = true;
      const peers = this.d.table.peers();
      const k = indirectProbeCount(this.d.config.indirectChecks, peers.length - 1);
      const helpers = pickRandom(
        peers,
        k,
        this.d.random,
        (id) => id !== target.id && this.d.table.state(id) === "alive",
      );
      for (const id of helpers) {
        const helper = this.d.table.get(id)!;
        const req: PingReq = {
          type: "pingReq",
          seq,
          target: target.id,
          address: target.address,
          nack: true,
          window: period - timeout,
        };
        this.d.counters.indirectProbes++;
        this.d.wire.send(helper.address, [req], helper.id);
      }
      expectedNacks = helpers.length;
      if (this.d.config.tcpFallback) {
        this.d.counters.fallbackProbes++;
        const ping: Ping = { type: "ping", seq, target: target.id };
        this.d.wire.request(target.address, ping, Math.max(1, period - timeout)).then(
          (resp) => {
            if (!done && resp.messages.some((m) => m.type === "ack" && m.seq === seq)) {
              this.d.logger.warn(
                { member: target.id },
                "membership: reached over TCP but not UDP; the network may be blocking UDP",
              );
              finish(0);
            }
          },
          () => {},
        );
      }
    });

    later(period, () => {
      if (done) return;
      const delta = expectedNacks > 0 ? expectedNacks - nacks : 1;
      finish(delta);
      const now = this.d.table.get(target.id);
      if (!now || (now.state !== "alive" && now.state !== "suspect")) return;
      this.d.table.applySuspect({
        type: "suspect",
        id: now.id,
        incarnation: now.incarnation,
        from: this.d.table.selfId,
      });
    });
  }

  /** Answers a ping addressed to us (from member `sender` at transport address `from`). */
  onPing(ping: Ping, from: string, sender: string): void {
    if (ping.target !== this.d.table.selfId) {
      this.d.counters.droppedUnexpected++;
      return;
    }
    this.d.wire.send(from, [{ type: "ack", seq: ping.seq }], sender);
  }

  /** Probes `req.target` for member `sender` at `from` and relays its ack, or a nack in time. */
  onPingReq(req: PingReq, from: string, sender: string): void {
    const seq = this.nextSeq();
    let acked = false;
    let nackTimer: Timer | undefined;
    // Bounded, whatever the request says: a relayed ack is worth nothing after a period.
    const window = Math.min(
      Math.max(req.window, 1),
      this.d.config.probeInterval * this.d.config.awarenessMaxMultiplier,
    );
    this.expect(seq, window, {
      onAck: () => {
        acked = true;
        nackTimer?.cancel();
        this.forget(seq);
        this.d.wire.send(from, [{ type: "ack", seq: req.seq }], sender);
      },
      onNack: () => {},
    });
    this.d.wire.send(req.address, [{ type: "ping", seq, target: req.target }], req.target);
    if (req.nack) {
      nackTimer = this.d.clock.timeout(NACK_FRACTION * window, () => {
        if (!acked && this.running) this.d.wire.send(from, [{ type: "nack", seq: req.seq }], sender);
      });
    }
  }

  onAck(seq: number): void {
    const p = this.pending.get(seq);
    if (p) p.onAck();
    else this.d.counters.droppedUnexpected++;
  }

  onNack(seq: number): void {
    const p = this.pending.get(seq);
    if (p) p.onNack();
    else this.d.counters.droppedUnexpected++;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private expect(seq: number, ttl: number, handlers: Omit<Pending, "timer">): void {
    const timer = this.d.clock.timeout(ttl, () => this.pending.delete(seq));
    this.pending.set(seq, { ...handlers, timer });
  }

  private forget(seq: number): void {
    const p = this.pending.get(seq);
    if (!p) return;
    p.timer.cancel();
    this.pending.delete(seq);
  }
}
