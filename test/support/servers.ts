import net from "node:net";

/** A loopback TCP server on port 0 that answers each chunk via `reply` (or stays silent). */
export async function tcpServer(
  reply?: (data: string, socket: net.Socket) => void,
): Promise<{ port: number; address: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    if (reply) s.on("data", (d) => reply(d.toString("latin1"), s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on which nothing listens (bound then released). */
export async function closedPort(): Promise<number> {
  const s = await tcpServer();
  await s.close();
  return s.port;
}
