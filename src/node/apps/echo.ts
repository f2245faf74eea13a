import type { App } from "../app.ts";

/** `echo`: replies with the message itself. The reference app for tests and benchmarks. */
export const echoApp: App = {
  name: "echo",
  handle: (payload) => payload,
};
