/**
 * "host:port", "[v6]:port" into parts; undefined when it is not one. Port 0 ("any free
 * port") is accepted only with `allowZero`, for addresses to listen on.
 */
export function parseHostPort(value: string, allowZero = false): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:/\s[\]]+):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535 || (port === 0 && !allowZero)) return undefined;
  return { host: m[1]!, port };
}

/** "host:port", bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A `scheme://host[:port]?query` target: its "host:port" (with `defaultPort` when the URL
 * has none) and its query parameters; undefined when the scheme is another one.
 */
export function parseTargetUrl(
  target: string,
  scheme: string,
  defaultPort?: number,
): { address: string; params: URLSearchParams } | undefined {
  if (!target.toLowerCase().startsWith(`${scheme}://`)) return undefined;
  const url = new URL(target);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = url.port ? Number(url.port) : defaultPort;
  return { address: formatHostPort(host, port ?? 0), params: url.searchParams };
}
