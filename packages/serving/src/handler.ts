import { errorLine, inShort, policyOf } from "@canopy/core";
import { printable } from "@canopy/forest";
import { ServingError } from "./errors.ts";
import { errorResponse, jsonResponse, type ServingRequest, type ServingResponse } from "./http.ts";
import { isPartitioned, selectorFromQuery, type AnyServedModel, type ModelProvider, type ServedModel, type ServedPartitionedModel } from "./models.ts";
import { bodyText, parseBody, parseNamedBody } from "./parse.ts";

/** Lambda's limit on a synchronous request payload (function URLs included): 6 MB. */
export const LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024;
export const DEFAULT_MAX_ROWS = 10_000;

export interface HandlerOptions {
  models: ModelProvider;
  /**
   * Most rows in one request (default 10,000). More is refused with 413, like an oversized body: both mean
   * "split the request", and clients (canopy predict --remote) handle the two alike.
   */
  maxRows?: number;
  /** Largest body accepted, in bytes (default 6 MB, Lambda's own limit). */
  maxBodyBytes?: number;
  /** Called with every error answered with a 5xx, for logging. */
  onError?: (err: unknown, request: ServingRequest) => void;
}

export type Handler = (request: ServingRequest) => Promise<ServingResponse>;

const PREDICT_PATHS = new Set(["/", "/predict"]);

function partitionedInfo(m: ServedPartitionedModel) {
  const p = m.model;
  return {
    buildId: m.buildId,
    alias: m.alias ?? null,
    task: p.task,
    partitionBy: p.partitionBy,
    partitions: Object.keys(p.partitions).length,
    fallback: p.fallback !== undefined,
  };
}

function modelInfo(m: ServedModel) {
  const f = m.forest;
  return {
    buildId: m.buildId ?? null,
    alias: m.alias ?? null,
    task: f.task,
    label: f.labelName,
    trees: f.nTrees,
  };
}

function modelHeaders(m: AnyServedModel): Record<string, string> {
  return m.buildId ? { "x-canopy-build": m.buildId } : {};
}

/** `?proba=1|true|0|false` (or another such flag), undefined when absent. */
function probaFromQuery(value: string | undefined, name = "proba"): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === "1" || value === "true" || value === "") return true;
  if (value === "0" || value === "false") return false;
  throw new ServingError(400, `?${name} must be 1, true, 0 or false; got ${inShort(value)}`);
}

/** A request path for a message: escaped and cut short (a client chooses it, and a URL can be long). */
function shortPath(path: string): string {
  return printable(path.length > 80 ? `${path.slice(0, 80)}…` : path);
}

function byteLength(body: Uint8Array | string | undefined): number {
  if (body === undefined) return 0;
  return typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.byteLength;
}

/**
 * The predict endpoint, transport-neutral:
 * - `POST /` or `POST /predict`: JSON `{"rows": [[...]]}` / `{"records": [{...}]}` or CSV with a header; predictions
 *   (labels or regression values), and with `?proba=1` or `"proba": true` class probabilities too.
 * - `GET /`: the model a request without ?model/?alias would get, and the limits.
 * A partitioned model (`?model=p-…`, or an alias pointing at one) takes records or CSV and routes each row by its
 * partition value (see predictPartitioned for unknown values).
 * Model: `?model=<build-id|p-id>` or `?alias=<name>`, else the provider's default. Errors are JSON `{"error": "..."}`
 * with 400 (bad input), 404 (unknown model, alias or route), 405, 413 (body or row count over the limit), 415.
 */
export function createHandler(options: HandlerOptions): Handler {
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  const maxBodyBytes = options.maxBodyBytes ?? LAMBDA_PAYLOAD_LIMIT;
  const { models } = options;

  async function predict(request: ServingRequest): Promise<ServingResponse> {
    const selector = selectorFromQuery(request.query);
    const queryProba = probaFromQuery(request.query.proba);
    const size = byteLength(request.body);
    if (size > maxBodyBytes)
      throw new ServingError(413, `request body is ${size} bytes; the limit is ${maxBodyBytes} bytes: send fewer rows per request`);
    const text = request.body === undefined ? "" : bodyText(request.body);
    if (text.trim() === "")
      throw new ServingError(400, 'empty body: send JSON {"rows": [[...], ...]} or {"records": [{"feature": value, ...}, ...]}, or CSV with a header row');
    const model = await models.get(selector);
    if (isPartitioned(model)) return predictPartitioned(model, text, request, queryProba);
    const { forest } = model;
    const parsed = parseBody(text, request.headers["content-type"], forest, maxRows);
    const proba = queryProba ?? parsed.proba ?? false;
    if (proba && forest.task !== "classification") throw new ServingError(400, "proba needs a classification model; this one is regression");

    const out: Record<string, unknown> = { model: modelInfo(model) };
    if (proba) {
      const k = forest.classes.length;
      const p = forest.predictProba(parsed.X);
      const rows: number[][] = new Array(parsed.X.nRows);
      const predictions: string[] = new Array(parsed.X.nRows);
      for (let r = 0; r < parsed.X.nRows; r++) {
        const row = Array.from(p.subarray(r * k, r * k + k));
        rows[r] = row;
        let best = 0;
        for (let c = 1; c < k; c++) if (row[c] > row[best]) best = c; // the engine's argmax: ties go to the first class
        predictions[r] = forest.classes[best];
      }
      out.predictions = predictions;
      out.classes = forest.classes;
      out.probabilities = rows;
    } else {
      const predictions = forest.predict(parsed.X);
      out.predictions = Array.isArray(predictions) ? predictions : Array.from(predictions);
    }
    return jsonResponse(200, out, modelHeaders(model));
  }

  /**
   * A partitioned model: records or CSV, each row routed by its partition value. A value no model serves refuses
   * the whole request (400 naming it, nothing predicted) unless `?skip_unknown=1` / `"skip_unknown": true`:
   * then its prediction is null and `errors` lists it (`{"row": index, "value": ..., "error": ...}`).
   */
  async function predictPartitioned(model: ServedPartitionedModel, text: string, request: ServingRequest, queryProba: boolean | undefined): Promise<ServingResponse> {
    const parsed = parseNamedBody(text, request.headers["content-type"], maxRows, model.model.partitionBy);
    const proba = queryProba ?? parsed.proba ?? false;
    const skipUnknown = probaFromQuery(request.query.skip_unknown, "skip_unknown") ?? parsed.skipUnknown ?? false;
    let result: Awaited<ReturnType<typeof model.predictor.predict>>;
    try {
      result = await model.predictor.predict(parsed.rows, { proba, skipUnknown });
    } catch (err) {
      // An unknown value, a cell a partition's schema cannot read: the request's, answered with the message alone.
      if (!(err instanceof ServingError) && policyOf(err) === "input") throw new ServingError(400, (err as Error).message);
      throw err;
    }
    const out: Record<string, unknown> = { model: partitionedInfo(model), label: result.label ?? null, predictions: result.predictions };
    if (proba) {
      out.classes = result.classes;
      out.probabilities = result.probabilities;
    }
    if (result.unknown.length > 0) {
      const by = printable(model.model.partitionBy);
      out.errors = result.unknown.map((u) => ({
        row: u.row,
        value: u.value === undefined ? null : u.value.length > 100 ? `${u.value.slice(0, 100)}…` : u.value, // the request's own cell, in short
        error: u.value === undefined ? `no ${by} value, and no fallback model` : `no model for ${by} ${inShort(u.value, 40)}, and no fallback model`,
      }));
    }
    return jsonResponse(200, out, modelHeaders(model));
  }

  async function summary(request: ServingRequest): Promise<ServingResponse> {
    const model = await models.get(selectorFromQuery(request.query));
    let described: Record<string, unknown>;
    if (isPartitioned(model)) {
      const p = model.model;
      described = { ...partitionedInfo(model), features: p.features, skipped: p.skipped.length };
    } else {
      const f = model.forest;
      described = { ...modelInfo(model), classes: f.classes, features: f.featureNames, ...(f.schema ? { schema: f.schema } : {}) };
    }
    return jsonResponse(
      200,
      {
        status: "ok",
        model: { ...described, bytes: model.bytes, loadedAt: new Date(model.loadedAt).toISOString(), source: model.source },
        defaultModel: models.defaultSelector,
        limits: { maxRows, maxBodyBytes },
      },
      modelHeaders(model),
    );
  }

  return async (request) => {
    try {
      const method = request.method.toUpperCase();
      const path = request.path.length > 1 ? request.path.replace(/\/+$/, "") : request.path;
      if (!PREDICT_PATHS.has(path)) throw new ServingError(404, `no route ${method} ${shortPath(request.path)}: POST / or /predict to predict, GET / for the model summary`);
      if (method === "POST") return await predict(request);
      if (method === "GET" && path === "/") return await summary(request);
      const allow = path === "/" ? "GET, POST" : "POST";
      return errorResponse(405, `${method} ${shortPath(path)} is not allowed; use ${allow}`, { allow });
    } catch (err) {
      if (err instanceof ServingError) {
        if (err.status >= 500) options.onError?.(err, request);
        return errorResponse(err.status, err.message);
      }
      // Input errors (the engine's, should the parser let one through; a bad alias name) are the client's; the rest is ours.
      if (policyOf(err) === "input") return errorResponse(400, errorLine(err));
      options.onError?.(err, request);
      return errorResponse(500, `internal error: ${errorLine(err)}`);
    }
  };
}
