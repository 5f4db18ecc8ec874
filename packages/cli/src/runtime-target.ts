import type { BlobStore, BuildLedger, Runtime } from "@canopy/core";
import type { ResourceName } from "@canopy/runtime-aws/names";
import type { AwsTargetOptions } from "./aws-target.ts";
import { UsageError } from "./errors.ts";

/** A runtime to read builds from (status): the local store with --root, else the deployed app (or an emulator). */
export interface OpenedRuntime {
  runtime: Runtime;
  /** The runtime's store and ledger, to read what Runtime does not speak of yet (a study). */
  stores: { blobs: BlobStore; ledger: BuildLedger };
  /** For messages: "the local store .canopy" or "table canopy-builds". */
  where: string;
  /** Where a key lives, as the user can use it (a path relative to here when shorter, or s3://). */
  locate(key: string): string;
  /** An HTTPS URL that serves the key for an hour (AWS only). */
  presign?(key: string): Promise<string>;
  /** AWS errors as one line naming the emulator; others unchanged. */
  explain(err: unknown): unknown;
  close(): Promise<void>;
}

/** --root <dir> for canopy train's store; otherwise the AWS resources in `names`, found as connectAws finds them. */
export async function openRuntime(options: AwsTargetOptions & { root?: string }, names: readonly ResourceName[]): Promise<OpenedRuntime> {
  if (options.root !== undefined) {
    const aws = [options.endpoint && "--endpoint", options.bucket && "--bucket", options.table && "--table"].filter(Boolean);
    if (aws.length > 0) throw new UsageError(`--root reads the local store; it does not go with ${aws.join(", ")}`);
    const { createLocalRuntime } = await import("@canopy/runtime-local");
    const { shown } = await import("./fs.ts");
    // Reading only: no trainer thread is ever started (they start with the first grove).
    const runtime = createLocalRuntime({ root: options.root, workers: 1 });
    return { runtime, stores: runtime, where: `the local store ${options.root}`, locate: (key) => shown(runtime.locate(key)), explain: (err) => err, close: () => runtime.close() };
  }
  const { connectAws } = await import("./aws-target.ts");
  const target = await connectAws(options, names);
  const { createAwsRuntime } = await import("@canopy/runtime-aws");
  const resources = target.resources as { bucket: string; table: string };
  const runtime = createAwsRuntime({ resources });
  return {
    runtime,
    stores: runtime,
    where: `table ${resources.table}`,
    locate: runtime.locate,
    async presign(key) {
      const [{ GetObjectCommand }, { getSignedUrl }, { clients }] = await Promise.all([
        import("@aws-sdk/client-s3"),
        import("@aws-sdk/s3-request-presigner"),
        import("@canopy/runtime-aws"),
      ]);
      const command = new GetObjectCommand({ Bucket: resources.bucket, Key: key, ResponseContentType: "text/html; charset=utf-8" });
      return getSignedUrl(clients.s3(), command, { expiresIn: 3600 });
    },
    explain: (err) => target.explain(err),
    close: async () => {
      await runtime.close();
      target.close();
    },
  };
}
