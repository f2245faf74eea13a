import { describe, expect, it } from "vitest";
import { Keyring, SEAL_OVERHEAD } from "../../src/membership/keyring.ts";

const k1 = Keyring.generateKey();
const k2 = Keyring.generateKey();
const plain = Buffer.from("hello cluster");

describe("Keyring (AES-256-GCM)", () => {
  it("seals with the primary key and opens with any installed key", () => {
    const a = new Keyring([k1]);
    const sealed = a.seal(plain, "lifeline");
    expect(sealed.length).toBe(plain.length + SEAL_OVERHEAD);
    expect(Buffer.from(a.open(sealed, "lifeline")!)).toEqual(plain);
    const b = new Keyring([k2, k1]);
    expect(Buffer.from(b.open(sealed, "lifeline")!)).toEqual(plain);
  });

  it("rejects a wrong key, a wrong cluster name and any flipped bit", () => {
    const sealed = Buffer.from(new Keyring([k1]).seal(plain, "lifeline"));
    expect(new Keyring([k2]).open(sealed, "lifeline")).toBeUndefined();
    expect(new Keyring([k1]).open(sealed, "other")).toBeUndefined();
    for (const i of [0, 5, 20, sealed.length - 1]) {
      const t = Buffer.from(sealed);
      t[i]! ^= 1;
      expect(new Keyring([k1]).open(t, "lifeline")).toBeUndefined();
    }
    expect(new Keyring([k1]).open(sealed.subarray(0, 10), "lifeline")).toBeUndefined();
  });

  it("rotates: install, use, remove", () => {
    const ring = new Keyring([k1]);
    ring.install(k2);
    expect(ring.list()).toEqual([k1, k2]);
    ring.use(k2);
    expect(ring.list()).toEqual([k2, k1]);
    const sealed = ring.seal(plain, "x");
    expect(new Keyring([k2]).open(sealed, "x")).toBeDefined();
    expect(new Keyring([k1]).open(sealed, "x")).toBeUndefined();
    ring.remove(k1);
    expect(ring.list()).toEqual([k2]);
  });

  it("refuses bad keys and removing the primary, with stable codes", () => {
    expect(() => new Keyring([])).toThrow(expect.objectContaining({ code: "LL_MEMBERSHIP_KEY_INVALID" }));
    expect(() => new Keyring([Buffer.alloc(16)])).toThrow(
      expect.objectContaining({ code: "LL_MEMBERSHIP_KEY_INVALID" }),
    );
    const ring = new Keyring([k1]);
    expect(() => ring.remove(k1)).toThrow(expect.objectContaining({ code: "LL_MEMBERSHIP_KEY_PRIMARY" }));
    expect(() => ring.use(k2)).toThrow(expect.objectContaining({ code: "LL_MEMBERSHIP_KEY_UNKNOWN" }));
  });
});
