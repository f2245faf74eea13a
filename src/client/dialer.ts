import { LifelineError } from "../errors.ts";
import { type RttOptions, type RttState, rttInit, rttSample, rttTimeout } from "../health/rtt.ts";
import type { Clock } from "../util/clock.ts";
import type { ConnectOptions } from "./connection.ts";
import type { Connector, Link } from "./link.ts";

/** One failed attempt of a dial. */
export interface AttemptFailure {
  address: string;
  error: LifelineError;
  /** ms from the attempt's start to its failure. */
  took: number;
}

/** Every server failed: `failures` says how, one entry per attempt. */
export class NoServerError extends LifelineError {
  readonly failures: AttemptFailure[];

  constructor(failures: AttemptFailure[]) {
    const what = failures.map((f) => `${f.address}: ${f.error.message}`).join("; ");
    super("LL_NO_SERVER", `no server answered (${what || "no servers"})`);
    this.name = "NoServerError";
    this.failures = failures;
  }
}

export interface DialRequest {
  /** Servers in the order to try. */
  candidates: string[];
  /** Everything but address, timeout and signal. */
  hello: Omit<ConnectOptions, "address" | "timeout" | "signal" | "clock" | "onTcpConnect">;
  /** Per-attempt timeout for a server, ms. */
  timeoutFor: (address: string) => number;
  /** `race`: Happy-Eyeballs style; `sequential`: one at a time (the seed's loop). */
  mode: "race" | "sequential";
  raceDelay: number;
  maxParallel: number;
  signal?: AbortSignal;
  /** Each failed attempt, as it happens. */
  onFailure?: (f: AttemptFailure) => void;
}

/**
 * Dials a list of servers. In `race` mode the first attempt starts at once; while it is
 * pending, the next starts after `raceDelay` (or as soon as one fails; 4 × `raceDelay` when
 * the pending one's TCP connection is up and only its handshake is slow), up to `maxParallel`
 * at once; the first to finish its handshake wins and the others are aborted. A slow server
 * (the seed's 5 s accept) therefore costs `raceDelay`, not its timeout.
 *
 * Resolves with the winning link and the attempts that failed before it; rejects with
 * `NoServerError` when every candidate failed, or `LL_ABORTED` when `signal` fired.
 */
export function dial(
  req: DialRequest,
  connector: Connector,
  clock: Clock,
): Promise<{ link: Link; failures: AttemptFailure[] }> {
  return new Promise((resolve, reject) => {
    const failures: AttemptFailure[] = [];
    const controllers = new Set<AbortController>();
    let next = 0;
    let pending = 0;
    let done = false;
    let raceTimer: { cancel(): void } | undefined;
    const parallel = req.mode === "race" ? req.maxParallel : 1;

    const finish = () => {
      done = true;
      raceTimer?.cancel();
      req.signal?.removeEventListener("abort", onAbort);
      for (const c of controllers) c.abort();
      controllers.clear();
    };
    const onAbort = () => {
      if (done) return;
      finish();
      reject(new LifelineError("LL_ABORTED", "dial aborted"));
    };
    if (req.signal?.aborted) return onAbort();
    req.signal?.addEventListener("abort", onAbort, { once: true });

    // Whether the newest attempt's TCP connection is up: its server is alive and only busy
    // answering (a herd of clients resuming at once), so racing another now would only add
    // to the herd. It gets `raceDelay` × 4 before the next starts; a server that does not
    // even accept (the seed's slow accept) still costs only `raceDelay`.
    let newestUp = false;
    let extended = false;
    const scheduleRace = (delay = req.raceDelay) => {
      raceTimer?.cancel();
      raceTimer = undefined;
      if (req.mode !== "race" || next >= req.candidates.length) return;
      raceTimer = clock.timeout(delay, () => {
        raceTimer = undefined;
        if (newestUp && !extended) {
          extended = true;
          scheduleRace(req.raceDelay * 3);
          return;
        }
        if (!done && pending < parallel) start();
        scheduleRace();
      });
    };

    const start = () => {
      if (done || next >= req.candidates.length) return;
      const address = req.candidates[next++]!;
      const controller = new AbortController();
      newestUp = false;
      extended = false;
      const mine = next;
      controllers.add(controller);
      pending++;
      const began = clock.now();
      const timeout = req.timeoutFor(address);
      const onTcpConnect = () => {
        if (mine === next) newestUp = true;
      };
      connector({ ...req.hello, address, timeout, signal: controller.signal, clock, onTcpConnect }).then(
        (link) => {
          controllers.delete(controller);
          pending--;
          if (done) {
            link.destroy(); // lost the race after all
            return;
          }
          finish();
          resolve({ link, failures });
        },
        (err: unknown) => {
          controllers.delete(controller);
          pending--;
          if (done) return;
          const error =
            err instanceof LifelineError
              ? err
              : new LifelineError("LL_CONNECT_FAILED", String(err), { cause: err });
          const f = { address, error, took: clock.now() - began };
          failures.push(f);
          req.onFailure?.(f);
          if (next < req.candidates.length) {
            start();
            scheduleRace();
          } else if (pending === 0) {
            finish();
            reject(new NoServerError(failures));
          }
        },
      );
    };

    start();
    scheduleRace();
    if (req.candidates.length === 0) {
      finish();
      reject(new NoServerError([]));
    }
  });
}

/**
 * The connect timeout per server, learned from its handshakes (RFC 6298 estimator over
 * connect times): the first attempt gets the configured timeout; once a server has answered,
 * its attempts get SRTT + 4·RTTVAR, at least `min`.
 */
export class ConnectTimeouts {
  private readonly states = new Map<string, RttState>();
  private readonly opts: RttOptions;

  constructor(initial: number, min: number) {
    this.opts = { initial, min: Math.min(min, initial), max: initial, floor: 50 };
  }

  timeoutFor(address: string): number {
    return (this.states.get(address) ?? rttInit(this.opts)).rto;
  }

  sample(address: string, ms: number): void {
    this.states.set(address, rttSample(this.states.get(address) ?? rttInit(this.opts), ms, this.opts));
  }

  timedOut(address: string): void {
    this.states.set(address, rttTimeout(this.states.get(address) ?? rttInit(this.opts), this.opts));
  }
}
