import { RegistryError } from "./errors.ts";
import { isBuildId } from "./keys.ts";
import type { BuildStatus, BuildSummary, MetricsSummary } from "./ledger.ts";

/** The alias a predict endpoint serves when a request names no model. */
export const DEFAULT_ALIAS = "production";

/** Letters, digits, `.`, `_`, `-`; starts with a letter or digit; at most 63 characters. Safe as a file name and a key. */
const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** An alias (e.g. `production`) pointing at one build's model: the model versions are builds, aliases pick one. */
export interface AliasRecord {
  alias: string;
  buildId: string;
  /** Epoch ms. */
  promotedAt: number;
  /** What the alias pointed at before this promotion, for a rollback; absent on the first promotion. */
  previous?: string;
}

/**
 * Model aliases (a directory on disk, items in the builds table on DynamoDB, memory). `promote` follows
 * `registryRules`; run `describeRegistryContract` from `@canopy/core/testing` against any implementation.
 */
export interface ModelRegistry {
  /** Points `alias` at a COMPLETED build (RegistryError otherwise) and returns the new record. */
  promote(buildId: string, alias: string): Promise<AliasRecord>;
  /** The build an alias points at, or undefined if it is not set. Throws RegistryError on an invalid name. */
  resolve(alias: string): Promise<string | undefined>;
  /** Every alias, sorted by name. */
  list(): Promise<AliasRecord[]>;
}

export function isAliasName(name: string): boolean {
  return ALIAS.test(name);
}

export function checkAliasName(name: string): string {
  if (!ALIAS.test(name))
    throw new RegistryError(
      `invalid alias ${JSON.stringify(name)}: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      "invalid",
    );
  return name;
}

export const registryRules = {
  /**
   * The one promotion rule: the alias name is valid, the build exists and is COMPLETED (only a completed build
   * has a model). `build` is the ledger's counter of `buildId`, or undefined. Returns the record to store.
   */
  promote(build: Pick<BuildSummary, "status"> | undefined, buildId: string, alias: string, previous: string | undefined, now: number): AliasRecord {
    checkAliasName(alias);
    if (!isBuildId(buildId)) throw new RegistryError(`invalid build id ${JSON.stringify(buildId)} (expected b- and 16 hex digits)`, "invalid");
    if (!build) throw new RegistryError(`build ${buildId} not found`, "not-found");
    if (build.status !== "COMPLETED")
      throw new RegistryError(`build ${buildId} is ${build.status}; only a COMPLETED build can be promoted`, "not-completed");
    return { alias, buildId, promotedAt: now, ...(previous !== undefined ? { previous } : {}) };
  },
};

/** One row of `canopy models`: a build with what the ledger, its report and the registry say about it. */
export interface ModelListing {
  buildId: string;
  status: BuildStatus;
  createdAt: number;
  updatedAt: number;
  /** From the build's report: trees in the model and its size in bytes (COMPLETED builds only). */
  trees?: number;
  bytes?: number;
  metrics: MetricsSummary | null;
  /** Aliases pointing at this build, sorted. */
  aliases: string[];
  tags: Record<string, string>;
  reason?: string;
}

/** Builds newest first, each with its aliases and model size. `model(buildId)` is the report's model entry, if any. */
export function listModels(
  builds: BuildSummary[],
  aliases: AliasRecord[],
  model: (buildId: string) => { trees: number; bytes: number } | undefined,
): ModelListing[] {
  const byBuild = new Map<string, string[]>();
  for (const a of aliases) byBuild.set(a.buildId, [...(byBuild.get(a.buildId) ?? []), a.alias]);
  return [...builds]
    .sort((a, b) => b.createdAt - a.createdAt || a.buildId.localeCompare(b.buildId))
    .map((r) => {
      const m = r.status === "COMPLETED" ? model(r.buildId) : undefined;
      return {
        buildId: r.buildId,
        status: r.status,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt,
        ...(m ? { trees: m.trees, bytes: m.bytes } : {}),
        metrics: r.result?.metrics ?? null,
        aliases: (byBuild.get(r.buildId) ?? []).sort(),
        tags: r.tags,
        ...(r.reason !== undefined ? { reason: r.reason } : {}),
      };
    });
}
