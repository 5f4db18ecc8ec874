import type { Command } from "commander";
import type { BlobStore, BuildSummary, ModelRegistry } from "@canopy/core";
import type { ResourceName } from "@canopy/runtime-aws/names";
import { addAwsOptions, type AwsTargetOptions } from "./aws-target.ts";
import { UsageError } from "./errors.ts";

/** Where promote and models work: the local store (default) or the deployed app's table (and bucket). */
export interface TargetOptions extends AwsTargetOptions {
  root?: string;
  /** The deployed app, resources from CANOPY_* variables or SST links (as publish and status find them). */
  aws?: boolean;
}

export interface RegistryTarget {
  /** For messages: ".canopy" or "table canopy-builds". */
  where: string;
  registry: ModelRegistry;
  /** Where the builds' models are (an empty store when no bucket is configured). */
  blobs: Pick<BlobStore, "get">;
  builds(): Promise<BuildSummary[]>;
  /** The model entry of a build's report.json (trees, bytes), or a partitioned run's sizes from its manifest, if it can be read. */
  modelOf(buildId: string): Promise<{ trees?: number; bytes: number; partitions?: number } | undefined>;
  /** AWS errors that mean "wrong place" as one line; others unchanged. */
  explain(err: unknown): unknown;
  close(): Promise<void>;
}

/** --root for the local store (the default), or --aws / --endpoint / resource flags for the AWS app. */
export function addTargetOptions(command: Command, names: readonly ResourceName[]): Command {
  command
    .option("--root <dir>", "the local store of canopy train (default .canopy)")
    .option("--aws", "the deployed app: resources from the flags below, CANOPY_* variables or SST links");
  return addAwsOptions(command, names);
}

function modelEntry(json: unknown): { trees: number; bytes: number } | undefined {
  const model = (json as { model?: { trees?: unknown; bytes?: unknown } } | null)?.model;
  return typeof model?.trees === "number" && typeof model.bytes === "number" ? { trees: model.trees, bytes: model.bytes } : undefined;
}

async function reportModel(get: Promise<Uint8Array | undefined>): Promise<{ trees: number; bytes: number } | undefined> {
  try {
    const bytes = await get;
    return bytes ? modelEntry(JSON.parse(new TextDecoder().decode(bytes))) : undefined;
  } catch {
    return undefined; // a missing or unreadable report only leaves the size out
  }
}

/** A partitioned run's model size: its partitions' (and fallback's) model files summed, and how many partitions. */
async function partitionedSize(blobs: Pick<BlobStore, "get">, runId: string): Promise<{ bytes: number; partitions: number } | undefined> {
  const { keys, parsePartitionedModel } = await import("@canopy/core");
  try {
    const bytes = await blobs.get(keys.partitionedModel(runId));
    if (!bytes) return undefined;
    const model = parsePartitionedModel(new TextDecoder().decode(bytes), keys.partitionedModel(runId));
    const refs = [...Object.values(model.partitions), ...(model.fallback ? [model.fallback] : [])];
    return { bytes: refs.reduce((sum, r) => sum + r.bytes, 0), partitions: Object.keys(model.partitions).length };
  } catch {
    return undefined; // an unreadable manifest only leaves the size out
  }
}

/** What `canopy models` says about a finished build's or partitioned run's model. */
async function modelOf(blobs: Pick<BlobStore, "get">, id: string) {
  const { isPartitionRunId, keys } = await import("@canopy/core");
  return isPartitionRunId(id) ? partitionedSize(blobs, id) : reportModel(blobs.get(keys.report(id)));
}

/**
 * Opens the registry and the build listing: the local store under --root unless --aws, --endpoint or a resource
 * flag asks for the AWS app (DynamoDB + S3, found like canopy publish and status find them).
 */
export async function openTarget(options: TargetOptions, names: readonly ("table" | "bucket")[]): Promise<RegistryTarget> {
  const { keys } = await import("@canopy/core");
  const awsFlags = [options.aws && "--aws", options.endpoint && "--endpoint", options.table && "--table", options.bucket && "--bucket"].filter(Boolean);
  if (awsFlags.length === 0) {
    const root = options.root ?? ".canopy";
    const { DiskBlobStore, DiskLedger, DiskModelRegistry } = await import("@canopy/runtime-local");
    const ledger = new DiskLedger(root);
    const blobs = new DiskBlobStore(root);
    return {
      where: root,
      registry: new DiskModelRegistry(root, { ledger }),
      blobs,
      builds: () => ledger.list(),
      modelOf: (id) => modelOf(blobs, id),
      explain: (err) => err,
      close: async () => {},
    };
  }
  if (options.root !== undefined) throw new UsageError(`--root is the local store; it does not go with ${awsFlags.join(", ")}`);

  const { connectAws } = await import("./aws-target.ts");
  const target = await connectAws(options, names);
  const aws = await import("@canopy/runtime-aws");
  const { table } = target.resources;
  const bucket = (target.resources as { bucket?: string }).bucket;
  const blobs = bucket !== undefined ? new aws.S3BlobStore(bucket) : undefined;
  const where = `table ${table}`;
  return {
    where,
    registry: new aws.DynamoModelRegistry(table),
    blobs: blobs ?? { get: async () => undefined },
    builds: () => aws.listBuilds(table),
    modelOf: (id) => (blobs ? modelOf(blobs, id) : Promise.resolve(undefined)),
    explain: (err) => {
      if ((err as { name?: string }).name === "ResourceNotFoundException") return new UsageError(`${where} not found (${(err as Error).message})`);
      return target.explain(err);
    },
    close: async () => target.close(),
  };
}
