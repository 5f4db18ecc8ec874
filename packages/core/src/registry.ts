import { Forest } from "@canopy/forest";
import { inShort, RegistryError } from "./errors.ts";
import { isBuildId, keys } from "./keys.ts";
import { isPartitionRunId, parsePartitionedModel } from "./partitioned-model.ts";
import { partitionedInputColumns } from "./partitioned-predict.ts";
import type { BlobStore } from "./ports.ts";
import type { BuildStatus, BuildSummary, MetricsSummary } from "./ledger.ts";

/** The alias a predict endpoint serves when a request names no model. */
export const DEFAULT_ALIAS = "production";

/** Letters, digits, `.`, `_`, `-`; starts with a letter or digit; at most 63 characters. Safe as a file name and a key. */
const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * An alias (e.g. `production`) pointing at one build's model: the model versions are builds, aliases pick one.
 * `buildId` may also be a partitioned run's `p-` id: the alias then serves its partitioned model.
 */
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
      `invalid alias ${inShort(name)}: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      "invalid",
    );
  return name;
}

export const registryRules = {
  /**
   * The one promotion rule: the alias name is valid, the build exists and is COMPLETED (only a completed build
   * has a model). `build` is the ledger's counter of `buildId`, or undefined. Returns the record to store.
   * A partitioned run (`p-` id) follows the same rule: its ledger record completes once its model is written.
   */
  promote(build: Pick<BuildSummary, "status"> | undefined, buildId: string, alias: string, previous: string | undefined, now: number): AliasRecord {
    checkAliasName(alias);
    if (!isBuildId(buildId) && !isPartitionRunId(buildId)) throw new RegistryError(`invalid build id ${inShort(buildId)} (expected b- and 16 hex digits)`, "invalid");
    const what = isPartitionRunId(buildId) ? "partitioned run" : "build";
    if (!build) throw new RegistryError(`${what} ${buildId} not found`, "not-found");
    if (build.status !== "COMPLETED")
      throw new RegistryError(`${what} ${buildId} is ${build.status}; only a COMPLETED ${what} can be promoted`, "not-completed");
    return { alias, buildId, promotedAt: now, ...(previous !== undefined ? { previous } : {}) };
  },
};

/** How `next`'s feature names differ from `current`'s, in short; undefined when they are the same, in the same order. */
export function featureChange(current: readonly string[], next: readonly string[]): string | undefined {
  if (current.length === next.length && current.every((f, i) => f === next[i])) return undefined;
  const list = (names: string[]) => `${names.slice(0, 5).map((n) => inShort(n, 40)).join(", ")}${names.length > 5 ? `, … (${names.length})` : ""}`;
  const lacks = current.filter((f) => !next.includes(f));
  const adds = next.filter((f) => !current.includes(f));
  const parts = [...(lacks.length ? [`lacks ${list(lacks)}`] : []), ...(adds.length ? [`adds ${list(adds)}`] : [])];
  return parts.length > 0 ? parts.join(" and ") : "has the same features in another order (rows are read in feature order)";
}

/**
 * The feature names of a build's model in the blob store; undefined when it has none (yet). A partitioned run's
 * are its manifest's features and, last, the column rows are routed by (a request must carry it).
 */
export async function modelFeatures(blobs: Pick<BlobStore, "get">, buildId: string): Promise<string[] | undefined> {
  if (isPartitionRunId(buildId)) {
    const key = keys.partitionedModel(buildId);
    const manifest = await blobs.get(key);
    return manifest ? partitionedInputColumns(parsePartitionedModel(new TextDecoder().decode(manifest), key)) : undefined;
  }
  if (!isBuildId(buildId)) return undefined;
  const bytes = await blobs.get(keys.model(buildId));
  return bytes ? Forest.load(bytes).featureNames : undefined;
}

/**
 * A promotion that would break the alias's clients: it points at another build whose model reads other
 * features, so every request made for the current model would be refused (400) by the new one. Refused unless
 * forced; a build without a model yet is left to the promotion rule (registryRules) to refuse.
 */
export async function checkPromotion(
  registry: Pick<ModelRegistry, "resolve">,
  features: (buildId: string) => Promise<readonly string[] | undefined>,
  buildId: string,
  alias: string,
): Promise<void> {
  const current = await registry.resolve(alias);
  if (current === undefined || current === buildId) return;
  const [was, next] = await Promise.all([features(current), features(buildId)]);
  if (!was || !next) return;
  const change = featureChange(was, next);
  if (change)
    throw new RegistryError(
      `alias ${alias} serves ${current}; ${buildId}'s model ${change}, so requests made for ${alias} would be refused: use --force to promote it anyway`,
      "incompatible",
    );
}

/** One row of `canopy models`: a build (or partitioned run) with what the ledger, its report and the registry say about it. */
export interface ModelListing {
  buildId: string;
  status: BuildStatus;
  createdAt: number;
  updatedAt: number;
  /** From the build's report: trees in the model and its size in bytes (COMPLETED builds only). */
  trees?: number;
  bytes?: number;
  /** A partitioned run: its partition models (fallback included); `bytes` is their sum, `trees` each one's. */
  partitions?: number;
  metrics: MetricsSummary | null;
  /** Aliases pointing at this build, sorted. */
  aliases: string[];
  tags: Record<string, string>;
  reason?: string;
}

/**
 * Builds (and partitioned runs) newest first, each with its aliases and model size. `model(buildId)` is the report's
 * model entry, if any; for a partitioned run, its partitions' model sizes summed and their count.
 */
export function listModels(
  builds: BuildSummary[],
  aliases: AliasRecord[],
  model: (buildId: string) => { trees?: number; bytes: number; partitions?: number } | undefined,
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
        ...(m ? { ...(m.trees !== undefined ? { trees: m.trees } : {}), bytes: m.bytes, ...(m.partitions !== undefined ? { partitions: m.partitions } : {}) } : {}),
        metrics: r.result?.metrics ?? null,
        aliases: (byBuild.get(r.buildId) ?? []).sort(),
        tags: r.tags,
        ...(r.reason !== undefined ? { reason: r.reason } : {}),
      };
    });
}
