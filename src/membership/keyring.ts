import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { LifelineError } from "../errors.ts";

/**
 * The cluster's shared keys for AES-256-GCM. The primary key encrypts everything sent; every
 * installed key is tried to decrypt what arrives, so keys rotate without a flag day:
 *
 *   1. `install(new)` on every member     (all can read new, all still write old)
 *   2. `use(new)` on every member          (all write new, old still readable)
 *   3. `remove(old)` on every member
 *
 * Sealed layout: u8 version (1) · 12-byte random nonce · ciphertext · 16-byte GCM tag, with
 * the cluster name as additional authenticated data, so a message from another cluster fails
 * authentication even when it shares the key. 29 bytes of overhead per message.
 */
export const SEAL_VERSION = 1;
export const SEAL_OVERHEAD = 1 + 12 + 16;
const KEY_BYTES = 32;

export class Keyring {
  private keys: Buffer[] = [];

  /** `keys[0]` becomes the primary; each key is 32 bytes (raw or base64). */
  constructor(keys: ReadonlyArray<Uint8Array | string>) {
    if (keys.length === 0)
      throw new LifelineError("LL_MEMBERSHIP_KEY_INVALID", "a keyring needs at least one key");
    for (const k of keys) this.install(k);
  }

  /** A fresh random key, base64, for `lifeline keygen`-style use. */
  static generateKey(): string {
    return randomBytes(KEY_BYTES).toString("base64");
  }

  /** Adds a key used to decrypt (the primary is unchanged unless the ring was empty). */
  install(key: Uint8Array | string): void {
    const k = toKey(key);
    if (!this.keys.some((x) => x.equals(k))) this.keys.push(k);
  }

  /** Makes an installed key the primary (the one that encrypts). */
  use(key: Uint8Array | string): void {
    const k = toKey(key);
    const i = this.keys.findIndex((x) => x.equals(k));
    if (i < 0)
      throw new LifelineError("LL_MEMBERSHIP_KEY_UNKNOWN", "the key must be installed before it is used");
    this.keys.splice(i, 1);
    this.keys.unshift(k);
  }

  /** Removes a key; the primary cannot be removed (use another first). */
  remove(key: Uint8Array | string): void {
    const k = toKey(key);
    if (this.keys[0]!.equals(k))
      throw new LifelineError(
        "LL_MEMBERSHIP_KEY_PRIMARY",
        "the primary key cannot be removed; use another key first",
      );
    this.keys = this.keys.filter((x) => !x.equals(k));
  }

  /** Installed keys, base64, the primary first. */
  list(): string[] {
    return this.keys.map((k) => k.toString("base64"));
  }

  seal(plain: Uint8Array, aad: string): Uint8Array {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.keys[0]!, nonce);
    cipher.setAAD(Buffer.from(aad, "utf8"));
    const body = cipher.update(plain);
    cipher.final();
    return Buffer.concat([Buffer.of(SEAL_VERSION), nonce, body, cipher.getAuthTag()]);
  }

  /** The plaintext, or undefined when no installed key authenticates it. */
  open(sealed: Uint8Array, aad: string): Uint8Array | undefined {
    if (sealed.length < SEAL_OVERHEAD || sealed[0] !== SEAL_VERSION) return undefined;
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const nonce = buf.subarray(1, 13);
    const tag = buf.subarray(buf.length - 16);
    const body = buf.subarray(13, buf.length - 16);
    const ad = Buffer.from(aad, "utf8");
    for (const key of this.keys) {
      try {
        const d = createDecipheriv("aes-256-gcm", key, nonce);
        d.setAAD(ad);
        d.setAuthTag(tag);
        const out = d.update(body);
        d.final();
        return out;
      } catch {
        // wrong key or tampered: try the next
      }
    }
    return undefined;
  }
}

function toKey(key: Uint8Array | string): Buffer {
  const k = typeof key === "string" ? Buffer.from(key, "base64") : Buffer.from(key);
  if (k.length !== KEY_BYTES)
    throw new LifelineError(
      "LL_MEMBERSHIP_KEY_INVALID",
      `an AES-256 key is ${KEY_BYTES} bytes (44 characters of base64), not ${k.length}`,
    );
  return k;
}
