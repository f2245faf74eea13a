import { z } from "zod";
import { ConnectError, ProtocolConnection } from "../../client/connection.ts";
import { TimeoutError } from "../../errors.ts";
import type { Heartbeat } from "../../protocol/messages.ts";
import type { Clock, Timer } from "../../util/clock.ts";
import { formatMs } from "../../util/format.ts";
import { PhiAccrualDetector } from "../detectors/phi.ts";
import type { ErrorKind } from "../kinds.ts";
import type { Probe, ProbeContext, ProbeOutcome } from "../types.ts";
import { parseHostPort, parseTargetUrl } from "./address.ts";
import type { ProbeCreateContext, ProbeType } from "./registry.ts";

/**
 * `heartbeat`: one persistent connection to a Lifeline node, which streams HEARTBEAT
 * messages with its load. No new TCP connection per check (seed drawback 2), and a frozen
 * process is caught by its silence — a connect check never sees it, because the kernel
 * still completes the handshake for a stopped process.
 *
 * Each attempt waits for the next heartbeat (pass; `warn` when the node says it is degraded
 * or draining) or for the silence to reach a suspicion level on the phi-accrual detector:
 * `suspectPhi` fails the attempt (the target turns suspect), and the next attempt fails at
 * `downPhi` (down: this check's `fall` is 2). A connection that breaks and whose reconnect
 * is refused is conclusive: the process is gone, down at once, kind `refused`.
 *
 * Silence caused by the monitor's own stalls is discounted: the phi timer is judged after
 * pending I/O, and stalled time is subtracted from the silence.
 */
export const heartbeatSchema = z
  .object({
    /** The node's "host:port". */
    address: z.string().refine((v) => parseHostPort(v) !== undefined, { message: 'expected "host:port"' }),
    /** Heartbeat interval asked of the node, ms. Default 500: a frozen node is down in ~1.5 s.
     *  (Named `heartbeat`, not `interval`: `interval` is the setting every check has.) */
    heartbeat: z.number().int().min(50).max(60_000).default(500),
    /** Suspicion level at which the target becomes suspect. Default 2 (≈1 % chance the node
     *  is merely late). */
    suspectPhi: z.number().positive().default(2),
    /** Suspicion level at which it is down. Default 8, as Akka and Cassandra. */
    downPhi: z.number().positive().default(8),
    /** Floor of the interval deviation, ms. Default 100: a very regular node's few ms of
     *  jitter must not look like failure. */
    minStdDev: z.number().positive().default(100),
    /** Extra silence tolerated (GC pauses on the node), ms. Default 400. */
    acceptablePause: z.number().min(0).default(400),
    /** Time to connect and get WELCOME, ms. Default 2000. */
    connectTimeout: z.number().int().positive().default(2000),
  })
  .strict()
  .refine((s) => s.downPhi > s.suspectPhi, { message: "downPhi must exceed suspectPhi", path: ["downPhi"] });

export type HeartbeatSpec = z.infer<typeof heartbeatSchema>;

type Waiter = { done: (outcome: ProbeOutcome) => void; ctx: ProbeContext };

/** Silence (ms) after which a down node's connection is replaced by a fresh one. */
const RECONNECT_AFTER_SILENCE = 10_000;

export class HeartbeatProbe implements Probe {
  private conn: ProtocolConnection | undefined;
  private detector: PhiAccrualDetector;
  private waiter: Waiter | undefined;
  private latest: Heartbeat | undefined;
  /** A connection existed and broke: a refused reconnect now is conclusive. */
  private broken = false;
  private nodeId: string | undefined;
  private rtt: number | undefined;
  private closed = false;
  private attempts = 0;
  /** Failed attempts in a row while already down and silent (paces them). */
  private silentRounds = 0;

  constructor(
    private readonly spec: HeartbeatSpec,
    private readonly ctx: ProbeCreateContext,
  ) {
    this.detector = this.newDetector();
  }

  private newDetector(): PhiAccrualDetector {
    return new PhiAccrualDetector({
      windowSize: 100,
      minStdDev: this.spec.minStdDev,
      acceptablePause: this.spec.acceptablePause,
      firstHeartbeatEstimate: this.spec.heartbeat,
    });
  }

  private get clock(): Clock {
    return this.ctx.clock;
  }

  async run(ctx: ProbeContext): Promise<ProbeOutcome> {
    if (!this.conn) {
      const failed = await this.connect(ctx);
      if (failed) return failed;
    }
    return this.await(ctx);
  }

  /** Opens the connection; returns a failed outcome, or undefined when connected. */
  private async connect(ctx: ProbeContext): Promise<ProbeOutcome | undefined> {
    try {
      const conn = await ProtocolConnection.connect({
        address: this.spec.address,
        role: "monitor",
        heartbeat: this.spec.heartbeat,
        timeout: Math.min(this.spec.connectTimeout, ctx.deadline),
        clock: this.clock,
        signal: ctx.signal,
        name: "lifeline heartbeat probe",
      });
      if (this.closed) {
        conn.destroy();
        return { status: "fail", kind: "closed", message: "probe closed" };
      }
      this.conn = conn;
      this.broken = false;
      this.nodeId = conn.welcome.nodeId;
      this.rtt = conn.connectTime;
      this.detector.resetArrival();
      conn.on("message", (m) => {
        if (m.type === "heartbeat") {
          this.silentRounds = 0;
          this.detector.heartbeat(this.clock.now());
          this.latest = m;
          this.waiter?.done(this.verdictOf(m));
        } else if (m.type === "pong") {
          this.rtt = this.clock.wall() - m.sentAt;
        }
      });
      conn.on("close", () => {
        if (this.conn === conn) this.conn = undefined;
        this.broken = true;
        // Reconnect at once, within the waiting attempt: a refusal now is conclusive.
        const w = this.waiter;
        if (w && !this.closed) {
          void this.connect(w.ctx).then((failed) => {
            if (failed && this.waiter === w) w.done(failed);
          });
        }
      });
      conn.start();
      return undefined;
    } catch (err) {
      const { kind, errno, message } = describe(err);
      const outcome: ProbeOutcome = { status: "fail", kind, message };
      if (errno) outcome.errno = errno;
      // After a broken connection, a reconnect that is refused — or accepted and reset by a
      // process that is just dying — means the process is gone.
      if (this.broken && (kind === "refused" || kind === "reset")) {
        outcome.conclusive = true;
        outcome.message = `the connection broke and the reconnect was ${kind === "refused" ? "refused" : "reset"}`;
      }
      return outcome;
    }
  }

  /** Waits for the next heartbeat, or for the silence to reach the next suspicion level. */
  private await(ctx: ProbeContext): Promise<ProbeOutcome> {
    return new Promise<ProbeOutcome>((resolve) => {
      let timer: Timer | undefined;
      const w: Waiter = {
        ctx,
        done: (o: ProbeOutcome) => {
          if (this.waiter !== w) return;
          this.waiter = undefined;
          timer?.cancel();
          ctx.signal.removeEventListener("abort", onAbort);
          resolve(o);
        },
      };
      const done = w.done;
      const onAbort = () => done({ status: "fail", kind: "timeout", message: "no heartbeat in time" });
      this.waiter = w;
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      const arm = () => {
        const last = this.detector.lastArrival ?? this.clock.now();
        const phiNow = this.phiNow();
        const level = phiNow >= this.spec.suspectPhi ? this.spec.downPhi : this.spec.suspectPhi;
        let due = last + this.detector.silenceFor(level) + this.stalled(last);
        if (phiNow >= this.spec.downPhi) {
          // Already down and still silent: say so again only every so often (growing up
          // to 5 s), not in a tight loop; after a long silence, start a fresh connection
          // (the old one may be dead for good, e.g. behind a dropped route).
          this.silentRounds++;
          due = this.clock.now() + Math.min(5000, this.spec.heartbeat * 2 ** Math.min(4, this.silentRounds));
          if (this.clock.now() - last > RECONNECT_AFTER_SILENCE && this.conn) {
            const stale = this.conn;
            this.conn = undefined;
            stale.destroy();
          }
        }
        timer = this.clock.timeout(Math.max(1, due - this.clock.now()), () =>
          // Judge after pending I/O: heartbeats that arrived during a stall count first.
          this.clock.immediate(() => {
            if (this.waiter !== w) return;
            const phi = this.phiNow();
            if (phi < level) return arm();
            const silence = this.clock.now() - last - this.stalled(last);
            done({
              status: "fail",
              kind: "timeout",
              message: `no heartbeat for ${formatMs(silence)} (phi ${phi.toFixed(1)})`,
              detail: { phi, silence, nodeId: this.nodeId },
            });
          }),
        );
      };
      if (this.detector.lastArrival === undefined) {
        // Just connected: the node sends its first heartbeat at once.
        timer = this.clock.timeout(ctx.deadline, () =>
          done({ status: "fail", kind: "timeout", message: "no first heartbeat" }),
        );
      } else arm();
      // A round trip now and then gives the latency shown for this target.
      if (this.conn && this.attempts++ % 10 === 0)
        this.conn.send({ type: "ping", id: 0, sentAt: this.clock.wall() });
    });
  }

  private stalled(since: number): number {
    return this.ctx.stalledDuring(since, this.clock.now());
  }

  /** Phi with the monitor's own stalls taken out of the silence. */
  private phiNow(): number {
    const last = this.detector.lastArrival;
    if (last === undefined) return 0;
    return this.detector.phi(this.clock.now() - this.stalled(last));
  }

  private verdictOf(h: Heartbeat): ProbeOutcome {
    const detail = { nodeId: this.nodeId, state: h.state, load: h.load, seq: h.seq };
    const latency = this.rtt ?? 0;
    if (h.state === "draining") {
      const message = h.reason ? `node is draining: ${h.reason}` : "node is draining";
      return { status: "warn", kind: "overloaded", message, latency, detail };
    }
    if (h.state === "degraded") {
      const message = h.reason ? `node reports itself degraded: ${h.reason}` : "node reports itself degraded";
      return { status: "warn", kind: "overloaded", message, latency, detail };
    }
    return { status: "pass", message: `heartbeat ${h.seq}`, latency, detail };
  }

  /** The last heartbeat's load and the node id, for topology views. */
  get last(): { nodeId: string | undefined; heartbeat: Heartbeat | undefined } {
    return { nodeId: this.nodeId, heartbeat: this.latest };
  }

  close(): void {
    this.closed = true;
    this.conn?.destroy();
    this.conn = undefined;
    this.waiter?.done({ status: "fail", kind: "closed", message: "probe closed" });
  }
}

function describe(err: unknown): { kind: ErrorKind; errno: string | undefined; message: string } {
  if (err instanceof TimeoutError) return { kind: "timeout", errno: undefined, message: err.message };
  if (err instanceof ConnectError)
    return { kind: err.kind as ErrorKind, errno: err.errno, message: err.message };
  return { kind: "protocol", errno: undefined, message: err instanceof Error ? err.message : String(err) };
}

export const heartbeatProbe: ProbeType<HeartbeatSpec> = {
  type: "heartbeat",
  schema: heartbeatSchema as unknown as z.ZodType<HeartbeatSpec>,
  passive: true,
  create: (spec, context) => new HeartbeatProbe(spec, context),
  describe: (spec) => `heartbeat ${spec.address} every ${formatMs(spec.heartbeat)}`,
  fromTarget: (target) => {
    const parsed = parseTargetUrl(target, "lifeline");
    if (!parsed) return undefined;
    const spec: Record<string, unknown> = { address: parsed.address };
    const every = parsed.params.get("heartbeat");
    if (every !== null) spec.heartbeat = Number(every);
    return heartbeatSchema.parse(spec);
  },
  /** Suspect at `suspectPhi`, down at `downPhi`: two failed attempts. The engine's timeout
   *  is only a safety net; the probe decides from the heartbeats. */
  settings: () => ({
    fall: 2,
    rise: 1,
    patience: false,
    slowThreshold: 0,
    timeout: { mode: "fixed", initial: 10_000, min: 10_000, max: 10_000 },
  }),
};
