import { checkAliasName, DEFAULT_ALIAS } from "@canopy/core";
import { DEFAULT_MAX_ROWS } from "./handler.ts";
import { DEFAULT_MODEL_CACHE_BYTES } from "./models.ts";

/** What a deployed predict function reads from its environment (the SST app sets these). */
export interface ServingConfig {
  /** CANOPY_DEFAULT_ALIAS: the alias served when a request names no model. Default `production`. */
  defaultAlias: string;
  /** CANOPY_MAX_ROWS: most rows per request. Default 10,000. */
  maxRows: number;
  /** CANOPY_ALIAS_TTL_SECONDS: how long an alias resolution is reused (0: ask every request). Default 10. */
  aliasTtlMs: number;
  /** CANOPY_MODEL_CACHE: most models kept loaded per container (a partition counts one). Default: no count limit, only the byte budget. */
  maxModels?: number;
  /**
   * CANOPY_MODEL_CACHE_MB: the model cache's budget, the loaded models' file sizes summed (single models and
   * partitions alike). Default: a quarter of the function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), else 256 MB:
   * a decoded forest takes about twice its file in memory once it has predicted (README: measured 2.1-2.3x), and
   * requests need room too.
   */
  maxModelBytes: number;
}

const MB = 1024 * 1024;

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, check: (n: number) => boolean, expected: string): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || !check(value)) throw new Error(`${name} must be ${expected}; got "${raw}"`);
  return value;
}

/** Reads the serving settings; a bad value throws one line naming the variable. */
export function servingConfig(env: NodeJS.ProcessEnv = process.env): ServingConfig {
  const alias = env.CANOPY_DEFAULT_ALIAS?.trim() || DEFAULT_ALIAS;
  try {
    checkAliasName(alias);
  } catch (err) {
    throw new Error(`CANOPY_DEFAULT_ALIAS: ${(err as Error).message}`);
  }
  return {
    defaultAlias: alias,
    maxRows: number(env, "CANOPY_MAX_ROWS", DEFAULT_MAX_ROWS, (n) => Number.isInteger(n) && n >= 1, "an integer >= 1"),
    aliasTtlMs: number(env, "CANOPY_ALIAS_TTL_SECONDS", 10, (n) => n >= 0, "a number of seconds >= 0") * 1000,
    ...(env.CANOPY_MODEL_CACHE?.trim() ? { maxModels: number(env, "CANOPY_MODEL_CACHE", 0, (n) => Number.isInteger(n) && n >= 1, "an integer >= 1") } : {}),
    maxModelBytes: Math.round(number(env, "CANOPY_MODEL_CACHE_MB", defaultCacheMb(env), (n) => n > 0, "a number of megabytes > 0") * MB),
  };
}

/** A quarter of the Lambda function's memory when it runs on one, else DEFAULT_MODEL_CACHE_BYTES (in MB). */
function defaultCacheMb(env: NodeJS.ProcessEnv): number {
  const memory = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  return Number.isFinite(memory) && memory > 0 ? memory / 4 : DEFAULT_MODEL_CACHE_BYTES / MB;
}
