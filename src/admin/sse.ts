import type http from "node:http";

/**
 * Server-sent events (the `text/event-stream` format browsers' EventSource reads): one
 * `SseChannel` per open request. Writes never block the caller: a client that does not read
 * (its socket buffer passes `maxBuffered`) is disconnected — EventSource reconnects and gets
 * a fresh snapshot — instead of growing the monitor's memory without bound.
 */
export interface SseOptions {
  /** Comment line sent this often so proxies and browsers keep the stream open, ms. Default
   *  15,000: shorter costs a few bytes per client; longer risks idle timeouts (often 30-60 s). */
  keepAlive?: number;
  /** Bytes queued in the socket before a slow reader is dropped. Default 1 MiB. */
  maxBuffered?: number;
  /** Reconnect delay the browser should use, ms (the `retry:` field). Default 2,000. */
  retry?: number;
}

export class SseChannel {
  private timer: NodeJS.Timeout;
  private closed = false;
  private readonly maxBuffered: number;
  private readonly onClose: Array<() => void> = [];

  constructor(
    private readonly res: http.ServerResponse,
    opts: SseOptions = {},
  ) {
    this.maxBuffered = opts.maxBuffered ?? 1 << 20;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no", // nginx: do not buffer the stream
    });
    res.write(`retry: ${opts.retry ?? 2000}\n\n`);
    this.timer = setInterval(() => this.raw(": ping\n\n"), opts.keepAlive ?? 15_000);
    this.timer.unref();
    res.on("close", () => this.close());
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Sends one event; `data` is JSON-encoded (one line: JSON never holds a raw newline). */
  send(event: string, data: unknown): void {
    this.raw(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Runs `fn` once when the stream ends, whichever side ends it. */
  onEnd(fn: () => void): void {
    if (this.closed) fn();
    else this.onClose.push(fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (!this.res.writableEnded) this.res.end();
    for (const fn of this.onClose.splice(0)) fn();
  }

  private raw(text: string): void {
    if (this.closed) return;
    if (this.res.writableLength > this.maxBuffered) {
      this.res.destroy(); // a reader this far behind gets a fresh start on reconnect
      this.close();
      return;
    }
    this.res.write(text);
  }
}
