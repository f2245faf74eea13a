import pc from "picocolors";
import type { ClientStatus } from "../client/client.ts";
import type { TargetSnapshot } from "../health/target.ts";
import { formatAge, formatMs } from "../util/format.ts";
import { quantile, type TrafficCounters } from "./demo-traffic.ts";
import type { CliIO } from "./io.ts";
import type { LocalNodeState } from "./local-cluster.ts";
import { colourState } from "./table.ts";

/** One node as the view shows it: its process (from the demo) and health (from the monitor). */
export interface NodeRow {
  id: string;
  pid: number | undefined;
  address: string;
  process: LocalNodeState;
  health: TargetSnapshot | undefined;
}

export interface DemoFrame {
  nodes: NodeRow[];
  client: ClientStatus;
  traffic: TrafficCounters;
}

export interface DemoInfo {
  dir: string;
  store: string;
  /** The monitor's admin API, when it started. */
  admin: string | undefined;
  /** The watchdog process's pid. */
  watchdog: number | undefined;
}

const EVENTS = 12;
/** NODE, PID, ADDRESS, PROCESS, CLIENT, HEALTH, SINCE (REASON takes the rest). */
const WIDTHS = [4, 7, 15, 7, 6, 10, 7];
const ms = (v: number | undefined) => (v === undefined ? "-" : formatMs(v));
const clock = (at = Date.now()) => new Date(at).toISOString().slice(11, 23);

function counters(t: TrafficCounters): string {
  return `sent ${t.sent}  acknowledged ${t.acknowledged}  pending ${t.pending}  lost ${t.lost}  duplicated ${t.duplicated}${t.mismatched ? `  mismatched ${t.mismatched}` : ""}`;
}

function failovers(t: TrafficCounters): string {
  return `failovers ${t.failovers.length}  p50 ${ms(quantile(t.failovers, 0.5))}  p99 ${ms(quantile(t.failovers, 0.99))}`;
}

/**
 * The demo's screen. On a terminal: redrawn in place four times a second (nodes, client,
 * counters, failover times, the latest events). Otherwise plain appended lines — every event
 * as it happens and a status line a second — so it reads well in a log, a pipe or a test.
 */
export class DemoView {
  readonly tty: boolean;
  /** Redraw interval, ms. */
  readonly every: number;
  private readonly events: string[] = [];
  private info: DemoInfo | undefined;
  private open = false;

  constructor(
    private readonly io: CliIO,
    private readonly chaos: boolean,
  ) {
    this.tty = io.stdout.isTTY === true;
    this.every = this.tty ? 250 : 1000;
    if (this.tty) {
      io.stdout.write("\x1b[?1049h\x1b[?25l");
      this.open = true;
    }
  }

  /** The cluster is up: on a terminal, shown in the header; otherwise a line and a JSON line. */
  started(info: DemoInfo, nodes: NodeRow[]): void {
    this.info = info;
    if (this.tty) return;
    const list = nodes.map((n) => `${n.id} (pid ${n.pid}, ${n.address})`).join(", ");
    this.line(`started nodes ${list}; store ${info.store}`);
    this.line(`dashboard: ${info.admin ? `${info.admin}/` : "-"}`);
    this.io.stdout.write(
      `${JSON.stringify({ type: "start", dir: info.dir, admin: info.admin, watchdog: info.watchdog, nodes: nodes.map((n) => ({ id: n.id, pid: n.pid, address: n.address })) })}\n`,
    );
  }

  event(text: string): void {
    if (!this.tty) {
      this.line(text);
      return;
    }
    this.events.push(`${clock()} ${text}`);
    if (this.events.length > EVENTS) this.events.shift();
  }

  render(frame: DemoFrame): void {
    const { client, traffic } = frame;
    if (!this.tty) {
      const nodes = frame.nodes
        .map((n) => {
          const extra = n.process === "running" ? "" : `, ${n.process}`;
          return `${n.id} ${n.health?.state ?? "unknown"} (pid ${n.pid ?? "-"}${extra})`;
        })
        .join("  ");
      this.line(
        `status  ${nodes} | client ${client.state} on ${client.node ?? "-"} | ${counters(traffic)} | ${failovers(traffic)}`,
      );
      return;
    }
    const width = this.io.stdout.columns ?? 120;
    const now = Date.now();
    const clip = (text: string) => text.slice(0, Math.max(20, width - 1));
    const lines = [
      `${pc.bold("Lifeline demo")}: three nodes, a monitor and a client on this machine   ${clock(now).slice(0, 8)}`,
      clip(`store      ${this.info?.store ?? "-"}`),
      clip(`dashboard  ${this.info?.admin ? `${this.info.admin}/  (metrics: /metrics)` : "-"}`),
      "",
    ];
    // Fixed columns (70 characters with their gaps); the reason gets what is left.
    const cells = (c: string[]) => c.map((text, i) => text.padEnd(WIDTHS[i] ?? 0)).join("  ");
    lines.push(pc.bold(cells(["NODE", "PID", "ADDRESS", "PROCESS", "CLIENT", "HEALTH", "SINCE", "REASON"])));
    for (const n of frame.nodes) {
      const h = n.health;
      const fixed = cells([
        n.id,
        String(n.pid ?? "-"),
        n.address,
        n.process,
        client.node === n.id ? "◀ here" : "",
      ]);
      const state = h?.state ?? "unknown";
      const health = h ? colourState(h.state, state.padEnd(WIDTHS[5]!)) : state.padEnd(WIDTHS[5]!);
      const since = (h ? formatAge(now - h.since) : "-").padEnd(WIDTHS[6]!);
      const reason = (h?.reason ?? "").slice(0, Math.max(0, width - 1 - 70));
      lines.push(`${fixed}  ${health}  ${since}  ${reason}`.trimEnd());
    }
    lines.push(
      "",
      `${pc.bold("client")}    ${client.state} on ${client.node ?? "-"}  session ${client.sessionId?.slice(0, 8) ?? "-"}  rtt ${ms(client.rtt)}`,
      `${pc.bold("messages")}  ${counters(traffic)}`,
      `${pc.bold("failover")}  ${failovers(traffic)}`,
      "",
      pc.bold("events"),
      ...this.events.map(clip),
      "",
      pc.dim(
        this.chaos
          ? "Ctrl-C to stop; chaos is on: a node is killed, frozen or restarted every 3-6 s"
          : "Ctrl-C to stop; run with --chaos to break things",
      ),
    );
    this.io.stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`);
  }

  /** Leaves the full-screen view (the summary then stays on the terminal). */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.io.stdout.write("\x1b[?25h\x1b[?1049l");
  }

  /** The last words: a readable line and a JSON line (the test reads the latter). */
  summary(final: TrafficCounters, pids: number[]): void {
    this.close();
    const s = {
      type: "summary",
      sent: final.sent,
      acknowledged: final.acknowledged,
      lost: final.lost,
      duplicated: final.duplicated,
      mismatched: final.mismatched,
      failovers: final.failovers.length,
      failoverP50: quantile(final.failovers, 0.5),
      failoverP99: quantile(final.failovers, 0.99),
      pids,
      watchdog: this.info?.watchdog,
      dir: this.info?.dir,
    };
    this.io.stdout.write(
      `demo: sent ${s.sent}, acknowledged ${s.acknowledged}, lost ${s.lost}, duplicated ${s.duplicated}; ` +
        `${s.failovers} failovers (p50 ${ms(s.failoverP50)}, p99 ${ms(s.failoverP99)}); ` +
        `stopped node processes ${pids.join(", ") || "-"}; removed ${s.dir ?? "-"}\n`,
    );
    this.io.stdout.write(`${JSON.stringify(s)}\n`);
  }

  private line(text: string): void {
    this.io.stdout.write(`${clock()} ${text}\n`);
  }
}
