export { createHandler, DEFAULT_MAX_ROWS, LAMBDA_PAYLOAD_LIMIT, type Handler, type HandlerOptions } from "./handler.ts";
export { ServingError } from "./errors.ts";
export { errorResponse, jsonResponse, type ServingRequest, type ServingResponse } from "./http.ts";
export {
  AliasCache,
  DEFAULT_MODEL_CACHE_BYTES,
  fixedModel,
  isPartitioned,
  ModelCache,
  registryModels,
  selectorFromQuery,
  servePartitioned,
  storeFromPorts,
  type AnyServedModel,
  type ServedPartitionedModel,
  type ModelProvider,
  type ModelSelector,
  type ModelStore,
  type RegistryModelsOptions,
  type ServedModel,
} from "./models.ts";
export { bodyFormat, bodyText, parseBody, parseNamedBody, type BodyFormat, type FeatureSchema, type NamedBody, type ParsedBody, type RowMatrix } from "./parse.ts";
export { servingConfig, type ServingConfig } from "./config.ts";
export { DEFAULT_REQUEST_TIMEOUT_MS, hostName, isLoopback, listen, nodeListener, type Listening, type ListenOptions, type NodeAdapterOptions } from "./node.ts";
