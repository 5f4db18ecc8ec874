export { main, program } from "./main.ts";
export { buildSpec, specInput, FLAG_FOR_FIELD, type SpecFlags } from "./spec.ts";
export { readFeatureCsv, csvField, type FeatureMatrix } from "./features.ts";
export { loadModelRef, type LoadedModel } from "./model.ts";
export { EXIT_FAILED, EXIT_OK, EXIT_USAGE, FailedError, UsageError } from "./errors.ts";
