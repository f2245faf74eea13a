import { pathToFileURL } from "node:url";
import { UsageError } from "../../errors.ts";
import type { App } from "../app.ts";
import { echoApp } from "./echo.ts";
import { pubsubApp } from "./pubsub.ts";

export const BUILT_IN_APPS: Record<string, App> = { echo: echoApp, pubsub: pubsubApp };

/**
 * `echo`, `pubsub`, or a module path whose default export (or `app` export) is an App —
 * an object with `name` and `handle(payload, ctx)` — or a bare handler function.
 */
export async function loadApp(spec: string): Promise<App> {
  const builtIn = BUILT_IN_APPS[spec];
  if (builtIn) return builtIn;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec.startsWith("file:") ? spec : pathToFileURL(spec).href)) as Record<
      string,
      unknown
    >;
  } catch (err) {
    throw new UsageError(
      `cannot load app module ${spec}: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
      },
    );
  }
  const candidate = mod.app ?? mod.default;
  if (typeof candidate === "function") return { name: spec, handle: candidate as App["handle"] };
  if (candidate && typeof candidate === "object" && typeof (candidate as App).handle === "function") {
    return candidate as App;
  }
  throw new UsageError(
    `${spec} exports no app: export default { name, handle(payload, ctx) } or a handler function`,
  );
}
