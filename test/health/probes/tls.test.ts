import net from "node:net";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/resolve.ts";
import { ConfigError } from "../../../src/errors.ts";
import { defaultRegistry } from "../../../src/health/probes/index.ts";
import { TlsProbe, tlsProbe, tlsSchema } from "../../../src/health/probes/tls.ts";
import type { ProbeOutcome } from "../../../src/health/types.ts";
import { type CertFiles, closedPort, listen, makeCert, runProbe, until } from "./helpers.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function probe(spec: Record<string, unknown>, deadline?: number): Promise<ProbeOutcome> {
  return runProbe(new TlsProbe(tlsSchema.parse(spec)), deadline);
}

/** Records how the server saw each client leave: "end" (close_notify and FIN), "reset" (RST,
 *  which under TLS 1.3 may come before the server has read the client's Finished, so it
 *  reaches the server as a failed handshake) or another error code. */
async function tlsServer(cert: CertFiles, ends: string[] = []): Promise<string> {
  const left = (err: NodeJS.ErrnoException) =>
    ends.push(err.code === "ECONNRESET" ? "reset" : String(err.code));
  const server = tls.createServer({ key: cert.key, cert: cert.cert }, (s) => {
    s.on("end", () => ends.push("end"));
    s.on("error", left);
  });
  server.on("tlsClientError", left);
  const s = await listen(server);
  cleanups.push(s.close);
  return `127.0.0.1:${s.port}`;
}

describe("tls probe over real sockets", () => {
  let short: CertFiles; // expires in 3 days
  let long: CertFiles; // 30 days
  let expired: CertFiles;
  beforeAll(() => {
    short = makeCert({ days: 3 });
    long = makeCert({ days: 30 });
    expired = makeCert({ expired: true });
  });
  afterAll(() => {
    for (const c of [short, long, expired]) c?.remove();
  });

  it("passes a trusted certificate and reports what it saw", async () => {
    const address = await tlsServer(long);
    const o = await probe({ address, ca: long.certFile });
    expect(o.status).toBe("pass");
    expect(o.message).toMatch(/^handshake ok, certificate valid for (29|30) days$/);
    expect(o.latency).toBeTypeOf("number");
    expect(o.detail).toMatchObject({ subject: "CN=localhost", issuer: "CN=localhost" });
    expect(o.detail?.daysLeft).toBeGreaterThanOrEqual(29);
    expect(o.detail?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(o.detail?.cipher).toBeTypeOf("string");
    expect(Date.parse(String(o.detail?.validTo))).toBeGreaterThan(Date.now());
    expect(o.detail?.authorizationError).toBeUndefined();
  });

  it("warns when the certificate expires within warnDays", async () => {
    const address = await tlsServer(short);
    const o = await probe({ address, ca: short.certFile });
    expect(o).toMatchObject({ status: "warn", kind: "tls" });
    expect(o.message).toMatch(/^certificate expires in [23] days \(\d{4}-\d\d-\d\dT.*Z\)$/);
    expect((await probe({ address, ca: short.certFile, warnDays: 1 })).status).toBe("pass");
    expect((await probe({ address, ca: short.certFile, warnDays: 0 })).status).toBe("pass");
  });

  it("an untrusted certificate fails unless insecure, which still records why", async () => {
    const address = await tlsServer(long);
    expect(await probe({ address })).toMatchObject({
      status: "fail",
      kind: "tls",
      errno: "DEPTH_ZERO_SELF_SIGNED_CERT",
    });
    const o = await probe({ address, insecure: true });
    expect(o.status).toBe("pass");
    expect(o.detail?.authorizationError).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
  });

  it("an expired certificate fails, with or without verification", async () => {
    const address = await tlsServer(expired);
    expect(await probe({ address, ca: expired.certFile })).toMatchObject({
      status: "fail",
      kind: "tls",
      errno: "CERT_HAS_EXPIRED",
    });
    const o = await probe({ address, insecure: true });
    expect(o).toMatchObject({ status: "fail", kind: "tls" });
    expect(o.message).toMatch(/^certificate expired \d+ days ago \(2020-01-02T00:00:00\.000Z\)$/);
  });

  it("checks the name: the host, or servername (sent as SNI)", async () => {
    const address = await tlsServer(long);
    const port = address.split(":")[1];
    expect((await probe({ address: `localhost:${port}`, ca: long.certFile })).status).toBe("pass");
    expect(await probe({ address, ca: long.certFile, servername: "example.com" })).toMatchObject({
      status: "fail",
      kind: "tls",
      errno: "ERR_TLS_CERT_ALTNAME_INVALID",
    });
  });

  it("a plain-text server fails as tls; a closed port is refused", async () => {
    const s = await listen(net.createServer((sock) => sock.end("HTTP/1.1 400 Bad Request\r\n\r\n")));
    cleanups.push(s.close);
    expect(await probe({ address: `127.0.0.1:${s.port}`, insecure: true })).toMatchObject({
      status: "fail",
      kind: "tls",
    });
    expect(await probe({ address: `127.0.0.1:${await closedPort()}` })).toMatchObject({
      status: "fail",
      kind: "refused",
      errno: "ECONNREFUSED",
    });
  });

  it("a server that accepts but never answers the handshake times out", async () => {
    let gone = false;
    const s = await listen(
      net.createServer((sock) => {
        sock.resume(); // read, so that the client's FIN is seen
        sock.on("close", () => {
          gone = true;
        });
      }),
    );
    cleanups.push(s.close);
    const o = await probe({ address: `127.0.0.1:${s.port}`, insecure: true }, 300);
    expect(o).toMatchObject({ status: "fail", kind: "timeout", message: "TLS handshake timed out" });
    await until(() => gone, 5000, "the connection to be dropped");
  });

  it("closes with a reset by default, with close_notify and FIN when asked", async () => {
    const ends: string[] = [];
    const address = await tlsServer(long, ends);
    expect((await probe({ address, ca: long.certFile })).status).toBe("pass");
    await until(() => ends.length === 1, 5000, "the server to see the close");
    expect((await probe({ address, ca: long.certFile, close: "fin" })).status).toBe("pass");
    await until(() => ends.length === 2, 5000, "the server to see the close");
    expect(ends).toEqual(["reset", "end"]);
  });
});

describe("tls configuration", () => {
  function issues(check: Record<string, unknown>) {
    try {
      resolveConfig({ targets: [{ id: "t", checks: [{ type: "tls", ...check }] }] }, defaultRegistry());
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
      throw err;
    }
    return [];
  }

  it("names the field in every error", () => {
    expect(issues({ address: "nope" })).toEqual(['targets[0].checks[0].address: expected "host:port"']);
    expect(issues({ address: "h:443", warnDays: -1 }).join()).toContain("checks[0].warnDays");
    expect(issues({ address: "h:443", close: "slam" }).join()).toContain("checks[0].close");
    expect(issues({ address: "h:443", insecure: "yes" }).join()).toContain("checks[0].insecure");
    expect(issues({ address: "h:443", ca: "/nonexistent.pem" })).toEqual([
      "targets[0].checks[0].ca: CA file not found",
    ]);
    expect(issues({ address: "h:443" })).toEqual([]);
  });

  it("takes tls:// targets", () => {
    expect(defaultRegistry().parseTarget("tls://example.com:8443")).toEqual({
      type: "tls",
      spec: { address: "example.com:8443", insecure: false, warnDays: 14, close: "rst" },
    });
    expect(tlsProbe.fromTarget!("tls://example.com")?.address).toBe("example.com:443");
    expect(tlsProbe.fromTarget!("tls://[::1]:443?servername=a.example&insecure=true")).toMatchObject({
      address: "[::1]:443",
      servername: "a.example",
      insecure: true,
    });
    expect(tlsProbe.fromTarget!("example.com:443")).toBeUndefined();
    expect(tlsProbe.fromTarget!("https://example.com")).toBeUndefined();
  });
});
