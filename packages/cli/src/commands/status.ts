import { join, resolve } from "node:path";
import type { Command } from "commander";
import { addAwsOptions, type AwsTargetOptions } from "../aws-target.ts";
import { FailedError, UsageError } from "../errors.ts";

export interface StatusOptions extends AwsTargetOptions {
  json?: boolean;
  /** Show report.html as a presigned HTTPS URL (AWS only). */
  url?: boolean;
  /** The embedded store of canopy train instead of AWS. */
  root?: string;
}

export function addStatusCommand(canopy: Command): Command {
  const command = canopy
    .command("status")
    .summary("show a build's state, groves, timings, metrics and cost")
    .description(
      "Show a build from the ledger: its state, groves landed and failed (with their errors), when it was submitted and " +
        "last progressed, and once it has completed its metrics, stage timings, estimated AWS cost and where the model is. " +
        "Reads the deployed app's table and bucket (flags, CANOPY_* variables or SST links, as canopy publish), or with " +
        "--root the local store of canopy train.",
    )
    .argument("<build-id>", "b- and 16 hex digits, as publish and train print it")
    .option("--json", "print the status as one JSON object")
    .option("--root <dir>", "read canopy train's local store (e.g. .canopy) instead of AWS")
    .option("--url", "show the report page (report.html) as a presigned HTTPS URL, valid for an hour (AWS)");
  addAwsOptions(command, ["bucket", "table"]);
  return command.action(async (buildId: string, options: StatusOptions) => {
    await status(buildId, options);
  });
}

export async function status(buildId: string, options: StatusOptions, io: { stdout?: NodeJS.WritableStream } = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const { isBuildId } = await import("@canopy/core");
  if (!isBuildId(buildId)) throw new UsageError(`${JSON.stringify(buildId)} is not a build id (b- and 16 hex digits)`);
  const { loadBuildStatus, statusJson, statusText } = await import("../build-status.ts");

  let shown: Awaited<ReturnType<typeof loadBuildStatus>>;
  let where: string;
  if (options.root !== undefined) {
    const aws = [options.endpoint && "--endpoint", options.bucket && "--bucket", options.table && "--table"].filter(Boolean);
    if (aws.length > 0) throw new UsageError(`--root reads the local store; it does not go with ${aws.join(", ")}`);
    if (options.url) throw new UsageError("--url presigns an S3 URL of the deployed app's report page; with --root the page is a local file");
    const { DiskBlobStore, DiskLedger } = await import("@canopy/runtime-local");
    const root = resolve(options.root);
    where = `the local store ${options.root}`;
    shown = await loadBuildStatus({ ledger: new DiskLedger(root), blobs: new DiskBlobStore(root), locate: (key) => join(options.root!, key) }, buildId);
  } else {
    const { connectAws } = await import("../aws-target.ts");
    const target = await connectAws(options, ["bucket", "table"]);
    const { bucket, table } = target.resources;
    where = `table ${table}`;
    try {
      const aws = await import("@canopy/runtime-aws");
      shown = await loadBuildStatus({ ledger: new aws.DynamoLedger(table), blobs: new aws.S3BlobStore(bucket), locate: (key) => `s3://${bucket}/${key}` }, buildId);
      if (shown?.page && options.url) {
        const { keys } = await import("@canopy/core");
        const { GetObjectCommand } = await import("@aws-sdk/client-s3");
        const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
        const command = new GetObjectCommand({ Bucket: bucket, Key: keys.reportHtml(buildId), ResponseContentType: "text/html; charset=utf-8" });
        shown.page = await getSignedUrl(aws.clients.s3(), command, { expiresIn: 3600 });
      }
    } catch (err) {
      throw target.explain(err);
    } finally {
      target.close();
    }
  }
  if (!shown) throw new FailedError(`build ${buildId} not found in ${where}`);
  stdout.write(options.json ? `${JSON.stringify(statusJson(shown), null, 2)}\n` : `${statusText(shown)}\n`);
}
