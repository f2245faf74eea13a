import { execFileSync } from "node:child_process";

/**
 * Sockets in TIME_WAIT whose local or peer port is one of `ports`, as "local peer" strings
 * (from `ss -tan state time-wait`, iproute2). Undefined when `ss` is not available.
 */
export function timeWaitOn(ports: ReadonlySet<number>): Set<string> | undefined {
  let out: string;
  try {
    out = execFileSync("ss", ["-H", "-t", "-a", "-n", "state", "time-wait"], {
      encoding: "utf8",
      maxBuffer: 512 * 1024 * 1024,
    });
  } catch {
    return undefined;
  }
  const found = new Set<string>();
  for (const line of out.split("\n")) {
    // Recv-Q Send-Q Local:Port Peer:Port (the State column is left out when one state is asked for)
    const ends = line
      .trim()
      .split(/\s+/)
      .filter((f) => /:\d+$/.test(f));
    if (ends.length < 2) continue;
    const local = ends[0]!;
    const peer = ends[1]!;
    const lp = Number(local.slice(local.lastIndexOf(":") + 1));
    const pp = Number(peer.slice(peer.lastIndexOf(":") + 1));
    if (ports.has(lp) || ports.has(pp)) found.add(`${local} ${peer}`);
  }
  return found;
}
