import { Command, Option } from "commander";
import type { BuildRecord, ModelRegistry } from "@canopy/core";
import { parseHttpUrl } from "../args.ts";
import { UsageError } from "../errors.ts";

/** Where promote and models work: the local store (default) or the deployed app's table and bucket. */
export interface TargetOptions {
  root: string;
  endpoint?: string;
  table?: string;
  bucket?: string;
}

export interface RegistryTarget {
  /** For messages: ".canopy" or "DynamoDB table canopy-builds". */
  where: string;
  registry: ModelRegistry;
  builds(): Promise<BuildRecord[]>;
  /** The model entry of a build's report.json (trees, bytes), if it can be read. */
  modelOf(buildId: string): Promise<{ trees: number; bytes: number } | undefined>;
  close(): Promise<void>;
}

/** The AWS flags promote and models share. */
export function addTargetOptions(command: Command): Command {
  return command
    .addOption(new Option("--root <dir>", "local store of packs, builds and the ledger").default(".canopy"))
    .option("--endpoint <url>", "work on the AWS app through this endpoint (an emulator: LocalStack, moto_server)", parseHttpUrl)
    .option("--table <name>", "work on the AWS app's builds table (default: CANOPY_TABLE, the SST link, or canopy-builds with --endpoint)")
    .option("--bucket <name>", "the AWS app's bucket, for model sizes (default: CANOPY_BUCKET, the SST link, or canopy-artifacts with --endpoint)");
}

/** Variables the SDK needs for an emulator; returns a function restoring the previous values. */
function emulatorEnv(endpoint: string): () => void {
  const saved = new Map<string, string | undefined>();
  const set = (key: string, value: string) => {
    if (!saved.has(key)) saved.set(key, process.env[key]);
    process.env[key] = value;
  };
  set("AWS_ENDPOINT_URL", endpoint.replace(/\/$/, ""));
  if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) set("AWS_REGION", "us-east-1");
  // Emulators accept any credentials; without some the SDK refuses to sign.
  if (!process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE) {
    set("AWS_ACCESS_KEY_ID", "test");
    set("AWS_SECRET_ACCESS_KEY", "test");
  }
  return () => {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

function modelEntry(json: unknown): { trees: number; bytes: number } | undefined {
  const model = (json as { model?: { trees?: unknown; bytes?: unknown } } | null)?.model;
  return typeof model?.trees === "number" && typeof model.bytes === "number" ? { trees: model.trees, bytes: model.bytes } : undefined;
}

/**
 * Opens the registry and the build listing: DynamoDB + S3 when any of --endpoint/--table/--bucket is given,
 * else the local store under --root. The AWS SDK is imported only in the first case.
 */
export async function openTarget(options: TargetOptions): Promise<RegistryTarget> {
  const { keys } = await import("@canopy/core");
  if (options.endpoint === undefined && options.table === undefined && options.bucket === undefined) {
    const { DiskBlobStore, DiskLedger, DiskModelRegistry } = await import("@canopy/runtime-local");
    const ledger = new DiskLedger(options.root);
    const blobs = new DiskBlobStore(options.root);
    return {
      where: options.root,
      registry: new DiskModelRegistry(options.root, { ledger }),
      builds: () => ledger.list(),
      modelOf: async (id) => {
        const bytes = await blobs.get(keys.report(id)).catch(() => undefined);
        return bytes ? modelEntry(JSON.parse(new TextDecoder().decode(bytes))) : undefined;
      },
      close: async () => {},
    };
  }

  const restore = options.endpoint !== undefined ? emulatorEnv(options.endpoint) : () => {};
  const aws = await import("@canopy/runtime-aws");
  aws.resetClients();
  const name = async (which: "table" | "bucket"): Promise<string | undefined> => {
    if (options[which] !== undefined) return options[which];
    try {
      return (await aws.resolveResources([which]))[which];
    } catch {
      if (options.endpoint !== undefined) return which === "table" ? aws.DEV_RESOURCES.table.name : aws.DEV_RESOURCES.bucket.name;
      return undefined;
    }
  };
  const table = await name("table");
  if (table === undefined) {
    restore();
    throw new UsageError("no builds table: pass --table <name> (or set CANOPY_TABLE)");
  }
  const bucket = await name("bucket");
  const blobs = bucket !== undefined ? new aws.S3BlobStore(bucket) : undefined;
  return {
    where: `DynamoDB table ${table}`,
    registry: new aws.DynamoModelRegistry(table),
    builds: () => aws.listBuilds(table),
    modelOf: async (id) => {
      const bytes = await blobs?.get(keys.report(id)).catch(() => undefined);
      return bytes ? modelEntry(JSON.parse(new TextDecoder().decode(bytes))) : undefined;
    },
    close: async () => {
      aws.resetClients();
      restore();
    },
  };
}

/** AWS errors that mean "wrong place" (nothing listening, no such table) as one usage line; others unchanged. */
export function targetError(err: unknown, target: Pick<RegistryTarget, "where">, endpoint: string | undefined): unknown {
  const e = err as { code?: string; cause?: { code?: string }; name?: string; message?: string };
  const code = e.code ?? e.cause?.code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND") return new UsageError(`cannot reach ${endpoint ?? "AWS"} (${code})`);
  if (e.name === "ResourceNotFoundException") return new UsageError(`${target.where} not found (${e.message})`);
  return err;
}
