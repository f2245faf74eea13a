#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader, so the package works straight from a clone.
import { register } from "tsx/esm/api";

register();
// A reader that goes away (a closed pipe, `| head`, a parent that stopped listening) must not
// turn a clean shutdown into a crash: output to it is simply dropped.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err.code !== "EPIPE") throw err;
  });
}
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
process.exitCode = code;
setTimeout(() => process.exit(code), 200).unref();
