import { LifelineError } from "../../src/errors.ts";
import type { Store } from "../../src/store/types.ts";

/**
 * A store whose backend can be "unplugged", as a Redis store is when its server is
 * unreachable: `healthy()` says so and every call fails fast with LL_STORE_UNAVAILABLE.
 */
export function unpluggable(inner: Store): Store & { down: boolean } {
  const state = { down: false };
  return new Proxy(inner as Store & { down: boolean }, {
    get(target, key, receiver) {
      if (key === "down") return state.down;
      if (key === "healthy") return () => !state.down;
      if (key === "description") return "test://unpluggable";
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function" || key === "watch" || key === "close") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (...args: unknown[]) =>
        state.down
          ? Promise.reject(new LifelineError("LL_STORE_UNAVAILABLE", "the store is unplugged"))
          : (value as (...a: unknown[]) => unknown).apply(target, args);
    },
    set(_target, key, value) {
      if (key !== "down") return false;
      state.down = value as boolean;
      return true;
    },
  });
}
