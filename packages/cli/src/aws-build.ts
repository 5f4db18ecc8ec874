import type { BuildHandle } from "@canopy/core";
import type { AwsRuntime } from "@canopy/runtime-aws";
import { FailedError, InterruptedExit } from "./errors.ts";

// What publish, publish --extend and resume say about a build on AWS and how they wait for it.

/** What submitting (or resuming) an existing build did, in words. */
export function resumedLine(handle: Pick<BuildHandle, "record" | "queued">): string {
  const { record, queued } = handle;
  if (record.status === "COMPLETED" || record.status === "FAILED") return `it is ${record.status}; nothing to do`;
  if (queued.length > 0) return `${record.status}; queued again the ${queued.length} grove(s) that had not landed (${shortList(queued)})`;
  if (record.status === "AGGREGATING")
    return `AGGREGATING (claimed ${Math.round((Date.now() - (record.claimedAt ?? record.updatedAt)) / 1000)} s ago); its aggregator has until its time limit before a resume or the sweeper reopens it`;
  if (record.remaining === 0) return "every grove is in; the aggregation was asked for again";
  return `${record.status}; nothing to queue`;
}

const shortList = (groves: number[]) => (groves.length <= 8 ? groves.join(", ") : `${groves.slice(0, 8).join(", ")}, ...`);

/** --wait: canopy train's progress from the ledger, then the result; Ctrl-C stops waiting, not the build. */
export async function waitFor(runtime: AwsRuntime, buildId: string, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WriteStream; json?: boolean }): Promise<void> {
  const { progressPrinter, watchBuild } = await import("./progress.ts");
  const { costLine, statusJson, summary } = await import("./render.ts");
  const stop = (await import("./signals.ts")).stopOn(["SIGINT", "SIGTERM"]);
  const end = await watchBuild(runtime, buildId, progressPrinter(io.stderr, { announce: false }), stop.signal).finally(stop.dispose);
  if (!end) throw new InterruptedExit(`stopped waiting; build ${buildId} goes on in AWS: canopy status ${buildId}`);
  const { record, report } = end.view;
  if (io.json) io.stdout.write(`${JSON.stringify(statusJson(end.view, runtime.locate))}\n`);
  if (record.status === "FAILED") {
    for (const f of record.failed) io.stderr.write(`canopy: grove ${f.grove} failed: ${f.error}\n`);
    throw new FailedError(`build ${buildId} failed: ${record.reason ?? "no reason recorded"}`);
  }
  if (io.json) return;
  if (!report) throw new FailedError(`build ${buildId} completed but its report ${runtime.locate(record.result?.reportKey ?? "")} is not readable`);
  io.stdout.write(`${summary(report, runtime.locate(report.model.key), runtime.locate(record.result!.reportKey))}\n`);
  const cost = costLine(report);
  // A row under the summary's table ("timings" is its widest key).
  if (cost) io.stdout.write(`${"cost".padEnd("timings".length)}  ${cost}\n`);
}
