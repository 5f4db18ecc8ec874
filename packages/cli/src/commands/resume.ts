import type { Command } from "commander";
import { addAwsOptions, type AwsTargetOptions } from "../aws-target.ts";
import { UsageError } from "../errors.ts";

export interface ResumeOptions extends AwsTargetOptions {
  wait?: boolean;
  json?: boolean;
  root?: string;
}

/** Adds `canopy resume <build-id>`: finish an unfinished build on AWS, like a redrive. */
export function addResumeCommand(canopy: Command): Command {
  const command = canopy
    .command("resume")
    .summary("finish an unfinished build on AWS: queue what has not landed, ask for a lost aggregation again")
    .description(
      "Pick an unfinished build on the deployed app (or an emulator) back up, the way a redrive does: the groves that " +
        "have not landed are queued again (training is deterministic: the model comes out the same bytes), a build whose " +
        "groves are all in but that nothing is aggregating has its aggregation asked for again, and a claim older than " +
        "the aggregator's time limit is reopened. A finished build is left as it is. (A local build: canopy train --resume.)",
    )
    .argument("<build-id>", "b- and 16 hex digits, as publish prints it")
    .option("--wait", "wait for the build: progress, then metrics, timings and cost (exit 1 if it fails)")
    .option("--json", "print JSON lines on stdout: what was resumed, and with --wait the final status")
    .option("--root <dir>", "(refused: a local build resumes with canopy train --resume)");
  addAwsOptions(command, ["bucket", "table", "queueUrl"]);
  return command.action(async (buildId: string, options: ResumeOptions) => {
    await resume(buildId, options);
  });
}

export async function resume(
  buildId: string,
  options: ResumeOptions,
  io: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WriteStream; pollMs?: number } = {},
): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const { isBuildId } = await import("@canopy/core");
  if (!isBuildId(buildId)) throw new UsageError(`${JSON.stringify(buildId)} is not a build id (b- and 16 hex digits)`);
  if (options.root !== undefined) throw new UsageError(`a build in a local store resumes with: canopy train --resume ${buildId} --root ${options.root}`);
  const aws = await import("@canopy/runtime-aws");
  const target = await (await import("../aws-target.ts")).connectAws(options, ["bucket", "table", "queueUrl"]);
  const runtime = aws.createAwsRuntime({ resources: target.resources, ...(io.pollMs ? { pollIntervalMs: io.pollMs } : {}) });
  try {
    // An unknown build is an input error (exit 2), as the runtime says.
    const handle = await runtime.submit({ resume: buildId });
    const { resumedLine, waitFor } = await import("../aws-build.ts");
    stderr.write(`canopy: build ${buildId}: ${resumedLine(handle)}\n`);
    if (options.json)
      stdout.write(`${JSON.stringify({ buildId, status: handle.record.status, queued: handle.queued, remaining: handle.record.remaining })}\n`);
    if (options.wait) await waitFor(runtime, buildId, { stdout, stderr, json: options.json });
  } catch (err) {
    throw target.explain(err);
  } finally {
    await runtime.close();
    target.close();
  }
}
