import { LifelineError } from "../errors.ts";
import type { Clock, Random, Timer } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { MembershipConfig } from "./config.ts";
import { pickRandom, pushPullInterval } from "./math.ts";
import type { MemberTable } from "./member-table.ts";
import type { PushPull } from "./messages.ts";
import type { MembershipCounters } from "./types.ts";
import type { Wire } from "./wire.ts";

/**
 * Anti-entropy: a full exchange of member tables over the reliable channel. Every
 * pushPullInterval (scaled up beyond 32 members) with one random live member, so whatever
 * gossip lost is repaired; and with each seed on join, which is how a new member learns
 * the cluster and the cluster learns it.
 */
export class PushPullSync {
  private timer: Timer | undefined;
  private reconnectTimer: Timer | undefined;
  private running = false;

  constructor(
    private readonly config: MembershipConfig,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly table: MemberTable,
    private readonly wire: Wire,
    private readonly counters: MembershipCounters,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.config.pushPullInterval > 0)
      this.schedule(this.config.pushPullInterval * (0.5 + this.random() / 2));
    if (this.config.reconnectInterval > 0) this.scheduleReconnect();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.reconnectTimer?.cancel();
  }

  /**
   * Pushes-pulls with every seed at once; resolves with how many answered, or rejects with
   * LL_MEMBERSHIP_JOIN_FAILED (the first cause attached) when none did.
   */
  async join(seeds: readonly string[]): Promise<number> {
    const results = await Promise.allSettled(seeds.map((s) => this.exchange(s, true)));
    const ok = results.filter((r) => r.status === "fulfilled").length;
    if (ok === 0 && seeds.length > 0) {
      const first = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
      throw new LifelineError("LL_MEMBERSHIP_JOIN_FAILED", `no seed answered (${seeds.join(", ")})`, {
        cause: first?.reason,
      });
    }
    return ok;
  }

  /** One exchange with `address`: send our table, merge theirs. */
  async exchange(address: string, join: boolean): Promise<void> {
    this.counters.pushPulls++;
    const req: PushPull = { type: "pushPull", join, members: this.table.entries() };
    const resp = await this.wire.request(address, req, this.config.reliableTimeout);
    const pp = resp.messages.find((m) => m.type === "pushPull");
    if (pp?.type !== "pushPull")
      throw new LifelineError("LL_PROTOCOL", `${address} did not answer a push-pull`);
    this.table.merge(pp.members, resp.sender);
  }

  /**
   * The answer to a push-pull request: our table after merging theirs, so that a refutation
   * of what they held about us (dead, after a partition or a restart) is in the answer.
   */
  answer(req: PushPull, sender: string): PushPull {
    this.table.merge(req.members, sender);
    return { type: "pushPull", join: false, members: this.table.entries() };
  }

  private schedule(delay: number): void {
    this.timer = this.clock.timeout(delay, () => {
      if (!this.running) return;
      const [peer] = pickRandom(this.table.peers(), 1, this.random, (id) => this.table.state(id) === "alive");
      const m = peer ? this.table.get(peer) : undefined;
      if (m) {
        this.exchange(m.address, false).catch((err: unknown) =>
          this.logger.debug({ member: m.id, err: String(err) }, "membership: push-pull failed"),
        );
      }
      this.schedule(pushPullInterval(this.config.pushPullInterval, this.table.liveCount()));
    });
  }

  /** Reconnect: a push-pull with one random dead member, in case it is back (Serf's idea). */
  private scheduleReconnect(): void {
    this.reconnectTimer = this.clock.timeout(this.config.reconnectInterval * (0.5 + this.random()), () => {
      if (!this.running) return;
      const [peer] = pickRandom(this.table.peers(), 1, this.random, (id) => this.table.state(id) === "dead");
      const m = peer ? this.table.get(peer) : undefined;
      if (m) this.exchange(m.address, false).catch(() => {});
      this.scheduleReconnect();
    });
  }
}
