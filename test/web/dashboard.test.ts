import { existsSync, mkdirSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MonitorHandle, startMonitor } from "../../src/cli/monitor.ts";
import { memoryIO } from "../support/io.ts";

/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against a
 * real monitor and a real TCP server: the tile turns healthy, then down when the server
 * goes away — live, through the event stream, without a reload — and the event log says so.
 */
const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.log(`skipping the dashboard browser test: ${CHROMIUM} not found (apt-get install chromium)`);

const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

/** A TCP server that accepts and holds connections; close() also destroys its sockets. */
async function holdServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    port,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}

/** Page errors and console errors (a CSP violation, a script that failed) fail the test. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

// The test compiles without the DOM library: code run in the page is given as strings.
function pageWidths(page: Page): Promise<{ scrollWidth: number; innerWidth: number }> {
  return page.evaluate(
    "({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })",
  );
}

describe("dashboard (browser)", () => {
  let server: Awaited<ReturnType<typeof holdServer>> | undefined;
  let monitor: MonitorHandle | undefined;
  let browser: Browser | undefined;
  let url = "";
  let id = "";

  beforeAll(async () => {
    if (!hasChromium) return;
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await holdServer();
    const target = `127.0.0.1:${server.port}`;
    monitor = await startMonitor(
      [target],
      { admin: "127.0.0.1:0", history: "off", interval: "200ms", logLevel: "silent", watch: false },
      memoryIO(),
    );
    url = monitor.admin!.url;
    id = monitor.engine.ids()[0]!;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await monitor?.stop().catch(() => {});
    await server?.close().catch(() => {});
  });

  it.skipIf(!hasChromium)("shows a target healthy, then down live when its server goes away", async () => {
    const context = await browser!.newContext({ viewport: { width: 1366, height: 900 } });
    try {
      const page = await context.newPage();
      const errors = watchErrors(page);
      await page.goto(`${url}/`);
      const tile = `[data-target="${id}"]`;
      await page.waitForSelector(`.grid ${tile}[data-state="healthy"]`, { timeout: 15_000 });
      await page.waitForSelector('#conn[data-conn="live"]', { timeout: 5_000 });
      // the reason is on the tile (a visible line) and in its title
      expect(await page.textContent(`${tile} .tile-reason`)).not.toBe("");
      expect(await page.getAttribute(tile, "title")).toContain("healthy");

      // details: the state timeline and the latency chart (uPlot, served locally)
      await page.click(`.grid ${tile}`);
      await page.waitForSelector(`#detail[data-target="${id}"]:not([hidden])`);
      await page.waitForSelector("#d-timeline .seg.s-healthy");
      await page.waitForSelector("#d-chart .uplot canvas", { timeout: 10_000 });

      const before = Date.now();
      await server!.close();
      await page.waitForSelector(`.grid ${tile}[data-state="down"]`, { timeout: 20_000 });
      const detectedIn = Date.now() - before;
      // no reload happened: the stream stayed up, and the log shows the transition
      expect(await page.getAttribute("#conn", "data-conn")).toBe("live");
      const line = page.locator(`#log li[data-type="state"][data-target="${id}"][data-to="down"]`);
      await line.first().waitFor({ timeout: 5_000 });
      expect(await line.first().textContent()).toContain("down");
      // and the log is newest first: the down line is the top state line
      const order = await page.evaluate<string[]>(
        `[...document.querySelectorAll('#log li[data-type="state"]')].map((li) => li.dataset.to)`,
      );
      expect(order[0]).toBe("down");
      await page.waitForSelector("#d-timeline .seg.s-down");
      expect(await page.textContent("#d-reason")).not.toBe("");

      const shot = await pageWidths(page);
      expect(shot.scrollWidth).toBeLessThanOrEqual(shot.innerWidth + 1);
      await page.waitForTimeout(300); // a last redraw of the chart
      await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
      console.log(`dashboard: down shown ${detectedIn} ms after the server closed`);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it.skipIf(!hasChromium)("fits a phone screen without horizontal scrolling", async () => {
    const context = await browser!.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    try {
      const page = await context.newPage();
      const errors = watchErrors(page);
      // deep link to the target's details
      await page.goto(`${url}/#target=${encodeURIComponent(id)}`);
      await page.waitForSelector(`.grid [data-target="${id}"][data-state]`, { timeout: 15_000 });
      await page.waitForSelector(`#detail[data-target="${id}"]:not([hidden])`);
      await page.waitForSelector("#d-chart .uplot canvas", { timeout: 10_000 });
      await page.waitForTimeout(300);
      const fit = await pageWidths(page);
      expect(fit.scrollWidth).toBeLessThanOrEqual(fit.innerWidth + 1);
      await page.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
