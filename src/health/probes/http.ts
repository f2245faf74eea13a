import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { z } from "zod";
import type { Probe, ProbeContext, ProbeOutcome } from "../types.ts";
import { caFile, errorOutcome, excerpt, readCa } from "./common.ts";
import type { ProbeType } from "./registry.ts";
import { type Matcher, toMatcher } from "./tcp.ts";

/**
 * `http` (and https): one request on a fresh connection per check (no agent, `Connection:
 * close`), so a refused or reset connection shows its real error code instead of being
 * hidden behind a pooled socket, and the phases (connect, TLS, first byte, total) are
 * measured for each attempt. Status rules follow Consul: an expected status passes, 429 is a
 * warning (overloaded), 503 a failure (overloaded), anything else a failure (protocol).
 */

/** "200", "200-399": one status or an inclusive range, as [from, to]. */
function parseStatus(item: string | number): [number, number] | undefined {
  const m = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(String(item));
  if (!m) return undefined;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  return from >= 100 && to <= 599 && from <= to ? [from, to] : undefined;
}

const statusList = z
  .union([z.number(), z.string(), z.array(z.union([z.number(), z.string()])).min(1)])
  .transform((value, ctx) => {
    const items = Array.isArray(value) ? value : String(value).split(",");
    const out: string[] = [];
    for (const item of items) {
      const range = parseStatus(item);
      if (!range) {
        ctx.addIssue({
          code: "custom",
          message: `invalid status ${JSON.stringify(item)} (e.g. 200, "200-399", [200, 204])`,
        });
        return z.NEVER;
      }
      out.push(range[0] === range[1] ? String(range[0]) : `${range[0]}-${range[1]}`);
    }
    return out;
  });

export const httpSchema = z
  .object({
    /** The URL to request, http:// or https://. */
    url: z.string().refine(
      (v) => {
        try {
          const u = new URL(v);
          return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
        } catch {
          return false;
        }
      },
      { message: "expected an http:// or https:// URL" },
    ),
    /** Request method. Default GET (HEAD is cheaper but some servers answer it differently). */
    method: z
      .string()
      .regex(/^[A-Za-z]+$/, { message: "expected a method name such as GET or HEAD" })
      .transform((m) => m.toUpperCase())
      .default("GET"),
    /** Extra request headers. `Connection: close` is always sent. */
    headers: z
      .record(z.string(), z.string())
      .default({})
      .superRefine((headers, ctx) => {
        for (const [name, value] of Object.entries(headers)) {
          try {
            http.validateHeaderName(name);
            http.validateHeaderValue(name, value);
          } catch (err) {
            ctx.addIssue({ code: "custom", path: [name], message: (err as Error).message });
          }
        }
      }),
    /** Request body, sent as is with a Content-Length. Default none. */
    body: z.string().optional(),
    /** Statuses that pass: codes and inclusive ranges, [200, "300-399"] or "200-299,304".
     *  Default 200-399 (Consul's 2xx, plus redirects, which are not followed). */
    expectStatus: statusList.default(["200-399"]),
    /** What the body must contain: a substring, or a regular expression as "/re/flags".
     *  Default none (the body is still read, up to `maxBodyBytes`). */
    expectBody: z
      .string()
      .optional()
      .refine((v) => v === undefined || toMatcher(v) !== undefined, {
        message: "invalid regular expression",
      }),
    /** Most body bytes read, then the connection is dropped. Default 65536: a larger limit
     *  lets `expectBody` look further and costs memory and transfer on every check. */
    maxBodyBytes: z.number().int().positive().default(65_536),
    /** Skip certificate verification (self-signed test servers). Default false: an
     *  untrusted, expired or misnamed certificate fails the check with kind `tls`. */
    insecure: z.boolean().default(false),
    /** PEM file of CAs to trust instead of the system's (a private CA). Default none. */
    ca: caFile.optional(),
    /** TLS server name (SNI and certificate name check). Default the URL's host. */
    servername: z.string().min(1).optional(),
  })
  .strict();

export type HttpSpec = z.infer<typeof httpSchema>;

type Phase = "connect" | "tls" | "response" | "body";
const WAITING_FOR: Record<Phase, string> = {
  connect: "connecting",
  tls: "in the TLS handshake",
  response: "waiting for the response",
  body: "reading the body",
};

export class HttpProbe implements Probe {
  private readonly url: URL;
  private readonly ranges: Array<[number, number]>;
  private readonly matcher: Matcher | undefined;

  constructor(private readonly spec: HttpSpec) {
    this.url = new URL(spec.url);
    this.ranges = spec.expectStatus.map((s) => parseStatus(s)!);
    this.matcher = spec.expectBody === undefined ? undefined : toMatcher(spec.expectBody);
  }

  async run(ctx: ProbeContext): Promise<ProbeOutcome> {
    const ca = await readCa(this.spec.ca);
    if (ca !== undefined && !Buffer.isBuffer(ca)) return ca;
    return this.request(ctx, ca);
  }

  private request(ctx: ProbeContext, ca: Buffer | undefined): Promise<ProbeOutcome> {
    const { clock, signal } = ctx;
    const start = clock.now();
    const elapsed = () => clock.now() - start;
    const secure = this.url.protocol === "https:";
    const timing: Record<string, number> = {};
    let phase: Phase = "connect";
    return new Promise<ProbeOutcome>((resolve) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      const finish = (outcome: ProbeOutcome) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        req?.destroy();
        resolve({ ...outcome, detail: { ...timing, ...outcome.detail } });
      };
      const onAbort = () =>
        finish({ status: "fail", kind: "timeout", message: `timed out ${WAITING_FOR[phase]}` });
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });

      const headers: Record<string, string> = { "User-Agent": "lifeline-health-check", ...this.spec.headers };
      headers.Connection = "close";
      if (this.spec.body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(this.spec.body));
      const options: https.RequestOptions = { method: this.spec.method, headers, agent: false };
      if (secure) {
        options.rejectUnauthorized = !this.spec.insecure;
        if (ca) options.ca = ca;
        if (this.spec.servername !== undefined) options.servername = this.spec.servername;
      }
      try {
        req = (secure ? https : http).request(this.url, options);
      } catch (err) {
        return finish(errorOutcome(err));
      }
      req.once("socket", (socket: Socket) => {
        socket.once("lookup", () => {
          timing.dns = elapsed();
        });
        socket.once("connect", () => {
          timing.connect = elapsed();
          phase = secure ? "tls" : "response";
        });
        socket.once("secureConnect", () => {
          timing.tls = elapsed();
          phase = "response";
        });
      });
      req.once("response", (res) => {
        timing.firstByte = elapsed();
        phase = "body";
        const chunks: Buffer[] = [];
        let bytes = 0;
        const done = (truncated: boolean) => {
          if (settled) return;
          timing.total = elapsed();
          const body = Buffer.concat(chunks).toString("utf8");
          finish({ ...this.judge(res, body, truncated), latency: timing.firstByte });
        };
        res.on("data", (chunk: Buffer) => {
          if (settled) return;
          const room = this.spec.maxBodyBytes - bytes;
          chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
          bytes += Math.min(room, chunk.length);
          if (bytes >= this.spec.maxBodyBytes) done(true);
        });
        res.once("end", () => done(false));
        res.on("error", (err) => finish(errorOutcome(err)));
      });
      req.on("error", (err) => finish(errorOutcome(err, phase === "tls" ? "tls" : undefined)));
      req.end(this.spec.body);
    });
  }

  /** The outcome for a complete (or truncated) response. */
  private judge(res: http.IncomingMessage, body: string, truncated: boolean): ProbeOutcome {
    const code = res.statusCode ?? 0;
    const reason = res.statusMessage || http.STATUS_CODES[code] || "";
    const line = `HTTP ${code}${reason ? ` ${reason}` : ""}`;
    const detail: Record<string, unknown> = { status: code, bytes: Buffer.byteLength(body), truncated };
    const retryAfter = res.headers["retry-after"];
    if (retryAfter !== undefined) detail.retryAfter = retryAfter;
    if (!this.ranges.some(([from, to]) => code >= from && code <= to)) {
      const message = `${line} (expected ${this.spec.expectStatus.join(", ")})`;
      if (body) detail.body = excerpt(body, 200);
      if (code === 429) return { status: "warn", kind: "overloaded", message, detail };
      if (code === 503) return { status: "fail", kind: "overloaded", message, detail };
      return { status: "fail", kind: "protocol", message, detail };
    }
    if (this.matcher && !this.matcher(body)) {
      const within = truncated ? ` in the first ${body.length} characters` : "";
      return {
        status: "fail",
        kind: "protocol",
        message: `${line}, but the body does not contain ${this.spec.expectBody}${within}: ${excerpt(body)}`,
        detail,
      };
    }
    return { status: "pass", message: line, detail };
  }
}

function fromTarget(target: string): HttpSpec | undefined {
  if (!/^https?:\/\//i.test(target)) return undefined;
  return httpSchema.parse({ url: target });
}

export const httpProbe: ProbeType<HttpSpec> = {
  type: "http",
  schema: httpSchema,
  create: (spec) => new HttpProbe(spec),
  describe: (spec) => `http ${spec.method} ${spec.url}${spec.expectBody !== undefined ? " expect body" : ""}`,
  fromTarget,
};
