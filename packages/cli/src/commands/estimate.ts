import type { Command } from "commander";
import { addEstimateOptions, estimateSettings, type EstimateFlags } from "../estimate-options.ts";
import { addSpecOptions } from "../spec-options.ts";
import type { SpecFlags } from "../spec.ts";

export interface EstimateOptions extends SpecFlags, EstimateFlags {
  json?: boolean;
}

/** Adds `canopy estimate`. The engine loads only when it runs. */
export function addEstimateCommand(canopy: Command): Command {
  const command = canopy
    .command("estimate")
    .summary("predict the wall time and cost of a build on AWS, before running it")
    .description(
      "Estimate what a build of this data would take on the deployed app: trains trees of the build here on one thread " +
        "for about 2 s to measure the work per tree, scales it to a Lambda vCPU (--cpu-factor), and simulates the fan-out (the trainer " +
        "mapping's ramp in its default and provisioned modes, cold starts, pack reads, training, landing, aggregation). " +
        "Prints wall time and cost for 100, 1,000 and 10,000 trees (and --trees), and the grove size that minimises " +
        "time or cost. Memory, concurrency and pollers default to the deploy's CANOPY_* settings. Nothing is uploaded.",
    )
    .argument("<data>", "a CSV, .csv.gz or Parquet file");
  addEstimateOptions(addSpecOptions(command)).option("--json", "print the estimate as one JSON object");
  return command.action(async (data: string, options: EstimateOptions) => {
    await estimate(data, options);
  });
}

export async function estimate(data: string, options: EstimateOptions, io: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream } = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  // Everything the user can get wrong is checked before the data is read.
  const { buildSpec } = await import("../spec.ts");
  const spec = buildSpec(data, options);
  const settings = estimateSettings(options);
  await (await import("../fs.ts")).checkDataFile(data);
  const ingest = await import("@canopy/core/ingest");
  const { runEstimate } = await import("../estimate.ts");
  const { shown } = await import("../fs.ts");
  const table = await ingest.openTable(ingest.fileSource(data));
  const result = await runEstimate(spec, table, shown(data), settings, (line) => stderr.write(`canopy: ${line}\n`));
  stdout.write(options.json ? `${JSON.stringify(result.json, null, 2)}\n` : `${result.text}\n`);
}
