import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Probe, ProbeOutcome } from "../../../src/health/types.ts";
import { systemClock } from "../../../src/util/clock.ts";

/** Runs one attempt of a probe on the real clock, aborting it after `deadline` ms. */
export async function runProbe(probe: Probe, deadline = 5000): Promise<ProbeOutcome> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), deadline);
  try {
    return await probe.run({ signal: controller.signal, deadline, clock: systemClock });
  } finally {
    clearTimeout(timer);
  }
}

/** Starts any net.Server (http, https, tls, net) on 127.0.0.1 port 0. `close()` destroys
 *  open connections first, so it never waits for a client. */
export async function listen(server: net.Server): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on which nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = await listen(net.createServer());
  await s.close();
  return s.port;
}

export interface CertFiles {
  dir: string;
  keyFile: string;
  certFile: string;
  key: Buffer;
  cert: Buffer;
  /** Removes the temporary directory. */
  remove(): void;
}

const SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1";

/**
 * A self-signed certificate for localhost and 127.0.0.1, made with the openssl CLI in a
 * temporary directory: valid for `days` from now, or `expired` (valid for one day in 2020,
 * issued with `openssl ca`, the only way openssl 3.0 sets past dates).
 */
export function makeCert(opts: { days?: number; expired?: boolean } = {}): CertFiles {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-cert-"));
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  try {
    if (!opts.expired) {
      const days = String(opts.days ?? 30);
      run(
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days, "-subj", "/CN=localhost"].concat([
          "-addext",
          SAN,
          "-keyout",
          keyFile,
          "-out",
          certFile,
        ]),
      );
    } else {
      writeFileSync(join(dir, "index.txt"), "");
      writeFileSync(join(dir, "serial"), "01\n");
      writeFileSync(
        join(dir, "ca.cnf"),
        [
          "[ca]",
          "default_ca = d",
          "[d]",
          "database = index.txt",
          "new_certs_dir = .",
          "serial = serial",
          "default_md = sha256",
          "policy = p",
          "copy_extensions = copy",
          "unique_subject = no",
          "[p]",
          "commonName = supplied",
          "",
        ].join("\n"),
      );
      run(
        ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-addext", SAN].concat([
          "-keyout",
          keyFile,
          "-out",
          join(dir, "req.csr"),
        ]),
      );
      run(
        ["ca", "-batch", "-notext", "-config", "ca.cnf", "-selfsign", "-keyfile", keyFile].concat([
          "-in",
          "req.csr",
          "-out",
          certFile,
          "-startdate",
          "20200101000000Z",
          "-enddate",
          "20200102000000Z",
        ]),
      );
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    keyFile,
    certFile,
    key: readFileSync(keyFile),
    cert: readFileSync(certFile),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Polls `fn` until it returns true, or fails after `timeout` ms. */
export async function until(fn: () => boolean, timeout = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + timeout;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
