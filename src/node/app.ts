import type { Effect, Store, TopicEntry } from "../store/types.ts";

/**
 * The application API. A node hands each client message to `app.handle` exactly once
 * (a resent message gets the stored reply without running the handler again). What the
 * handler asks for through its context — pushes to this or another session, publishes,
 * subscriptions — is committed together with its reply, in one store transaction: either
 * the message took effect with all its effects, or it did not happen.
 *
 * Side effects outside the store (an HTTP call, a file write) are the handler's own: if the
 * node dies after running the handler but before the commit, the client resends and the
 * handler runs again. Keep them idempotent, or route them through the store.
 */
export interface SessionView {
  /** The session's id (stable across reconnects and nodes). */
  id: string;
  /** The node running the handler. */
  nodeId: string;
}

export type Bytes = Uint8Array | string;
/** What a handler returns; nothing (a handler with no return) means an empty reply. */
// biome-ignore lint/suspicious/noConfusingVoidType: lets `handle() {}` be a valid handler.
export type Reply = Bytes | undefined | void;

export interface AppContext {
  readonly session: SessionView;
  /** Sends `payload` to this session, or to another by id, as a PUSH after the commit. */
  push(payload: Bytes, toSession?: string): void;
  /** Appends to a durable topic. */
  publish(topic: string, payload: Bytes): void;
  /** Subscribes this session to a topic: entries after `after` (default: new ones only). */
  subscribe(topic: string, after?: number | "end"): void;
  unsubscribe(topic: string): void;
  /** Committed entries of a topic (this message's own publishes are not in yet). */
  readTopic(topic: string, after: number, limit: number): Promise<TopicEntry[]>;
  topicHead(topic: string): Promise<number>;
}

export interface App {
  readonly name: string;
  handle(payload: Uint8Array, ctx: AppContext): Reply | Promise<Reply>;
}

export function toBytes(value: Reply): Uint8Array {
  if (value === undefined) return new Uint8Array(0);
  return typeof value === "string" ? Buffer.from(value, "utf8") : value;
}

/** The context given to one handler call; it records effects for the commit. */
export class EffectRecorder implements AppContext {
  readonly effects: Effect[] = [];

  constructor(
    readonly session: SessionView,
    private readonly store: Store,
  ) {}

  push(payload: Bytes, toSession?: string): void {
    this.effects.push({ kind: "push", session: toSession ?? this.session.id, payload: toBytes(payload) });
  }

  publish(topic: string, payload: Bytes): void {
    this.effects.push({ kind: "publish", topic, payload: toBytes(payload) });
  }

  subscribe(topic: string, after: number | "end" = "end"): void {
    this.effects.push({ kind: "subscribe", session: this.session.id, topic, after });
  }

  unsubscribe(topic: string): void {
    this.effects.push({ kind: "unsubscribe", session: this.session.id, topic });
  }

  readTopic(topic: string, after: number, limit: number): Promise<TopicEntry[]> {
    return this.store.readTopic(topic, after, limit);
  }

  topicHead(topic: string): Promise<number> {
    return this.store.topicHead(topic);
  }
}
