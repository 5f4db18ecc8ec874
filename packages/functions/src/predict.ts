import type { Logger } from "@aws-lambda-powertools/logger";
import { errorLine, type Clock } from "@canopy/core";
import { DynamoModelRegistry } from "@canopy/runtime-aws";
import {
  createHandler,
  errorResponse,
  registryModels,
  servingConfig,
  storeFromPorts,
  type Handler,
  type ModelStore,
  type ServingRequest,
  type ServingResponse,
} from "@canopy/serving";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { resourceName, resources } from "./resources.ts";
import { functionLogger } from "./runtime.ts";

export interface PredictDeps {
  /** Where aliases and models come from. Default: the table (aliases) and bucket (models) linked to the function. */
  store?: () => Promise<ModelStore>;
  logger?: Logger;
  clock?: Clock;
  /** Serving settings (CANOPY_DEFAULT_ALIAS, CANOPY_MAX_ROWS, CANOPY_ALIAS_TTL_SECONDS, CANOPY_MODEL_CACHE_MB, CANOPY_MODEL_CACHE). Default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** A function URL event (payload format 2.0) as the serving package's request. */
export function requestFromEvent(event: APIGatewayProxyEventV2): ServingRequest {
  const query: Record<string, string | undefined> = { ...(event.queryStringParameters ?? {}) };
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
  const body = event.body === undefined ? undefined : event.isBase64Encoded ? new Uint8Array(Buffer.from(event.body, "base64")) : event.body;
  return { method: event.requestContext.http.method, path: event.rawPath || event.requestContext.http.path || "/", query, headers, body };
}

export function resultFromResponse(response: ServingResponse): APIGatewayProxyStructuredResultV2 {
  return { statusCode: response.status, headers: response.headers, body: response.body, isBase64Encoded: false };
}

/** Aliases from the builds table, models from the bucket: the only two resources the function is linked to. */
async function defaultStore(): Promise<ModelStore> {
  return storeFromPorts(new DynamoModelRegistry(await resourceName("table")), await resources.blobs());
}

/**
 * The predict function behind a function URL. Everything is built on the first invocation and kept for the
 * container's life: the store's clients, the loaded models (an LRU bounded in bytes, CANOPY_MODEL_CACHE_MB; a
 * partitioned model's partitions load as rows ask for them) and alias resolutions
 * (CANOPY_ALIAS_TTL_SECONDS), so a warm invocation reads nothing from S3 or DynamoDB until an alias expires,
 * and a promotion is served within the TTL without a redeploy. A failed setup is retried on the next call.
 */
export function createPredictFunction(deps: PredictDeps = {}) {
  const logger = deps.logger ?? functionLogger("predict");
  let ready: Promise<Handler> | undefined;
  const setup = async (): Promise<Handler> => {
    const config = servingConfig(deps.env ?? process.env);
    const store = await (deps.store ?? defaultStore)();
    const models = registryModels(store, {
      defaultSelector: { alias: config.defaultAlias },
      aliasTtlMs: config.aliasTtlMs,
      ...(config.maxModels !== undefined ? { maxModels: config.maxModels } : {}),
      maxModelBytes: config.maxModelBytes,
      ...(deps.clock ? { clock: deps.clock } : {}),
      onStale: (alias, err) => logger.warn("alias refresh failed; serving the previous resolution", { alias, error: errorLine(err) }),
    });
    return createHandler({
      models,
      maxRows: config.maxRows,
      onError: (err, request) => logger.error("predict failed", { method: request.method, path: request.path, error: errorLine(err) }),
    });
  };

  return async (event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    logger.addContext(context);
    const started = performance.now();
    let handler: Handler;
    try {
      handler = await (ready ??= setup().catch((err: unknown) => {
        ready = undefined;
        throw err;
      }));
    } catch (err) {
      logger.error("predict function setup failed", { error: errorLine(err) });
      return resultFromResponse(errorResponse(500, `predict function not configured: ${errorLine(err)}`));
    }
    const request = requestFromEvent(event);
    const response = await handler(request);
    const where = { method: request.method, path: request.path, status: response.status, ms: Math.round(performance.now() - started), build: response.headers["x-canopy-build"] };
    // One line per request would be most of the bill at high rates: successes only at debug level.
    if (response.status < 400) logger.debug("predict", where);
    else if (response.status < 500) logger.info("predict refused", { ...where, error: (JSON.parse(response.body) as { error?: string }).error });
    return resultFromResponse(response);
  };
}

export const handler = createPredictFunction();
