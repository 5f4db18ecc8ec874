/** The predict function's settings, pure and free of SST globals (like settings.ts) so tests can import them. */
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

function integer(env: Record<string, string | undefined>, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be an integer from ${min} to ${max}; got "${raw}"`);
  return value;
}

/** Reads the predict function's settings from the deploy environment; a bad value stops the deploy with one line. */
export function readServingSettings(env: Record<string, string | undefined> = process.env): ServingSettings {
  const auth = env.CANOPY_PREDICT_AUTH?.trim() || "iam";
  if (auth !== "iam" && auth !== "none") throw new Error(`CANOPY_PREDICT_AUTH must be "iam" or "none"; got "${auth}"`);
  const config = servingConfig(env);
  return {
    memoryMb: integer(env, "CANOPY_PREDICT_MEMORY_MB", 1769, 128, 10_240),
    timeoutSeconds: integer(env, "CANOPY_PREDICT_TIMEOUT_SECONDS", 30, 1, 900),
    authorization: auth,
    environment: {
      CANOPY_DEFAULT_ALIAS: config.defaultAlias,
      CANOPY_MAX_ROWS: String(config.maxRows),
      CANOPY_ALIAS_TTL_SECONDS: String(config.aliasTtlMs / 1000),
      CANOPY_MODEL_CACHE: String(config.maxModels),
    },
  };
}
