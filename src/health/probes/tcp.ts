import net from "node:net";
import { z } from "zod";
import type { Probe, ProbeContext, ProbeOutcome } from "../types.ts";
import { parseHostPort, parseTargetUrl } from "./address.ts";
import { errorOutcome } from "./common.ts";
import type { ProbeType } from "./registry.ts";

/**
 * `tcp`: the seed's check — open a connection, and that is all — plus an optional exchange:
 * send bytes, then expect a substring (or `/regex/`) in the answer (`PING\r\n` → `+PONG`).
 *
 * A connect-only check closes with a reset (SO_LINGER 0), as HAProxy's checks do, so that
 * checking every second leaves no socket in TIME_WAIT on the monitor (seed drawback 2).
 */
export const tcpSchema = z
  .object({
    /** "host:port" or "[v6]:port". */
    address: z.string().refine((v) => parseHostPort(v) !== undefined, { message: 'expected "host:port"' }),
    /** Bytes to send once connected (YAML escapes such as "\r\n" apply). */
    send: z.string().optional(),
    /** What the answer must contain: a substring, or a regular expression as "/re/flags". */
    expect: z
      .string()
      .optional()
      .refine((v) => v === undefined || toMatcher(v) !== undefined, {
        message: "invalid regular expression",
      }),
    /** How to close: `rst` (no TIME_WAIT; default) or `fin` (polite; for servers that log resets). */
    close: z.enum(["rst", "fin"]).default("rst"),
    /** Most bytes read while waiting for `expect`. Default 65536. */
    maxBytes: z.number().int().positive().default(65_536),
  })
  .strict();

export type TcpSpec = z.infer<typeof tcpSchema>;

export type Matcher = (text: string) => boolean;

/** A substring, or a regular expression written "/re/flags"; undefined when the regex is invalid. */
export function toMatcher(expect: string): Matcher | undefined {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(expect);
  if (!re) return (text) => text.includes(expect);
  try {
    const compiled = new RegExp(re[1]!, re[2]);
    return (text) => {
      compiled.lastIndex = 0; // a /g or /y regex keeps state between calls otherwise
      return compiled.test(text);
    };
  } catch {
    return undefined;
  }
}

function closeSocket(socket: net.Socket, how: "rst" | "fin"): void {
  if (how === "rst" && typeof socket.resetAndDestroy === "function" && !socket.destroyed) {
    socket.resetAndDestroy();
  } else {
    socket.end();
    socket.destroy();
  }
}

/**
 * After a refusal from a target that passed its previous check, connect again this much
 * later, ms; refused again, the verdict is conclusive (down at once, no suspicion): the
 * kernel itself says nothing listens. 100 ms covers a port in the middle of a restart's
 * close and bind without costing detection time.
 */
export const REFUSAL_CONFIRM_DELAY = 100;

export class TcpProbe implements Probe {
  private readonly host: string;
  private readonly port: number;
  private readonly matcher: Matcher | undefined;
  /** The previous attempt passed: a refusal now is news worth confirming at once. */
  private lastPassed = false;

  constructor(private readonly spec: TcpSpec) {
    const hp = parseHostPort(spec.address)!;
    this.host = hp.host;
    this.port = hp.port;
    this.matcher = spec.expect === undefined ? undefined : toMatcher(spec.expect);
  }

  async run(ctx: ProbeContext): Promise<ProbeOutcome> {
    let outcome = await this.attempt(ctx);
    if (outcome.kind === "refused" && this.lastPassed && !ctx.signal.aborted) {
      // Refused right after a pass: a crash (or a restart). Ask again in a moment instead of
      // waiting `fall` intervals; twice refused is conclusive, a pass was a restart's blink.
      await new Promise<void>((resolve) => {
        const t = ctx.clock.timeout(REFUSAL_CONFIRM_DELAY, resolve);
        ctx.signal.addEventListener("abort", () => {
          t.cancel();
          resolve();
        });
      });
      if (!ctx.signal.aborted) {
        const again = await this.attempt(ctx);
        outcome =
          again.kind === "refused"
            ? {
                ...again,
                conclusive: true,
                message: `${again.message} (twice, ${REFUSAL_CONFIRM_DELAY} ms apart)`,
              }
            : again;
      }
    }
    this.lastPassed = outcome.status === "pass";
    return outcome;
  }

  private attempt(ctx: ProbeContext): Promise<ProbeOutcome> {
    const { clock, signal } = ctx;
    const start = clock.now();
    return new Promise<ProbeOutcome>((resolve) => {
      let settled = false;
      let received = "";
      let connectedAfter: number | undefined;
      const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
      const finish = (outcome: ProbeOutcome, how: "rst" | "fin" | "destroy") => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        if (how === "destroy") socket.destroy();
        else closeSocket(socket, how);
        resolve(outcome);
      };
      const onAbort = () =>
        finish(
          {
            status: "fail",
            kind: "timeout",
            message: connectedAfter === undefined ? "connect timed out" : "no expected answer in time",
          },
          // A reset here too: a plain close of an abandoned attempt leaves a TIME_WAIT socket.
          this.spec.close === "rst" ? "rst" : "destroy",
        );
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });

      socket.once("connect", () => {
        connectedAfter = clock.now() - start;
        if (this.spec.send === undefined && this.matcher === undefined) {
          finish(
            {
              status: "pass",
              message: "connected",
              latency: connectedAfter,
              detail: { connect: connectedAfter },
            },
            this.spec.close,
          );
          return;
        }
        if (this.spec.send !== undefined) socket.write(this.spec.send, "latin1");
        if (this.matcher === undefined) {
          finish(
            { status: "pass", message: "connected and sent", detail: { connect: connectedAfter } },
            this.spec.close,
          );
        }
      });
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1");
        if (this.matcher?.(received)) {
          finish(
            { status: "pass", message: "expected answer received", detail: { connect: connectedAfter } },
            this.spec.close,
          );
        } else if (received.length >= this.spec.maxBytes) {
          finish(
            {
              status: "fail",
              kind: "protocol",
              message: `expected ${this.spec.expect} not found in ${received.length} bytes`,
            },
            "rst",
          );
        }
      });
      socket.once("end", () => {
        finish(
          {
            status: "fail",
            kind: "closed",
            message:
              received.length > 0
                ? `closed by peer; answer did not contain ${this.spec.expect}: ${JSON.stringify(received.slice(0, 80))}`
                : "closed by peer before answering",
          },
          "destroy",
        );
      });
      socket.on("error", (err) => finish(errorOutcome(err), "destroy"));
    });
  }
}

function fromTarget(target: string): TcpSpec | undefined {
  if (parseHostPort(target)) return tcpSchema.parse({ address: target });
  const parsed = parseTargetUrl(target, "tcp");
  if (!parsed) return undefined;
  const spec: Record<string, unknown> = { address: parsed.address };
  const send = parsed.params.get("send");
  const expect = parsed.params.get("expect");
  if (send !== null) spec.send = send;
  if (expect !== null) spec.expect = expect;
  return tcpSchema.parse(spec);
}

export const tcpProbe: ProbeType<TcpSpec> = {
  type: "tcp",
  schema: tcpSchema,
  create: (spec) => new TcpProbe(spec),
  describe: (spec) =>
    `tcp ${spec.address}${spec.send !== undefined || spec.expect !== undefined ? " send/expect" : ""}`,
  fromTarget,
};
