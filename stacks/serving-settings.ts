/** The predict function's settings, pure and free of SST globals (like settings.ts) so tests can import them. */
import { integerSetting } from "@canopy/runtime-aws/settings";
import { servingConfig } from "@canopy/serving";

/** The predict function's module and export, like HANDLERS (kept here so the training stacks' list is unchanged). */
export const PREDICT_HANDLER = "packages/functions/src/predict.handler";

export interface ServingSettings {
  /** CANOPY_PREDICT_MEMORY_MB (default 1769: one full vCPU; predictions are single-threaded and latency-bound). */
  memoryMb: number;
  /** CANOPY_PREDICT_TIMEOUT_SECONDS (default 30; 10,000 rows of a 100-tree FM model take well under a second). */
  timeoutSeconds: number;
  /** CANOPY_PREDICT_AUTH: "iam" (default: callers sign with SigV4, as canopy predict --remote does) or "none". */
  authorization: "iam" | "none";
  /** The function's own CANOPY_* serving settings, validated here with the same reader the function uses. */
  environment: Record<string, string>;
}

/** Reads the predict function's settings from the deploy environment; a bad value stops the deploy with one line. */
export function readServingSettings(env: Record<string, string | undefined> = process.env): ServingSettings {
  const auth = env.CANOPY_PREDICT_AUTH?.trim() || "iam";
  if (auth !== "iam" && auth !== "none") throw new Error(`CANOPY_PREDICT_AUTH must be "iam" or "none"; got "${auth}"`);
  const config = servingConfig(env);
  const memoryMb = integerSetting(env, "CANOPY_PREDICT_MEMORY_MB", { default: 1769, min: 128, max: 10_240 });
  // The model cache's budget follows the function's memory (a quarter) unless CANOPY_MODEL_CACHE_MB says otherwise.
  const cacheMb = env.CANOPY_MODEL_CACHE_MB?.trim() ? config.maxModelBytes / (1024 * 1024) : Math.floor(memoryMb / 4);
  return {
    memoryMb,
    timeoutSeconds: integerSetting(env, "CANOPY_PREDICT_TIMEOUT_SECONDS", { default: 30, min: 1, max: 900 }),
    authorization: auth,
    environment: {
      CANOPY_DEFAULT_ALIAS: config.defaultAlias,
      CANOPY_MAX_ROWS: String(config.maxRows),
      CANOPY_ALIAS_TTL_SECONDS: String(config.aliasTtlMs / 1000),
      CANOPY_MODEL_CACHE_MB: String(cacheMb),
      ...(config.maxModels !== undefined ? { CANOPY_MODEL_CACHE: String(config.maxModels) } : {}),
    },
  };
}
