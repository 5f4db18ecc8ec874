import { cutLine } from "@canopy/core";
/**
 * The transport-neutral request and response the handler works on. The Lambda adapter (function URL events)
 * and the node:http adapter (`canopy serve`) both convert to and from these, so they run the same code.
 */
export interface ServingRequest {
  /** Upper case: GET, POST, ... */
  method: string;
  /** The URL path without the query, e.g. "/predict". */
  path: string;
  /** Query parameters (first value of each). */
  query: Record<string, string | undefined>;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
  /** The raw body; a string is taken as UTF-8 text. */
  body?: Uint8Array | string;
}

export interface ServingResponse {
  status: number;
  headers: Record<string, string>;
  /** JSON text. */
  body: string;
}

// Its home is errors.ts; re-exported here for the modules that take it with the request types.
export { ServingError } from "./errors.ts";

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): ServingResponse {
  return {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
    body: JSON.stringify(body),
  };
}

/** `{"error": message}`, the message cut short whatever it quotes: an error answer never grows with the request. */
export function errorResponse(status: number, message: string, headers: Record<string, string> = {}): ServingResponse {
  return jsonResponse(status, { error: cutLine(message) }, headers);
}
