import http from "node:http";
import type net from "node:net";
import type { HealthEngine } from "../../src/health/engine.ts";
import type { TargetState, Transition } from "../../src/health/types.ts";
import type { Logger } from "../../src/util/logger.ts";

let clockMs = Date.UTC(2026, 0, 1);

/** A transition of `target` (its `at` grows by one second per call). */
export function change(
  target: string,
  from: TargetState,
  to: TargetState,
  extra: Partial<Transition> = {},
): Transition {
  clockMs += 1000;
  return { target, from, to, at: clockMs, reason: `${from} → ${to}`, evidence: {}, ...extra };
}

/** A logger that keeps every line. */
export function recordingLogger(): Logger & { lines: Array<{ level: string; obj: object; msg?: string }> } {
  const lines: Array<{ level: string; obj: object; msg?: string }> = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, ...(msg !== undefined ? { msg } : {}) });
    };
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export interface Receiver {
  url: string;
  /** Every request, in arrival order, with the status answered. */
  requests: Array<{ body: unknown; headers: http.IncomingHttpHeaders; status: number; method: string }>;
  /** Bodies of the requests answered 2xx, in order. */
  delivered(): unknown[];
  close(): Promise<void>;
}

/** A webhook receiver on 127.0.0.1, port 0; `answer(n)` gives the status of request n (0-based). */
export async function receiver(answer: (n: number) => number = () => 200): Promise<Receiver> {
  const requests: Receiver["requests"] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const status = answer(requests.length);
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        body = Buffer.concat(chunks).toString("utf8");
      }
      requests.push({ body, headers: req.headers, status, method: req.method ?? "" });
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(status >= 300 ? `status ${status}` : "ok");
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook/secret-token`,
    requests,
    delivered: () => requests.filter((r) => r.status < 300).map((r) => r.body),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Resolves with the transition that brings `target` to `state` (watching from now). */
export function reach(
  engine: HealthEngine,
  target: string,
  state: TargetState,
  within = 15_000,
): Promise<Transition> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      engine.off("state", on);
      const now = engine.target(target);
      reject(new Error(`${target} did not become ${state}; it is ${now?.state}: ${now?.reason}`));
    }, within);
    const on = (t: Transition) => {
      if (t.target !== target || t.to !== state) return;
      clearTimeout(timer);
      engine.off("state", on);
      resolve(t);
    };
    engine.on("state", on);
  });
}

/** Polls `cond` every 10 ms until it holds; fails after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
