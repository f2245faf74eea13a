import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/resolve.ts";
import { ConfigError } from "../../../src/errors.ts";
import { HttpProbe, httpProbe, httpSchema } from "../../../src/health/probes/http.ts";
import { defaultRegistry } from "../../../src/health/probes/index.ts";
import type { ProbeOutcome } from "../../../src/health/types.ts";
import { type CertFiles, closedPort, listen, makeCert, runProbe, until } from "./helpers.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function probe(spec: Record<string, unknown>, deadline?: number): Promise<ProbeOutcome> {
  return runProbe(new HttpProbe(httpSchema.parse(spec)), deadline);
}

/** An http server on 127.0.0.1 answering with `handler`; returns its base URL. */
async function server(handler: http.RequestListener): Promise<string> {
  const s = await listen(http.createServer(handler));
  cleanups.push(s.close);
  return `http://127.0.0.1:${s.port}`;
}

function answer(status: number, body = "", headers: http.OutgoingHttpHeaders = {}): http.RequestListener {
  return (_req, res) => {
    res.writeHead(status, headers);
    res.end(body);
  };
}

describe("http probe over real sockets", () => {
  it("passes on 200 and measures the phases", async () => {
    const url = await server(answer(200, "ok"));
    const o = await probe({ url: `${url}/health` });
    expect(o).toMatchObject({ status: "pass", message: "HTTP 200 OK" });
    expect(o.detail).toMatchObject({ status: 200, bytes: 2, truncated: false });
    for (const phase of ["connect", "firstByte", "total"]) expect(o.detail?.[phase]).toBeTypeOf("number");
    expect(o.detail?.tls).toBeUndefined();
    expect(o.latency).toBe(o.detail?.firstByte);
  });

  it("an unexpected status fails with the status in the message", async () => {
    const url = await server(answer(500, "boom"));
    const o = await probe({ url });
    expect(o).toMatchObject({
      status: "fail",
      kind: "protocol",
      message: "HTTP 500 Internal Server Error (expected 200-399)",
    });
    expect(o.detail).toMatchObject({ status: 500, body: '"boom"' });
  });

  it("429 warns and 503 fails, both as overloaded, unless expected", async () => {
    const url429 = await server(answer(429, "", { "Retry-After": "5" }));
    const url503 = await server(answer(503));
    expect(await probe({ url: url429 })).toMatchObject({ status: "warn", kind: "overloaded" });
    expect((await probe({ url: url429 })).detail?.retryAfter).toBe("5");
    const o = await probe({ url: url503 });
    expect(o).toMatchObject({ status: "fail", kind: "overloaded" });
    expect(o.message).toContain("HTTP 503 Service Unavailable");
    expect(await probe({ url: url503, expectStatus: [200, 503] })).toMatchObject({ status: "pass" });
  });

  it("expectStatus takes codes, ranges and comma lists", async () => {
    const url = await server(answer(204));
    expect(await probe({ url, expectStatus: "200-203,205" })).toMatchObject({
      status: "fail",
      message: "HTTP 204 No Content (expected 200-203, 205)",
    });
    expect(await probe({ url, expectStatus: [200, "204-204"] })).toMatchObject({ status: "pass" });
    expect(await probe({ url, expectStatus: 204 })).toMatchObject({ status: "pass" });
  });

  it("expectBody matches a substring or a /regex/, and a mismatch quotes the body", async () => {
    const url = await server(answer(200, '{"status":"UP","db":"ok"}'));
    expect((await probe({ url, expectBody: '"UP"' })).status).toBe("pass");
    expect((await probe({ url, expectBody: "/status.:.up/i" })).status).toBe("pass");
    const o = await probe({ url, expectBody: '"DOWN"' });
    expect(o).toMatchObject({ status: "fail", kind: "protocol" });
    expect(o.message).toContain("HTTP 200 OK");
    expect(o.message).toContain('\\"db\\":\\"ok\\"');
  });

  it("a /g regex matches on every attempt (no state kept between checks)", async () => {
    const url = await server(answer(200, "alive"));
    const p = new HttpProbe(httpSchema.parse({ url, expectBody: "/alive/g" }));
    for (let i = 0; i < 3; i++) expect((await runProbe(p)).status).toBe("pass");
  });

  it("reads at most maxBodyBytes", async () => {
    const url = await server(answer(200, `${"x".repeat(100_000)}MARKER`));
    const o = await probe({ url, maxBodyBytes: 1000, expectBody: "MARKER" });
    expect(o).toMatchObject({ status: "fail", kind: "protocol" });
    expect(o.message).toContain("in the first 1000 characters");
    expect(o.detail).toMatchObject({ bytes: 1000, truncated: true });
    expect((await probe({ url, expectBody: "xxx", maxBodyBytes: 10 })).status).toBe("pass");
  });

  it("sends the method, headers and body on a fresh connection that it closes", async () => {
    const seen: Array<{ method?: string; headers: http.IncomingHttpHeaders; body: string; port?: number }> =
      [];
    const url = await server((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        seen.push({ method: req.method, headers: req.headers, body, port: req.socket.remotePort });
        res.end("ok");
      });
    });
    const spec = { url, method: "post", headers: { "X-Check": "lifeline" }, body: "ping" };
    expect((await probe(spec)).status).toBe("pass");
    expect((await probe(spec)).status).toBe("pass");
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ method: "POST", body: "ping" });
    expect(seen[0]!.headers).toMatchObject({
      "x-check": "lifeline",
      connection: "close",
      "content-length": "4",
    });
    expect(seen[0]!.port).not.toBe(seen[1]!.port);
  });

  it("a closed port is refused, with the errno", async () => {
    const o = await probe({ url: `http://127.0.0.1:${await closedPort()}/` });
    expect(o).toMatchObject({ status: "fail", kind: "refused", errno: "ECONNREFUSED" });
  });

  it("a connection reset before the answer is `reset`", async () => {
    const url = await server((req) => req.socket.resetAndDestroy());
    expect(await probe({ url })).toMatchObject({ status: "fail", kind: "reset", errno: "ECONNRESET" });
  });

  it("a garbage answer is `protocol` with the parser's code", async () => {
    const s = await listen(net.createServer((sock) => sock.end("SSH-2.0-OpenSSH\r\n")));
    cleanups.push(s.close);
    const o = await probe({ url: `http://127.0.0.1:${s.port}/` });
    expect(o).toMatchObject({ status: "fail", kind: "protocol" });
    expect(o.errno).toMatch(/^HPE_/);
  });

  it("on abort it drops the connection and reports a timeout in the phase it was in", async () => {
    let closed = false;
    const url = await server((req) => {
      req.socket.on("close", () => {
        closed = true;
      });
    });
    const o = await probe({ url }, 300);
    expect(o).toMatchObject({
      status: "fail",
      kind: "timeout",
      message: "timed out waiting for the response",
    });
    expect(o.detail?.connect).toBeTypeOf("number");
    await until(() => closed, 5000, "the server to see the connection closed");
  });
});

describe("https", () => {
  let cert: CertFiles;
  let url: string;
  beforeAll(async () => {
    cert = makeCert({ days: 30 });
    const s = await listen(https.createServer({ key: cert.key, cert: cert.cert }, answer(200, "secure")));
    url = `https://127.0.0.1:${s.port}/`;
    return s.close;
  });
  afterAll(() => cert.remove());

  it("an untrusted certificate fails as tls", async () => {
    expect(await probe({ url })).toMatchObject({
      status: "fail",
      kind: "tls",
      errno: "DEPTH_ZERO_SELF_SIGNED_CERT",
    });
  });

  it("passes with insecure, or with the certificate as ca, and times the handshake", async () => {
    const o = await probe({ url, insecure: true });
    expect(o).toMatchObject({ status: "pass", message: "HTTP 200 OK" });
    expect(o.detail?.tls).toBeTypeOf("number");
    expect((await probe({ url, ca: cert.certFile })).status).toBe("pass");
    expect((await probe({ url: url.replace("127.0.0.1", "localhost"), ca: cert.certFile })).status).toBe(
      "pass",
    );
  });

  it("a name the certificate does not carry fails as tls", async () => {
    const o = await probe({ url, ca: cert.certFile, servername: "example.com" });
    expect(o).toMatchObject({ status: "fail", kind: "tls", errno: "ERR_TLS_CERT_ALTNAME_INVALID" });
  });

  it("https to a plain-text server fails as tls", async () => {
    const plain = await server(answer(200));
    const o = await probe({ url: plain.replace("http:", "https:"), insecure: true });
    expect(o).toMatchObject({ status: "fail", kind: "tls" });
  });

  it("a CA file that disappeared fails the attempt, naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeline-ca-"));
    const file = join(dir, "ca.pem");
    writeFileSync(file, cert.cert);
    const p = new HttpProbe(httpSchema.parse({ url, ca: file }));
    rmSync(dir, { recursive: true });
    const o = await runProbe(p);
    expect(o).toMatchObject({ status: "fail", kind: "tls", errno: "ENOENT" });
    expect(o.message).toContain(`cannot read CA file ${file}`);
  });
});

describe("http configuration", () => {
  function issues(check: Record<string, unknown>) {
    try {
      resolveConfig({ targets: [{ id: "t", checks: [{ type: "http", ...check }] }] }, defaultRegistry());
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
      throw err;
    }
    return [];
  }

  it("names the field in every error", () => {
    expect(issues({ url: "ftp://x" })).toEqual([
      "targets[0].checks[0].url: expected an http:// or https:// URL",
    ]);
    expect(issues({}).join()).toContain("targets[0].checks[0].url");
    expect(issues({ url: "http://x", expectStatus: "2xx" }).join()).toMatch(
      /checks\[0\]\.expectStatus: invalid status/,
    );
    expect(issues({ url: "http://x", expectStatus: ["200-100"] }).join()).toContain("checks[0].expectStatus");
    expect(issues({ url: "http://x", expectBody: "/(/" }).join()).toContain(
      "checks[0].expectBody: invalid regular",
    );
    expect(issues({ url: "http://x", headers: { "Bad Name": "v" } }).join()).toContain(
      "checks[0].headers.Bad Name",
    );
    expect(issues({ url: "http://x", method: "GET /" }).join()).toContain("checks[0].method");
    expect(issues({ url: "http://x", maxBodyBytes: 0 }).join()).toContain("checks[0].maxBodyBytes");
    expect(issues({ url: "https://x", ca: "/nonexistent/ca.pem" })).toEqual([
      "targets[0].checks[0].ca: CA file not found",
    ]);
    expect(issues({ url: "http://x", bogus: 1 }).join()).toContain("bogus");
  });

  it("fills in defaults", () => {
    expect(httpSchema.parse({ url: "http://x/" })).toEqual({
      url: "http://x/",
      method: "GET",
      headers: {},
      expectStatus: ["200-399"],
      maxBodyBytes: 65_536,
      insecure: false,
    });
  });

  it("takes http:// and https:// targets", () => {
    const registry = defaultRegistry();
    expect(registry.parseTarget("https://example.com/health")).toMatchObject({
      type: "http",
      spec: { url: "https://example.com/health", method: "GET" },
    });
    expect(httpProbe.fromTarget!("http://10.0.0.1:8080/")?.url).toBe("http://10.0.0.1:8080/");
    expect(httpProbe.fromTarget!("tcp://10.0.0.1:80")).toBeUndefined();
    expect(httpProbe.fromTarget!("10.0.0.1:80")).toBeUndefined();
    expect(httpProbe.describe(httpSchema.parse({ url: "http://x/" }))).toBe("http GET http://x/");
  });
});
