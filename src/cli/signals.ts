export type ShutdownReason = NodeJS.Signals | "timeout";

/** A pending shutdown: resolves on the first SIGINT or SIGTERM (or `ms`); `cancel` stops listening. */
export interface Shutdown extends Promise<ShutdownReason> {
  cancel(): void;
}

/**
 * Resolves on the first SIGINT or SIGTERM (or after `ms`, when given), then stops listening,
 * so a second Ctrl-C during shutdown gets Node's default behaviour and ends the process.
 *
 * Call it before the command announces itself (a "listening" line, a port): a parent that
 * reads that line may signal at once, and a signal that arrives before the handler is
 * installed kills the process with the default action instead of a graceful drain.
 */
export function untilShutdown(ms?: number): Shutdown {
  let cancel = () => {};
  const promise = new Promise<ShutdownReason>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const off = () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      clearTimeout(timer);
    };
    const done = (why: ShutdownReason) => {
      off();
      resolve(why);
    };
    const onInt = () => done("SIGINT");
    const onTerm = () => done("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    if (ms !== undefined) timer = setTimeout(() => done("timeout"), ms);
    cancel = off;
  });
  return Object.assign(promise, { cancel });
}
