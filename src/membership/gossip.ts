import type { Clock, Random, Timer } from "../util/clock.ts";
import type { BroadcastQueue } from "./broadcast-queue.ts";
import type { MembershipConfig } from "./config.ts";
import { pickRandom } from "./math.ts";
import type { MemberTable } from "./member-table.ts";
import type { Wire } from "./wire.ts";

/**
 * Gossip rounds: every gossipInterval, while updates wait in the broadcast queue, they go to
 * gossipNodes random members (alive, suspect, or dead for less than gossipToTheDeadTime, so
 * that a member wrongly declared dead hears it and refutes). This spreads news faster than
 * piggybacking on the one ping per period alone; an idle cluster sends nothing here.
 */
export class Gossiper {
  private timer: Timer | undefined;
  private running = false;

  constructor(
    private readonly config: MembershipConfig,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly table: MemberTable,
    private readonly queue: BroadcastQueue,
    private readonly wire: Wire,
  ) {}

  start(): void {
    if (this.running || this.config.gossipInterval <= 0 || this.config.gossipNodes <= 0) return;
    this.running = true;
    this.schedule(this.random() * this.config.gossipInterval);
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
  }

  /** One round now (also used by leave() to hurry its announcement out). */
  round(): void {
    if (this.queue.length === 0) return;
    const targets = pickRandom(this.table.peers(), this.config.gossipNodes, this.random, (id) => {
      const s = this.table.state(id);
      return s === "alive" || s === "suspect" || this.table.recentlyDead(id);
    });
    for (const id of targets) {
      const m = this.table.get(id);
      if (m && !this.wire.gossip(m.address, m.id) && this.queue.length === 0) break;
    }
  }

  private schedule(delay: number): void {
    this.timer = this.clock.timeout(delay, () => {
      if (!this.running) return;
      this.round();
      this.schedule(this.config.gossipInterval);
    });
  }
}
