import { Writable } from "node:stream";
import type { CliIO } from "../../src/cli/io.ts";

/** A CliIO that records what a command writes. */
export function memoryIO(env: NodeJS.ProcessEnv = {}): CliIO & { out(): string; err(): string } {
  const chunks = { out: [] as string[], err: [] as string[] };
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _enc, cb) {
        into.push(chunk.toString());
        cb();
      },
    });
  return {
    stdout: sink(chunks.out),
    stderr: sink(chunks.err),
    env,
    out: () => chunks.out.join(""),
    err: () => chunks.err.join(""),
  };
}
