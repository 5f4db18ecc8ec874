import { z } from "zod";
import { inShort, InputError } from "./errors.ts";

/**
 * A partitioned model (`--partition-by`): one ordinary build per value of a column, served as one model.
 * The artifact is a manifest over per-partition builds; each partition's model stays `builds/<id>/model.canopy`
 * (so caches, digests and `inspect` of one partition are a build's), and a server loads a partition's forest only
 * when a row asks for it. This file is the contract between the run that writes it and everything that reads it.
 */
export const PARTITIONED_MODEL_FORMAT = "canopy-partitioned-model";
export const PARTITIONED_MODEL_VERSION = 1;

/** A partitioned run's id: `p-` and 16 hex digits (its ledger record is a fan-in whose members are builds). */
const PARTITION_RUN_ID = /^p-[0-9a-f]{16}$/;
export function isPartitionRunId(id: string): boolean {
  return PARTITION_RUN_ID.test(id);
}

/**
 * The key a row is routed by: the cell as text, trimmed; a cell that reads as a finite number is written as
 * JavaScript writes that number, so CSV `"07"`, `"7.0"` and JSON `7` reach one partition. Empty or missing -> undefined
 * (such a row has no partition: the fallback serves it, or it is refused like an unknown value).
 */
export function partitionKey(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : undefined;
  if (typeof value === "boolean") return String(value);
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  const n = Number(text);
  return Number.isFinite(n) && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? String(n) : text;
}

const buildRef = z.object({
  /** The build that trained it (`builds/<id>/model.canopy`); in an exported directory, `file` says where it is. */
  build: z.string().regex(/^b-[0-9a-f]{16}$/),
  /** Relative path of the model file in an exported directory (`partitions/00012.canopy`); absent in a store. */
  file: z.string().regex(/^[A-Za-z0-9._/-]+$/).refine((f) => !f.split("/").includes(".."), { error: "must stay inside the directory" }).optional(),
  /** SHA-256 (hex) and size of model.canopy: a loader refuses a file that is not this one. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().positive(),
  /** Rows of the partition (training + held out). */
  rows: z.number().int().nonnegative(),
});

export const partitionedModelSchema = z.object({
  format: z.literal(PARTITIONED_MODEL_FORMAT),
  version: z.literal(PARTITIONED_MODEL_VERSION),
  /** The run that trained it. */
  runId: z.string().regex(PARTITION_RUN_ID),
  /** The column rows are routed by; it is not a feature of any partition's model. */
  partitionBy: z.string().min(1),
  /** Every partition model's features, in order (the same for all: the table's columns without label and partitionBy). */
  features: z.array(z.string()),
  task: z.enum(["classification", "regression"]),
  /** partitionKey(value) -> its model. */
  partitions: z.record(z.string(), buildRef.extend({ value: z.string() })),
  /** `--fallback global`: the model trained on all rows, serving values without a partition model. */
  fallback: buildRef.optional(),
  /** Partitions not trained (fewer rows than --min-partition-rows), with their row counts. */
  skipped: z.array(z.object({ value: z.string(), rows: z.number().int().nonnegative(), reason: z.string() })),
});

export type PartitionedModel = z.infer<typeof partitionedModelSchema>;
export type PartitionModelRef = z.infer<typeof buildRef>;

/** Reads a partitioned model's manifest (JSON text), checking its format name and version first. `source` names it in errors. */
export function parsePartitionedModel(text: string, source: string): PartitionedModel {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InputError(`${source}: not a partitioned model (not JSON)`);
  }
  const format = (json as { format?: unknown })?.format;
  if (format !== PARTITIONED_MODEL_FORMAT) throw new InputError(`${source}: not a partitioned model (format ${inShort(format, 40)}, expected ${PARTITIONED_MODEL_FORMAT})`);
  const version = (json as { version?: unknown }).version;
  if (version !== PARTITIONED_MODEL_VERSION) throw new InputError(`${source}: partitioned model version ${inShort(version, 20)} is not supported (this canopy reads version ${PARTITIONED_MODEL_VERSION})`);
  const parsed = partitionedModelSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(`${source}: invalid partitioned model: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  for (const [key, ref] of Object.entries(parsed.data.partitions)) {
    if (partitionKey(ref.value) !== key) throw new InputError(`${source}: invalid partitioned model: partition ${inShort(key, 40)} is keyed unlike its value`);
  }
  return parsed.data;
}
