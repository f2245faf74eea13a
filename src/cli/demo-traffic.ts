import type { LifelineClient } from "../client/client.ts";

/** What the traffic has seen so far, counted from the messages themselves. */
export interface TrafficCounters {
  sent: number;
  acknowledged: number;
  /** Sent, not answered yet and not given up on. */
  pending: number;
  /** Messages whose `send()` failed for good (session lost, dropped; at the end: closed). */
  lost: number;
  /** Replies for a message never sent, or a second reply for one already answered. */
  duplicated: number;
  /** Replies that were not their request's (the echo app answers with the request). */
  mismatched: number;
  /** The client's failover times (its `failover` events), ms. */
  failovers: number[];
}

/** The q-quantile (nearest rank) of `values`; undefined when there are none. */
export function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const SENT = 1;
const ACKNOWLEDGED = 2;
const GIVEN_UP = 3;

/**
 * The demo's traffic: a steady stream of messages with unique ids (`PREFIX-N`) through the
 * failover client to the echo app, a few in flight at a time, each reply checked against
 * its request. Every message's fate is one byte (never sent, sent, acknowledged, given
 * up), so counting stays exact and cheap however long the demo runs.
 */
export class Traffic {
  private states = new Uint8Array(4096);
  private sent = 0;
  private acknowledged = 0;
  private lost = 0;
  private duplicated = 0;
  private mismatched = 0;
  private readonly failovers: number[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly pattern: RegExp;

  constructor(
    private readonly client: LifelineClient,
    private readonly opts: { rate: number; maxInFlight: number; prefix: string },
  ) {
    this.pattern = new RegExp(`^${opts.prefix}-(\\d+)$`);
    client.on("failover", (e) => this.failovers.push(e.took));
  }

  /** Sends `rate` messages a second while fewer than `maxInFlight` are unanswered. */
  start(): void {
    this.timer ??= setInterval(() => {
      if (this.inFlight < this.opts.maxInFlight) this.sendOne();
    }, 1000 / this.opts.rate);
  }

  /** Sends nothing more; what is in flight is still counted when it settles. */
  stop(): void {
    clearInterval(this.timer);
  }

  counters(): TrafficCounters {
    return {
      sent: this.sent,
      acknowledged: this.acknowledged,
      pending: this.sent - this.acknowledged - this.lost,
      lost: this.lost,
      duplicated: this.duplicated,
      mismatched: this.mismatched,
      failovers: [...this.failovers],
    };
  }

  /** After the client has closed: every message sent and never acknowledged is lost. */
  final(): TrafficCounters {
    let unanswered = 0;
    for (let n = 0; n < this.sent; n++) if (this.states[n] !== ACKNOWLEDGED) unanswered++;
    return { ...this.counters(), pending: 0, lost: unanswered };
  }

  private sendOne(): void {
    const n = this.sent++;
    if (n >= this.states.length) {
      const grown = new Uint8Array(this.states.length * 2);
      grown.set(this.states);
      this.states = grown;
    }
    this.states[n] = SENT;
    this.inFlight++;
    this.client
      .send(`${this.opts.prefix}-${n}`)
      .then(
        (reply) => this.onReply(n, Buffer.from(reply).toString("utf8")),
        () => {
          if (this.states[n] === SENT) {
            this.states[n] = GIVEN_UP;
            this.lost++;
          }
        },
      )
      .finally(() => this.inFlight--);
  }

  private onReply(n: number, text: string): void {
    const match = this.pattern.exec(text);
    const m = match ? Number(match[1]) : -1;
    if (m !== n) this.mismatched++;
    if (m < 0 || m >= this.sent || this.states[m] === undefined || this.states[m] === 0) {
      // A reply for a message that was never sent.
      this.duplicated++;
      return;
    }
    if (this.states[m] === ACKNOWLEDGED) {
      this.duplicated++;
      return;
    }
    if (this.states[m] === GIVEN_UP) this.lost--;
    this.states[m] = ACKNOWLEDGED;
    this.acknowledged++;
  }
}
