import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";

/**
 * `lifeline demo` (what `npm start` runs) prints its dashboard's address, and the page there
 * shows the demo's three nodes: as targets, and in the cluster view with their load.
 */
const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.log(`skipping the demo dashboard browser test: ${CHROMIUM} not found (apt-get install chromium)`);
const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

let demo: ChildProcess | undefined;
let browser: Browser | undefined;
let dir: string | undefined;
afterEach(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null && demo.signalCode === null) demo.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
  browser = undefined;
  demo = undefined;
  dir = undefined;
});

describe("lifeline demo's dashboard", () => {
  it.skipIf(!hasChromium)(
    "prints the dashboard URL; the page shows the three nodes and their load",
    async () => {
      const child = spawn(
        process.execPath,
        ["bin/lifeline.js", "demo", "--duration", "40", "--admin", "127.0.0.1:0"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      demo = child;
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
      });
      child.stderr!.on("data", (d) => {
        out += d;
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      const end = Date.now() + 20_000;
      let url: string | undefined;
      while (!url && Date.now() < end) {
        url = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
        if (!url) await new Promise((r) => setTimeout(r, 100));
      }
      expect(url, out).toBeDefined();
      dir = /"dir":"([^"]+)"/.exec(out)?.[1];

      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(url!);
      for (const id of ["n1", "n2", "n3"]) {
        await page.waitForSelector(`[data-target="${id}"][data-state="healthy"]`, { timeout: 20_000 });
        await page.waitForSelector(`#cluster tr[data-target="${id}"]`, { timeout: 20_000 });
      }
      // The client's session is on one of them: the cluster view counts it.
      await page.waitForFunction(
        `[...document.querySelectorAll("#cluster tr[data-target]")].some(
          (tr) => Number(tr.querySelectorAll("td")[3]?.textContent ?? 0) >= 1)`,
        undefined,
        { timeout: 20_000 },
      );
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "demo-dashboard.png"), fullPage: true });
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    },
    90_000,
  );
});
