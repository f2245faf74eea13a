/**
 * What kind of failure a result was. The seed caught every exception alike (its drawback 5);
 * here every failed result carries one of these kinds, derived from the real error code, and
 * the errno itself is kept beside it.
 *
 * - `timeout`      no answer within the deadline (the only kind that silence produces)
 * - `refused`      the host answered with a reset to our SYN: nothing listens on the port
 * - `reset`        an established connection was reset by the peer
 * - `unreachable`  the network or host is unreachable (ICMP, no route)
 * - `dns`          the name did not resolve
 * - `tls`          handshake or certificate failure
 * - `protocol`     the peer answered, but not what the check expects (wrong bytes, HTTP status)
 * - `closed`       the peer closed the connection before the check completed
 * - `overloaded`   the peer says it is overloaded (HTTP 429/503, a node's load report)
 */
export const ERROR_KINDS = [
  "timeout",
  "refused",
  "reset",
  "unreachable",
  "dns",
  "tls",
  "protocol",
  "closed",
  "overloaded",
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface Classified {
  kind: ErrorKind;
  /** The system or library error code, e.g. `ECONNREFUSED`, when there was one. */
  errno?: string;
  /**
   * True when the failure is the monitor's own (out of descriptors, out of memory, no local
   * port): such a result says nothing about the target and is not counted against it.
   */
  local?: boolean;
}

const BY_CODE: Record<string, ErrorKind> = {
  ETIMEDOUT: "timeout",
  ESOCKETTIMEDOUT: "timeout",
  LL_TIMEOUT: "timeout",
  ECONNREFUSED: "refused",
  ECONNRESET: "reset",
  EPIPE: "reset",
  ECONNABORTED: "reset",
  EHOSTUNREACH: "unreachable",
  ENETUNREACH: "unreachable",
  EHOSTDOWN: "unreachable",
  ENETDOWN: "unreachable",
  ENONET: "unreachable",
  EPROTO: "protocol",
  ENOTFOUND: "dns",
  EAI_AGAIN: "dns",
  EAI_FAIL: "dns",
  EAI_NONAME: "dns",
  EAI_NODATA: "dns",
  ENODATA: "dns",
  HPE_INVALID_CONSTANT: "protocol",
  HPE_INVALID_STATUS: "protocol",
  HPE_INVALID_HEADER_TOKEN: "protocol",
  HPE_HEADER_OVERFLOW: "protocol",
  ERR_STREAM_PREMATURE_CLOSE: "closed",
  ERR_SOCKET_CLOSED: "closed",
  LL_CLOSED: "closed",
  LL_PROTOCOL: "protocol",
  LL_OVERLOADED: "overloaded",
};

/** Errors that describe the monitor's machine, not the target. */
const LOCAL_CODES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "EADDRNOTAVAIL", "EADDRINUSE"]);

const TLS_CODES = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "HOSTNAME_MISMATCH",
  // The rest of the X.509 verification codes Node reports (crypto_common.cc).
  "CERT_SIGNATURE_FAILURE",
  "CERT_CHAIN_TOO_LONG",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "ERROR_IN_CERT_NOT_BEFORE_FIELD",
  "ERROR_IN_CERT_NOT_AFTER_FIELD",
  "UNABLE_TO_GET_CRL",
  "UNABLE_TO_DECRYPT_CRL_SIGNATURE",
  "CRL_SIGNATURE_FAILURE",
  "CRL_NOT_YET_VALID",
  "CRL_HAS_EXPIRED",
  "ERROR_IN_CRL_LAST_UPDATE_FIELD",
  "ERROR_IN_CRL_NEXT_UPDATE_FIELD",
]);

function codeOf(err: unknown): string | undefined {
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string") return err.code;
  return undefined;
}

/** Maps an error (or its `cause` chain) to a kind, from its code rather than its message. */
export function classifyError(err: unknown): Classified {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = codeOf(current);
    if (code) {
      if (LOCAL_CODES.has(code)) return { kind: "unreachable", errno: code, local: true };
      const kind = BY_CODE[code];
      if (kind) return { kind, errno: code };
      if (TLS_CODES.has(code) || code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_")) {
        return { kind: "tls", errno: code };
      }
      if (code.startsWith("HPE_")) return { kind: "protocol", errno: code };
    }
    current = current && typeof current === "object" && "cause" in current ? current.cause : undefined;
  }
  const code = codeOf(err);
  // An error we cannot place: the peer did something unexpected. Keep the code so the log
  // line still shows what happened; never guess `timeout` or `refused`.
  return code ? { kind: "protocol", errno: code } : { kind: "protocol" };
}
