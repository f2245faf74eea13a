import { EventEmitter } from "node:events";

/**
 * An EventEmitter whose event names and argument lists are checked by the compiler:
 * `TypedEmitter<{ state: [Transition]; result: [CheckResult] }>`.
 */
// biome-ignore lint/suspicious/noExplicitAny: the constraint must accept any tuple of arguments.
export type EventMap = Record<string, any[]>;

export class TypedEmitter<E extends EventMap> {
  private readonly ee = new EventEmitter();

  constructor() {
    // Many dashboards, loggers and streams may watch one engine.
    this.ee.setMaxListeners(0);
  }

  on<K extends keyof E & string>(name: K, fn: (...args: E[K]) => void): this {
    this.ee.on(name, fn as (...args: unknown[]) => void);
    return this;
  }

  once<K extends keyof E & string>(name: K, fn: (...args: E[K]) => void): this {
    this.ee.once(name, fn as (...args: unknown[]) => void);
    return this;
  }

  off<K extends keyof E & string>(name: K, fn: (...args: E[K]) => void): this {
    this.ee.off(name, fn as (...args: unknown[]) => void);
    return this;
  }

  protected emit<K extends keyof E & string>(name: K, ...args: E[K]): void {
    this.ee.emit(name, ...args);
  }

  listenerCount(name: keyof E & string): number {
    return this.ee.listenerCount(name);
  }
}
