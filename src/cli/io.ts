/** What a command needs from its process, injected so commands run inside tests. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export const processIO: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env };

/** Exit codes shared by all commands: 0 healthy, 1 degraded, 2 down, 3 usage or
 *  configuration error, 4 an internal error (never to be read as a health verdict). */
export const EXIT = { ok: 0, degraded: 1, down: 2, usage: 3, internal: 4 } as const;
