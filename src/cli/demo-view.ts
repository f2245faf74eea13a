import type { ClientStatus, CloseReport } from "../client/client.ts";
import type { TargetSnapshot } from "../health/target.ts";
import { formatAge, formatMs } from "../util/format.ts";
import type { CliIO } from "./io.ts";
import type { LocalCluster } from "./local-cluster.ts";
import { colourState } from "./table.ts";

export interface DemoStats {
  sent: number;
  acknowledged: number;
  /** A reply that arrived a second time for the same message. */
  duplicated: number;
  /** A reply that was not its message's. */
  wrong: number;
  /** Failover times, ms. */
  failovers: number[];
  /** Sent and never answered (known at the end). */
  lost: number;
}

function quantile(values: number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const ms = (v: number | undefined) => (v === undefined ? "-" : formatMs(v));

/**
 * The demo's screen: on a terminal, redrawn in place (nodes, client, counters, latest
 * events); otherwise plain lines (an event per line, a status line every few seconds), so
 * it reads well in a log or a test.
 */
export class DemoView {
  readonly tty: boolean;
  readonly every: number;
  private readonly events: string[] = [];
  private ticks = 0;

  constructor(
    private readonly io: CliIO,
    private readonly chaos: boolean,
  ) {
    this.tty = io.stdout.isTTY === true;
    this.every = this.tty ? 250 : 1000;
    if (this.tty) io.stdout.write("\x1b[?1049h\x1b[?25l");
  }

  event(text: string): void {
    const line = `${new Date().toISOString().slice(11, 23)} ${text}`;
    if (this.tty) {
      this.events.push(line);
      if (this.events.length > 12) this.events.shift();
    } else this.io.stdout.write(`${line}\n`);
  }

  render(cluster: LocalCluster, targets: TargetSnapshot[], client: ClientStatus, stats: DemoStats): void {
    const now = Date.now();
    const counters = `sent ${stats.sent}  acknowledged ${stats.acknowledged}  lost ${stats.sent - stats.acknowledged - stats.duplicated - stats.wrong - client.queue.unsent - client.queue.inflight}  duplicated ${stats.duplicated + stats.wrong}`;
    const fo = `failovers ${stats.failovers.length}  p50 ${ms(quantile(stats.failovers, 0.5))}  p99 ${ms(quantile(stats.failovers, 0.99))}`;
    if (!this.tty) {
      if (this.ticks++ % 5 !== 0) return;
      const nodes = targets.map((t) => `${t.id}=${t.state}`).join(" ");
      this.io.stdout.write(
        `status: ${nodes} | client on ${client.node ?? "-"} (${client.state}) | ${counters} | ${fo}\n`,
      );
      return;
    }
    const lines: string[] = ["Lifeline demo: three nodes, one monitor, one client", ""];
    lines.push("NODE  PID      ADDRESS               PROCESS   HEALTH       SINCE    REASON");
    for (const n of cluster.nodes) {
      const t = targets.find((x) => x.id === n.id);
      const state = t ? colourState(t.state, t.state.padEnd(12)) : "unknown     ";
      const since = t ? formatAge(now - t.since).padEnd(8) : "-       ";
      lines.push(
        `${n.id.padEnd(5)} ${String(n.pid ?? "-").padEnd(8)} ${n.address.padEnd(21)} ${n.state.padEnd(9)} ${state} ${since} ${t?.reason ?? ""}`.slice(
          0,
          (this.io.stdout.columns ?? 160) + 20,
        ),
      );
    }
    lines.push("");
    lines.push(
      `client: ${client.state} on ${client.node ?? "-"}  session ${client.sessionId?.slice(0, 8) ?? "-"}  queue ${client.queue.unsent} unsent, ${client.queue.inflight} in flight  rtt ${ms(client.rtt)}`,
    );
    lines.push(`        ${counters}`);
    lines.push(`        ${fo}`);
    lines.push("", "events:", ...this.events, "");
    lines.push(this.chaos ? "Ctrl-C to stop." : "Ctrl-C to stop; run with --chaos to break things.");
    this.io.stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`);
  }

  summary(stats: DemoStats, pids: number[], report: CloseReport | undefined, dir: string): void {
    if (this.tty) this.io.stdout.write("\x1b[?25h\x1b[?1049l");
    const s = {
      type: "summary",
      sent: stats.sent,
      acknowledged: stats.acknowledged,
      lost: stats.lost,
      duplicated: stats.duplicated + stats.wrong,
      failovers: stats.failovers.length,
      failoverP50: quantile(stats.failovers, 0.5),
      failoverP99: quantile(stats.failovers, 0.99),
      unfinished: report ? report.unsent + report.unacknowledged : 0,
      pids,
      dir,
    };
    this.io.stdout.write(
      `demo: sent ${s.sent}, acknowledged ${s.acknowledged}, lost ${s.lost}, duplicated ${s.duplicated}; ` +
        `${s.failovers} failovers (p50 ${ms(s.failoverP50)}, p99 ${ms(s.failoverP99)}); stopped nodes ${pids.join(", ")}\n`,
    );
    this.io.stdout.write(`${JSON.stringify(s)}\n`);
  }
}
