import { readFile, stat } from "node:fs/promises";
import type http from "node:http";
import { createRequire } from "node:module";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The dashboard's files: `web/` of this package at `/`, and uPlot (from its npm package) at
 * `/vendor/`. Everything is served from this process: no CDN, so the page works on an
 * isolated network and shows nothing to third parties.
 */
export const WEB_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".webmanifest": "application/manifest+json",
};

function uplotDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return dirname(require.resolve("uplot/dist/uPlot.iife.min.js"));
  } catch {
    return undefined;
  }
}

const VENDOR: Record<string, () => string | undefined> = {
  "uPlot.iife.min.js": () => uplotDir() && join(uplotDir()!, "uPlot.iife.min.js"),
  "uPlot.min.css": () => uplotDir() && join(uplotDir()!, "uPlot.min.css"),
};

/** The file for a request path, or undefined: never a path outside the served folders. */
export function resolveAsset(parts: readonly string[]): string | undefined {
  if (parts.length === 0) return join(WEB_DIR, "index.html");
  if (parts[0] === "vendor") return parts.length === 2 ? VENDOR[parts[1]!]?.() : undefined;
  if (parts.some((p) => p === ".." || p === "." || p.includes("/") || p.includes("\\") || p.includes("\0")))
    return undefined;
  const file = normalize(join(WEB_DIR, ...parts));
  return file.startsWith(WEB_DIR.endsWith(sep) ? WEB_DIR : WEB_DIR + sep) ? file : undefined;
}

/** Serves the asset for `parts`; false when there is none (the caller answers 404). */
export async function serveAsset(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  parts: readonly string[],
): Promise<boolean> {
  const file = resolveAsset(parts);
  if (!file) return false;
  const type = TYPES[extname(file)];
  if (!type) return false;
  try {
    const s = await stat(file);
    if (!s.isFile()) return false;
    const etag = `"${s.size.toString(36)}-${Math.floor(s.mtimeMs).toString(36)}"`;
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return true;
    }
    const body = await readFile(file);
    res.writeHead(200, {
      "content-type": type,
      "content-length": body.length,
      etag,
      "cache-control": "no-cache", // revalidate (cheap with the etag): a new version shows at once
      "x-content-type-options": "nosniff",
      "content-security-policy":
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
    });
    res.end(req.method === "HEAD" ? undefined : body);
    return true;
  } catch {
    return false;
  }
}
