import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Handler } from "./handler.ts";
import { LAMBDA_PAYLOAD_LIMIT } from "./handler.ts";
import { inShort } from "@canopy/core";
import { errorResponse, type ServingRequest, type ServingResponse } from "./http.ts";

export interface NodeAdapterOptions {
  /** Bodies over this are answered 413 without being kept (default 6 MB, as on Lambda). */
  maxBodyBytes?: number;
  /**
   * Host names (the Host header without its port) answered; any other gets 403 before its body is read. Undefined:
   * every host. `listen` on a loopback address defaults to the loopback names, so a web page whose name was
   * re-pointed at 127.0.0.1 (DNS rebinding) cannot read predictions from a browser.
   */
  allowedHosts?: readonly string[];
  /** Called after each response, e.g. for an access log. */
  onResponse?: (request: ServingRequest, response: ServingResponse, ms: number) => void;
}

function tooLarge(size: number | string, limit: number): ServingResponse {
  return errorResponse(413, `request body is ${size} bytes; the limit is ${limit} bytes: send fewer rows per request`);
}

/** The host name of a Host header: lower case, without the port (`[::1]:8080` -> `[::1]`). */
export function hostName(header: string): string {
  const host = header.trim().toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

/** Whether `host` (what a server binds) is a loopback address, reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function send(res: ServerResponse, response: ServingResponse, close = false): void {
  res.writeHead(response.status, { ...response.headers, ...(close ? { connection: "close" } : {}) });
  res.end(response.body);
}

/**
 * The handler as a node:http request listener: the same code as the Lambda function behind a local server.
 * The body is read up to the limit; past it the request is answered 413 at once (a declared Content-Length
 * over the limit is refused before reading) and the connection closed.
 */
export function nodeListener(handler: Handler, options: NodeAdapterOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const limit = options.maxBodyBytes ?? LAMBDA_PAYLOAD_LIMIT;
  const allowed = options.allowedHosts ? new Set(options.allowedHosts.map((h) => hostName(h))) : undefined;
  return (req, res) => {
    const started = performance.now();
    const host = req.headers.host;
    if (allowed && host !== undefined && !allowed.has(hostName(host))) {
      const names = [...allowed].join(", ");
      send(res, errorResponse(403, `host ${inShort(hostName(host))} is not served here (only ${names}; canopy serve --allow-host adds names)`), true);
      req.destroy();
      return;
    }
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      send(res, tooLarge(declared, limit), true);
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        send(res, tooLarge(`over ${limit}`, limit), true);
        res.once("finish", () => req.destroy());
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", () => res.destroy());
    req.on("end", () => {
      if (refused) return;
      const url = new URL(req.url ?? "/", "http://localhost");
      const query: Record<string, string> = {};
      for (const [key, value] of url.searchParams) if (!(key in query)) query[key] = value;
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(req.headers)) if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(", ") : value;
      const body = Buffer.concat(chunks, size);
      const request: ServingRequest = { method: req.method ?? "GET", path: url.pathname, query, headers, body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) };
      handler(request).then(
        (response) => {
          send(res, response);
          options.onResponse?.(request, response, performance.now() - started);
        },
        (err: unknown) => {
          // The handler answers its own errors; this is a bug, but the client still gets one line.
          send(res, errorResponse(500, `internal error: ${err instanceof Error ? err.message : String(err)}`));
        },
      );
    });
  };
}

export interface Listening {
  server: Server;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Node's own limit on a whole request is 300 s: a client trickling its body holds a socket that long. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface ListenOptions extends NodeAdapterOptions {
  port?: number;
  host?: string;
  /** Host names answered besides the defaults (the loopback names when `host` is one). */
  extraHosts?: readonly string[];
  /** Most time for a whole request, headers and body (default 30 s); a slower one is answered 408 and closed. */
  requestTimeoutMs?: number;
}

/**
 * Starts a server on host:port (port 0: any free port) and resolves once it listens. Bound to a loopback address,
 * it answers only requests naming a loopback host (plus `extraHosts`); a slow request times out after
 * `requestTimeoutMs`, checked every second at most.
 */
export function listen(handler: Handler, options: ListenOptions = {}): Promise<Listening> {
  const host = options.host ?? "127.0.0.1";
  const allowedHosts =
    options.allowedHosts ?? (isLoopback(host) ? [...LOOPBACK_NAMES, ...(options.extraHosts ?? [])] : options.extraHosts?.length ? [...LOOPBACK_NAMES, host, ...options.extraHosts] : undefined);
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const server = createServer(
    {
      keepAlive: true,
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 10_000),
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, requestTimeout / 2)),
    },
    nodeListener(handler, { ...options, ...(allowedHosts ? { allowedHosts } : {}) }),
  );
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      const shown = host.includes(":") ? `[${host}]` : host;
      resolve({
        server,
        port,
        url: `http://${shown}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
