import net from "node:net";

/**
 * What the proxy does with traffic:
 * - `pass`: forwards both ways.
 * - `freeze`: stops forwarding in both directions but keeps every socket open (a frozen
 *   process, a half-open path); new connections are accepted and held.
 * - `reset`: resets every open connection and every new one as soon as it is accepted (a
 *   process that is dying while its port still accepts).
 */
export type ProxyMode = "pass" | "freeze" | "reset";

export interface FaultyProxy {
  address: string;
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

/** A loopback TCP proxy on port 0 in front of `target` (host:port), whose faults tests switch. */
export async function faultyProxy(target: string): Promise<FaultyProxy> {
  const i = target.lastIndexOf(":");
  const host = target.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(i + 1));
  let mode: ProxyMode = "pass";
  let accepted = 0;
  const pairs = new Set<Pair>();

  const wire = (p: Pair) => {
    const up = net.connect({ host, port });
    p.upstream = up;
    up.on("error", () => p.client.destroy());
    up.on("close", () => p.client.destroy());
    p.client.on("data", (d) => up.write(d));
    up.on("data", (d) => p.client.write(d));
  };
  const apply = (p: Pair) => {
    if (mode === "reset") {
      p.client.resetAndDestroy();
      p.upstream?.destroy();
      return;
    }
    if (mode === "freeze") {
      p.client.pause();
      p.upstream?.pause();
      return;
    }
    if (!p.upstream) wire(p);
    p.client.resume();
    p.upstream?.resume();
  };

  const server = net.createServer((client) => {
    accepted++;
    const p: Pair = { client, upstream: undefined };
    pairs.add(p);
    client.on("error", () => {});
    client.on("close", () => {
      pairs.delete(p);
      p.upstream?.destroy();
    });
    apply(p);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const listenPort = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${listenPort}`,
    port: listenPort,
    get accepted() {
      return accepted;
    },
    setMode(next) {
      mode = next;
      for (const p of [...pairs]) apply(p);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of pairs) {
          p.client.destroy();
          p.upstream?.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
