import { createNamespace, type Namespace } from "./netns.ts";

/**
 * Several "machines" on one Ethernet segment, all inside namespaces the test creates: a hub
 * namespace holds a bridge (and is itself a machine on it: the root of the test topology),
 * and each host is a namespace whose `eth0` is one end of a veth pair, the other end being a
 * port of the bridge. Nothing is added to the host's own network: every interface, address
 * and route lives in a namespace and goes when it is deleted.
 *
 *        hub (10.213.0.1, br0)
 *        ├── v1 ── eth0 of host 1 (10.213.0.11)
 *        ├── v2 ── eth0 of host 2 (10.213.0.12)
 *        └── ...
 *
 * `cut(host)` sets the host's bridge port down: its packets vanish both ways (a pulled
 * cable, not a refusal), and `restore(host)` brings it back.
 */

/** The segment's addresses: a private range, used only inside the test's namespaces. */
export const LAN_PREFIX = "10.213.0";
export const HUB_ADDRESS = `${LAN_PREFIX}.1`;

export interface LanHost {
  name: string;
  ns: Namespace;
  /** Its address on the segment. */
  address: string;
  /** Its bridge port's name in the hub. */
  port: string;
}

export class Lan {
  private readonly byName = new Map<string, LanHost>();

  constructor(
    /** The hub: the bridge, and a machine on the segment at HUB_ADDRESS. */
    readonly hub: Namespace,
    hosts: LanHost[],
  ) {
    for (const h of hosts) this.byName.set(h.name, h);
  }

  get hosts(): LanHost[] {
    return [...this.byName.values()];
  }

  host(name: string): LanHost {
    const h = this.byName.get(name);
    if (!h) throw new Error(`no host ${name} on this LAN (have ${[...this.byName.keys()].join(", ")})`);
    return h;
  }

  /** Pulls the host's cable: its bridge port goes down, its traffic is silently lost. */
  async cut(name: string): Promise<void> {
    await this.hub.exec("ip", ["link", "set", this.host(name).port, "down"]);
  }

  /** Plugs it back in. */
  async restore(name: string): Promise<void> {
    await this.hub.exec("ip", ["link", "set", this.host(name).port, "up"]);
  }

  /** Kills everything started on the LAN and deletes its namespaces (with their links). */
  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    for (const ns of [...this.hosts.map((h) => h.ns), this.hub]) {
      await ns.destroy().catch((err: unknown) => errors.push(err));
    }
    if (errors.length > 0) throw errors[0];
  }
}

/**
 * Creates the hub and one namespace per name, wired to the hub's bridge, addressed
 * `${LAN_PREFIX}.11`, `.12`... in order. Everything made so far is removed if a step fails.
 */
export async function createLan(names: readonly string[]): Promise<Lan> {
  if (names.length === 0 || names.length > 50) throw new Error("a LAN has 1 to 50 hosts");
  const hub = await createNamespace();
  const hosts: LanHost[] = [];
  try {
    await hub.exec("ip", ["link", "add", "br0", "type", "bridge"]);
    await hub.exec("ip", ["addr", "add", `${HUB_ADDRESS}/24`, "dev", "br0"]);
    await hub.exec("ip", ["link", "set", "br0", "up"]);
    for (const [i, name] of names.entries()) {
      const ns = await createNamespace();
      const host: LanHost = { name, ns, address: `${LAN_PREFIX}.${11 + i}`, port: `v${i + 1}` };
      hosts.push(host);
      await hub.exec("ip", [
        "link",
        "add",
        host.port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns.name,
      ]);
      await hub.exec("ip", ["link", "set", host.port, "master", "br0"]);
      await hub.exec("ip", ["link", "set", host.port, "up"]);
      await ns.exec("ip", ["addr", "add", `${host.address}/24`, "dev", "eth0"]);
      await ns.exec("ip", ["link", "set", "eth0", "up"]);
    }
  } catch (err) {
    await new Lan(hub, hosts).destroy().catch(() => {});
    throw err;
  }
  return new Lan(hub, hosts);
}
