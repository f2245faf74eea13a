/**
 * Retransmission-timeout style estimator (RFC 6298) used to choose a check's timeout from
 * the answers it has measured, instead of the seed's fixed 2 s (its drawback 1).
 *
 *   first sample R:   SRTT = R,  RTTVAR = R / 2
 *   later samples R:  RTTVAR = (1 - β)·RTTVAR + β·|SRTT - R|,  SRTT = (1 - α)·SRTT + α·R
 *   timeout:          RTO = SRTT + max(floor, K·RTTVAR), clamped to [min, max]
 *   on a timeout:     RTO doubles (§5.5), up to max; after `resetAfterBackoffs` doublings in a
 *                     row SRTT and RTTVAR are cleared (§5, note after 5.7) so that the next
 *                     answer re-seeds them: a target that became slow is re-learned at once.
 *
 * Pure functions over a plain state object, tested against tables of cases.
 */
export interface RttOptions {
  /** Timeout before any answer was measured. ms. RFC 6298 says 1 s. */
  initial: number;
  /** Lower clamp of the timeout. ms. */
  min: number;
  /** Upper clamp of the timeout (and of backoff). ms. */
  max: number;
  /** Smallest variance term added to SRTT (RFC 6298's clock granularity G). ms. */
  floor: number;
  /** Gain of SRTT. RFC 6298: 1/8. */
  alpha?: number;
  /** Gain of RTTVAR. RFC 6298: 1/4. */
  beta?: number;
  /** Multiplier of RTTVAR. RFC 6298: 4. */
  k?: number;
  /** Consecutive timeouts after which the estimate is cleared. Default 2. */
  resetAfterBackoffs?: number;
}

export interface RttState {
  /** Smoothed round-trip time, ms; undefined until the first sample. */
  srtt: number | undefined;
  /** Round-trip variation, ms. */
  rttvar: number;
  /** Current timeout before clamping-by-backoff, ms. */
  rto: number;
  /** Consecutive timeouts since the last sample. */
  backoffs: number;
  /** Samples taken in total. */
  samples: number;
}

export function rttInit(opts: RttOptions): RttState {
  return {
    srtt: undefined,
    rttvar: 0,
    rto: clamp(opts.initial, opts.min, opts.max),
    backoffs: 0,
    samples: 0,
  };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function computeRto(srtt: number, rttvar: number, opts: RttOptions): number {
  return clamp(srtt + Math.max(opts.floor, (opts.k ?? 4) * rttvar), opts.min, opts.max);
}

/** Folds one measured round trip (ms) into the estimate. */
export function rttSample(state: RttState, r: number, opts: RttOptions): RttState {
  const sample = Math.max(0, r);
  const alpha = opts.alpha ?? 1 / 8;
  const beta = opts.beta ?? 1 / 4;
  let srtt: number;
  let rttvar: number;
  if (state.srtt === undefined) {
    srtt = sample;
    rttvar = sample / 2;
  } else {
    rttvar = (1 - beta) * state.rttvar + beta * Math.abs(state.srtt - sample);
    srtt = (1 - alpha) * state.srtt + alpha * sample;
  }
  return { srtt, rttvar, rto: computeRto(srtt, rttvar, opts), backoffs: 0, samples: state.samples + 1 };
}

/** Records a timeout: the next timeout doubles, and a run of them clears the estimate. */
export function rttTimeout(state: RttState, opts: RttOptions): RttState {
  const backoffs = state.backoffs + 1;
  const rto = clamp(state.rto * 2, opts.min, opts.max);
  if (backoffs >= (opts.resetAfterBackoffs ?? 2)) {
    return { srtt: undefined, rttvar: 0, rto, backoffs, samples: state.samples };
  }
  return { ...state, rto, backoffs };
}

/** The timeout to use for the next attempt, ms. */
export function rttTimeoutFor(state: RttState): number {
  return state.rto;
}
