/**
 * What a node has done since it started, for its `/metrics` (README "Metrics"). Plain
 * numbers bumped where the work happens; the admin server turns them into Prometheus
 * counters at scrape time.
 */
export interface NodeCounters {
  /** MSG frames from clients, resends included. */
  messagesIn: number;
  /** Messages handed to the app and committed (each exactly once). */
  processed: number;
  /** Replies sent (one per MSG frame answered, fresh or stored). */
  repliesOut: number;
  /** Resent messages answered from the stored reply: duplicates suppressed, app not run. */
  duplicates: number;
  /** Messages the app failed on (answered with LL_APP). */
  appErrors: number;
  /** PUSH frames sent. */
  pushesOut: number;
  /** PUSH frames sent again after a resume (the client had not acknowledged them). */
  pushesReplayed: number;
  /** Pushes the clients acknowledged. */
  pushAcks: number;
  /** Sessions opened, resumed here, detached (connection gone), moved away (fenced). */
  sessionsCreated: number;
  sessionsResumed: number;
  sessionsDetached: number;
  sessionsMoved: number;
  /** Graceful drains started. */
  drains: number;
  /** Times the store became unavailable (the node turned `degraded` until it returned). */
  storeOutages: number;
}

export function newCounters(): NodeCounters {
  return {
    messagesIn: 0,
    processed: 0,
    repliesOut: 0,
    duplicates: 0,
    appErrors: 0,
    pushesOut: 0,
    pushesReplayed: 0,
    pushAcks: 0,
    sessionsCreated: 0,
    sessionsResumed: 0,
    sessionsDetached: 0,
    sessionsMoved: 0,
    drains: 0,
    storeOutages: 0,
  };
}
