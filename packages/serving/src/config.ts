import { checkAliasName, DEFAULT_ALIAS } from "@canopy/core";
import { DEFAULT_MAX_ROWS } from "./handler.ts";

/** What a deployed predict function reads from its environment (the SST app sets these). */
export interface ServingConfig {
  /** CANOPY_DEFAULT_ALIAS: the alias served when a request names no model. Default `production`. */
  defaultAlias: string;
  /** CANOPY_MAX_ROWS: most rows per request. Default 10,000. */
  maxRows: number;
  /** CANOPY_ALIAS_TTL_SECONDS: how long an alias resolution is reused (0: ask every request). Default 10. */
  aliasTtlMs: number;
  /** CANOPY_MODEL_CACHE: models kept loaded per container. Default 2. */
  maxModels: number;
}

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
    maxModels: number(env, "CANOPY_MODEL_CACHE", 2, (n) => Number.isInteger(n) && n >= 1, "an integer >= 1"),
  };
}
