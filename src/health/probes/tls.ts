import net from "node:net";
import tls from "node:tls";
import { z } from "zod";
import type { Probe, ProbeContext, ProbeOutcome } from "../types.ts";
import { parseHostPort, parseTargetUrl } from "./address.ts";
import { caFile, DAY_MS, errorOutcome, readCa, sniName } from "./common.ts";
import type { ProbeType } from "./registry.ts";

/**
 * `tls`: connect, complete a TLS handshake, verify the certificate and watch its expiry.
 * A certificate that expires within `warnDays` makes the check a warning (the target shows
 * `degraded`) long before clients start failing; an untrusted, misnamed or expired one is a
 * failure with kind `tls`.
 *
 * The TCP connection is opened separately and wrapped, so that it can be closed with a reset
 * (SO_LINGER 0) like the `tcp` probe's: no TIME_WAIT left on the monitor per check.
 */
export const tlsSchema = z
  .object({
    /** "host:port" or "[v6]:port". */
    address: z.string().refine((v) => parseHostPort(v) !== undefined, { message: 'expected "host:port"' }),
    /** Name sent as SNI and checked against the certificate. Default the host (no SNI for an
     *  IP address, whose certificate must then name the IP). */
    servername: z.string().min(1).optional(),
    /** Skip chain and name verification (self-signed certificates). Default false. Expiry
     *  is still checked: an expired certificate fails and a near one warns either way. */
    insecure: z.boolean().default(false),
    /** PEM file of CAs to trust instead of the system's (a private CA). Default none. */
    ca: caFile.optional(),
    /** Days before expiry from which the check warns, 0 = never. Default 14: long enough to
     *  renew by hand; a larger value warns earlier and longer. */
    warnDays: z.number().min(0).default(14),
    /** How to close: `rst` (default: no TIME_WAIT on the monitor) or `fin` (close_notify and
     *  FIN). Under TLS 1.3 the client is done before the server has read its Finished, so a
     *  reset may reach the server as a failed handshake: use `fin` for servers that log those. */
    close: z.enum(["rst", "fin"]).default("rst"),
  })
  .strict();

export type TlsSpec = z.infer<typeof tlsSchema>;

/** "CN=example.com, O=Example": a certificate name as people read it. */
function formatName(name: Record<string, string | string[]> | undefined): string {
  if (!name) return "";
  return Object.entries(name)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`)
    .join(", ");
}

/** "3 days", "1 day", "5 hours": a span for messages, rounded down. */
function span(ms: number): string {
  const days = Math.floor(Math.abs(ms) / DAY_MS);
  if (days >= 1) return `${days} day${days === 1 ? "" : "s"}`;
  const hours = Math.floor(Math.abs(ms) / 3_600_000);
  return `${hours} hour${hours === 1 ? "" : "s"}`;
}

export class TlsProbe implements Probe {
  private readonly host: string;
  private readonly port: number;

  constructor(private readonly spec: TlsSpec) {
    const hp = parseHostPort(spec.address)!;
    this.host = hp.host;
    this.port = hp.port;
  }

  async run(ctx: ProbeContext): Promise<ProbeOutcome> {
    const ca = await readCa(this.spec.ca);
    if (ca !== undefined && !Buffer.isBuffer(ca)) return ca;
    return this.handshake(ctx, ca);
  }

  private handshake(ctx: ProbeContext, ca: Buffer | undefined): Promise<ProbeOutcome> {
    const { clock, signal } = ctx;
    const start = clock.now();
    return new Promise<ProbeOutcome>((resolve) => {
      let settled = false;
      let connectedAfter: number | undefined;
      const raw = net.connect({ host: this.host, port: this.port, noDelay: true });
      const options: tls.ConnectionOptions = {
        socket: raw,
        host: this.host, // the name checked against the certificate when there is no SNI
        rejectUnauthorized: !this.spec.insecure,
      };
      const servername = sniName(this.host, this.spec.servername);
      if (servername !== undefined) options.servername = servername;
      if (ca) options.ca = ca;
      const socket = tls.connect(options);

      const finish = (outcome: ProbeOutcome, how: "rst" | "fin" | "destroy") => {
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        if (how === "rst" && !raw.destroyed && !raw.connecting) raw.resetAndDestroy();
        else if (how === "fin") {
          socket.end();
          socket.setTimeout(1000, () => socket.destroy());
        } else {
          // Still connecting or failed: resetAndDestroy would wait for the connection.
          socket.destroy();
          raw.destroy();
        }
        resolve(outcome);
      };
      const onAbort = () =>
        finish(
          {
            status: "fail",
            kind: "timeout",
            message: connectedAfter === undefined ? "connect timed out" : "TLS handshake timed out",
          },
          "destroy",
        );
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });

      raw.once("connect", () => {
        connectedAfter = clock.now() - start;
      });
      const onError = (err: Error) =>
        finish(errorOutcome(err, connectedAfter === undefined ? undefined : "tls"), "destroy");
      raw.on("error", onError);
      socket.on("error", onError);
      socket.once("secureConnect", () => {
        const latency = clock.now() - start;
        finish({ ...this.judge(socket, clock.wall(), connectedAfter), latency }, this.spec.close);
      });
    });
  }

  /** The outcome of a completed handshake, from the peer certificate's dates. */
  private judge(socket: tls.TLSSocket, now: number, connect: number | undefined): ProbeOutcome {
    const cert = socket.getPeerCertificate();
    if (!cert?.valid_to) {
      return { status: "fail", kind: "tls", message: "handshake ok, but no certificate was presented" };
    }
    const validTo = Date.parse(cert.valid_to);
    const validFrom = Date.parse(cert.valid_from);
    const left = validTo - now;
    const until = new Date(validTo).toISOString();
    const detail: Record<string, unknown> = {
      subject: formatName(cert.subject as unknown as Record<string, string | string[]>),
      issuer: formatName(cert.issuer as unknown as Record<string, string | string[]>),
      validFrom: new Date(validFrom).toISOString(),
      validTo: until,
      daysLeft: Math.floor(left / DAY_MS),
      protocol: socket.getProtocol(),
      cipher: socket.getCipher()?.name,
      fingerprint256: cert.fingerprint256,
      connect,
    };
    if (!socket.authorized && socket.authorizationError) {
      // Only reachable with `insecure`: what verification would have said.
      detail.authorizationError = String(socket.authorizationError);
    }
    if (left <= 0) {
      return {
        status: "fail",
        kind: "tls",
        message: `certificate expired ${span(left)} ago (${until})`,
        detail,
      };
    }
    if (validFrom > now) {
      const from = new Date(validFrom).toISOString();
      return { status: "fail", kind: "tls", message: `certificate not valid before ${from}`, detail };
    }
    if (left < this.spec.warnDays * DAY_MS) {
      return {
        status: "warn",
        kind: "tls",
        message: `certificate expires in ${span(left)} (${until})`,
        detail,
      };
    }
    return { status: "pass", message: `handshake ok, certificate valid for ${span(left)}`, detail };
  }
}

function fromTarget(target: string): TlsSpec | undefined {
  const parsed = parseTargetUrl(target, "tls", 443);
  if (!parsed) return undefined;
  const spec: Record<string, unknown> = { address: parsed.address };
  const servername = parsed.params.get("servername");
  if (servername !== null) spec.servername = servername;
  if (parsed.params.get("insecure") === "true") spec.insecure = true;
  return tlsSchema.parse(spec);
}

export const tlsProbe: ProbeType<TlsSpec> = {
  type: "tls",
  schema: tlsSchema,
  create: (spec) => new TlsProbe(spec),
  describe: (spec) =>
    `tls ${spec.address}${spec.servername !== undefined ? ` (${spec.servername})` : ""}${spec.insecure ? " insecure" : ""}`,
  fromTarget,
};
