/**
 * Resolves on the first SIGINT or SIGTERM (or after `ms`, when given), then stops listening,
 * so a second Ctrl-C during shutdown gets Node's default behaviour and ends the process.
 */
export function untilShutdown(ms?: number): Promise<NodeJS.Signals | "timeout"> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (why: NodeJS.Signals | "timeout") => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      clearTimeout(timer);
      resolve(why);
    };
    const onInt = () => done("SIGINT");
    const onTerm = () => done("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    if (ms !== undefined) timer = setTimeout(() => done("timeout"), ms);
  });
}
