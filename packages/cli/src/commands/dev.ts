import type { Command } from "commander";
import type { BuildEnd } from "@canopy/core";
import { parseHttpUrl, parseWorkers } from "../args.ts";
import type { DevEmulatorOptions } from "../dev-emulator.ts";
import { FailedError, UsageError } from "../errors.ts";
import { addSpecOptions } from "../spec-options.ts";
import type { SpecFlags } from "../spec.ts";

export interface DevOptions extends SpecFlags, DevEmulatorOptions {
  once?: boolean;
}

export interface DevIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream;
  /** Stops the emulator (default: SIGINT / SIGTERM). */
  signal?: AbortSignal;
}

/**
 * Adds `canopy dev` to the program (as a subcommand, so it inherits the program's error handling). Only the
 * definition: the AWS SDK, the handlers and the engine are imported when the command runs.
 */
export function addDevCommand(canopy: Command): Command {
  const command = canopy
    .command("dev")
    .summary("run the AWS pipeline on an emulator (LocalStack, moto)")
    .description(
      "Run Canopy's Lambda handlers in this process against an AWS emulator: create the bucket, table (with its stream), " +
        "grove queue and dead-letter queue, and topic if missing, then poll them as Lambda's event source mappings would " +
        "(the trainer on the queue, the aggregator on the table's stream through the same filter the deployed app uses, " +
        "the dead-letter consumer on the DLQ) and show every build's progress like canopy train. With <data.csv>, also " +
        "submit a build of it; with --once, exit when that build ends.",
    )
    .argument("[data.csv]", "submit a build of this CSV (same options as canopy train)")
    .requiredOption("--endpoint <url>", "the emulator, e.g. http://localhost:4566 (LocalStack) or http://127.0.0.1:5000 (moto_server)", parseHttpUrl)
    .option("--suffix <s>", "append to every resource name (canopy-artifacts<s>, canopy-builds<s>, ...)")
    .option("--concurrency <n>", "handler invocations at once (default 1: a stock moto_server can lose concurrent updates to one item; raise it for LocalStack)", parseWorkers)
    .option("--memory <mb>", "memory reported to the handlers, for billed GB-s (default 1769)", parseWorkers)
    .option("--visibility-timeout <s>", "grove queue visibility timeout in seconds: how soon a failed grove is retried (default 30)", parseWorkers)
    .option("--max-receive-count <n>", "deliveries before a grove task goes to the dead-letter queue (default 3)", parseWorkers)
    .option("--once", "with <data.csv>: exit when the submitted build ends (exit 1 if it failed)")
    .option("--verbose", "print the handlers' structured logs (JSON lines) on stdout");
  // The build options are canopy train's own (one declaration, the same parsers and help).
  return addSpecOptions(command).action(async (data: string | undefined, options: DevOptions) => {
    await dev(data, options);
  });
}

export async function dev(data: string | undefined, options: DevOptions, io: DevIo = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);
  if (options.once && data === undefined) throw new UsageError("--once needs <data.csv>: it waits for the build it submits");
  const spec = data !== undefined ? (await import("../spec.ts")).buildSpec(data, options) : undefined;
  if (data !== undefined) await (await import("../fs.ts")).checkDataFile(data);

  const emulator = await (await import("../dev-emulator.ts")).startDevEmulator(options, note);
  const { createAwsRuntime } = await import("@canopy/runtime-aws");
  const { progressPrinter } = await import("../progress.ts");
  const { summary } = await import("../render.ts");
  // Progress from the table's stream, as the deployed aggregator sees it: every build, whoever submitted it.
  const runtime = createAwsRuntime({ resources: emulator.resources, progress: "stream", streamPollIntervalMs: 100, onWarning: (m) => note(`warning: ${m}`) });
  const printer = progressPrinter(stderr);
  const stop = (await import("../signals.ts")).stopOn(["SIGINT", "SIGTERM"], io.signal);
  const showEnd = (end: BuildEnd) => {
    const { record, report } = end.view;
    if (record.status === "FAILED") return note(`build ${record.buildId} failed: ${record.reason ?? "no reason recorded"}`);
    if (!report || !record.result) return note(`build ${record.buildId} completed (report not readable)`);
    stdout.write(`${summary(report, runtime.locate(report.model.key), runtime.locate(record.result.reportKey))}\n`);
    if (report.cost?.usd) note(`${record.buildId}: estimated AWS cost $${report.cost.usd.total.toFixed(6)} (${report.cost.totals.billedGbS.toFixed(1)} GB-s at ${options.memory ?? 1769} MB)`);
  };

  let outcome: BuildEnd["view"]["record"] | undefined;
  try {
    const ingest = await import("@canopy/core/ingest");
    const submitted = spec && data !== undefined ? await runtime.submit({ spec, data: await ingest.openTable(ingest.fileSource(data)) }) : undefined;
    if (submitted && !submitted.created) note(`build ${submitted.buildId} already exists (${submitted.record.status}); watching it`);
    // A build that had already ended shows no new progress: its record is the outcome.
    const status = submitted?.record.status;
    if (options.once && (status === "COMPLETED" || status === "FAILED")) outcome = submitted!.record;
    else {
      if (!options.once) note("dev: running; Ctrl-C to stop");
      for await (const event of runtime.follow(undefined, { signal: stop.signal })) {
        await printer.show(event);
        if (event.type !== "end") continue;
        showEnd(event);
        if (options.once && event.buildId === submitted?.buildId) {
          outcome = event.view.record;
          break;
        }
      }
    }
  } finally {
    stop.dispose();
    printer.stop();
    await runtime.close();
    await emulator.stop();
  }
  if (outcome?.status === "FAILED") throw new FailedError(`build ${outcome.buildId} failed: ${outcome.reason ?? "no reason recorded"}`);
}
