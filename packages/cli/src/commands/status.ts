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
  const { inShort, isBuildId } = await import("@canopy/core");
  if (!isBuildId(buildId)) throw new UsageError(`${inShort(buildId)} is not a build id (b- and 16 hex digits)`);
  if (options.url && options.root !== undefined)
    throw new UsageError("--url presigns an S3 URL of the deployed app's report page; with --root the page is a local file");
  const { statusJson, statusText } = await import("../render.ts");
  const opened = await (await import("../runtime-target.ts")).openRuntime(options, ["bucket", "table"]);
  let view: Awaited<ReturnType<typeof opened.runtime.status>>;
  let page: string | undefined;
  try {
    view = await opened.runtime.status(buildId);
    if (view?.pageKey !== undefined) page = options.url ? await opened.presign!(view.pageKey) : opened.locate(view.pageKey);
  } catch (err) {
    throw opened.explain(err);
  } finally {
    await opened.close();
  }
  if (!view) throw new FailedError(`build ${buildId} not found in ${opened.where}`);
  stdout.write(options.json ? `${JSON.stringify(statusJson(view, opened.locate, page), null, 2)}\n` : `${statusText(view, opened.locate, page)}\n`);
}
