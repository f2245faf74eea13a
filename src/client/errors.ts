import { LifelineError } from "../errors.ts";

/** The cluster processed the message but the application's handler failed on it. */
export class AppError extends LifelineError {
  constructor(
    message: string,
    readonly seq: number,
  ) {
    super("LL_APP", message);
    this.name = "AppError";
  }
}

/**
 * The session expired (or was refused) while this message was unacknowledged: the cluster
 * may or may not have processed it. The payload is here so the application can decide.
 */
export class SessionLostError extends LifelineError {
  constructor(
    readonly sessionId: string,
    readonly payload: Uint8Array,
    reason: string,
  ) {
    super(
      "LL_SESSION_LOST",
      `session ${sessionId} was lost (${reason}); this message may not have been processed`,
    );
    this.name = "SessionLostError";
  }
}

/** The outbox was full: with `drop-oldest`, this message was dropped to make room. */
export class DroppedError extends LifelineError {
  constructor(readonly payload: Uint8Array) {
    super("LL_OUTBOX_DROPPED", "dropped from a full outbox (overflow: drop-oldest) before it was sent");
    this.name = "DroppedError";
  }
}
