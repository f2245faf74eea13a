import { cleanupLeftovers, createNamespace, listNamespaces, type Namespace } from "../../test/fault/netns.ts";

/**
 * A benchmark's own network namespace (the fault harness's, test/fault/netns.ts), for the
 * benchmarks that run their children in one: bench/detection.ts, bench/false-positives.ts.
 */

/**
 * Creates the namespace `PREFIXPID-N`, after removing the namespaces with the prefix that
 * earlier runs left when they died (and saying so). Only where canUseNamespaces() allows.
 */
export async function benchNamespace(
  prefix: string,
  progress: { log: (line: string) => void },
): Promise<Namespace> {
  const removed = await cleanupLeftovers(prefix);
  if (removed.length > 0) progress.log(`removed namespaces of an earlier run: ${removed.join(", ")}`);
  return createNamespace(prefix);
}

/** Where a run's children run, for its messages and results. */
export function whereRun(ns: Namespace | undefined): string {
  return ns ? `network namespace ${ns.name}` : "the host";
}

/** `[name]` while the namespace `name` still exists (a run must have removed its own by its
 *  end), else []. */
export function namespaceLeft(name: string | null): string[] {
  return name && listNamespaces().includes(name) ? [name] : [];
}
