/**
 * A one-line progress indicator on stderr, redrawn in place on a terminal. Off a terminal
 * only `log` lines are written, so CI logs stay readable.
 */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private shown = false;

  update(text: string): void {
    if (!this.tty) return;
    const width = (process.stderr.columns ?? 100) - 1;
    process.stderr.write(`\r\x1b[K${text.slice(0, width)}`);
    this.shown = true;
  }

  /** A line that stays (on a terminal, the progress line is cleared first). */
  log(text: string): void {
    this.clear();
    process.stderr.write(`${text}\n`);
  }

  clear(): void {
    if (this.tty && this.shown) process.stderr.write("\r\x1b[K");
    this.shown = false;
  }
}
