/** What a command needs from its process, injected so commands run inside tests. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export const processIO: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env };

/** Exit codes shared by all commands. */
export const EXIT = { ok: 0, degraded: 1, down: 2, usage: 3 } as const;
