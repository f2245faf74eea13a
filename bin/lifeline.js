#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader, so the package works straight from a clone.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
process.exitCode = code;
setTimeout(() => process.exit(code), 200).unref();
