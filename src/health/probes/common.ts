import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import net from "node:net";
import { z } from "zod";
import { classifyError, type ErrorKind } from "../kinds.ts";
import type { ProbeOutcome } from "../types.ts";

/**
 * Small pieces the probes share: turning an error into an outcome, reading a CA file,
 * choosing a TLS server name, and quoting a short excerpt of what a peer said.
 */

/** A failed outcome from an error, classified by its code. `fallback` replaces the kind
 *  `classifyError` gives an error it cannot place (`protocol`), e.g. `tls` during a handshake. */
export function errorOutcome(err: unknown, fallback?: ErrorKind, prefix = ""): ProbeOutcome {
  const c = classifyError(err);
  const message = err instanceof Error ? err.message : String(err);
  const kind = fallback && c.kind === "protocol" ? fallback : c.kind;
  const outcome: ProbeOutcome = { status: "fail", kind, message: `${prefix}${message}` };
  if (c.errno) outcome.errno = c.errno;
  if (c.local) outcome.local = true;
  return outcome;
}

/**
 * `ca`: a PEM file of certificates to trust instead of the system's. Checked when the
 * configuration is read (a typo is reported against the field) and read again on every
 * attempt, so a rotated CA file is picked up without a restart (a few KiB per check).
 */
export const caFile = z
  .string()
  .min(1)
  .refine((path) => existsSync(path), { message: "CA file not found" });

/** Reads a CA file; a failure is an outcome (the check fails, naming the file). */
export async function readCa(path: string | undefined): Promise<Buffer | ProbeOutcome | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (err) {
    return errorOutcome(err, "tls", `cannot read CA file ${path}: `);
  }
}

/** The SNI name to send: the configured one, else the host unless it is an IP literal
 *  (RFC 6066 forbids IP addresses in SNI; the certificate is then checked against the IP). */
export function sniName(host: string, servername: string | undefined): string | undefined {
  if (servername !== undefined) return servername;
  return net.isIP(host) === 0 ? host : undefined;
}

/** `"first 80 characters…"`, on one line, for messages. */
export function excerpt(text: string, max = 80): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max)}…` : flat);
}

export const DAY_MS = 86_400_000;
