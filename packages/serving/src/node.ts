import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Handler } from "./handler.ts";
import { LAMBDA_PAYLOAD_LIMIT } from "./handler.ts";
import { errorResponse, type ServingRequest, type ServingResponse } from "./http.ts";

export interface NodeAdapterOptions {
  /** Bodies over this are answered 413 without being kept (default 6 MB, as on Lambda). */
  maxBodyBytes?: number;
  /** Called after each response, e.g. for an access log. */
  onResponse?: (request: ServingRequest, response: ServingResponse, ms: number) => void;
}

function tooLarge(size: number | string, limit: number): ServingResponse {
  return errorResponse(413, `request body is ${size} bytes; the limit is ${limit} bytes: send fewer rows per request`);
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
  return (req, res) => {
    const started = performance.now();
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

/** Starts a server on host:port (port 0: any free port) and resolves once it listens. */
export function listen(handler: Handler, options: NodeAdapterOptions & { port?: number; host?: string } = {}): Promise<Listening> {
  const host = options.host ?? "127.0.0.1";
  const server = createServer({ keepAlive: true }, nodeListener(handler, options));
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
