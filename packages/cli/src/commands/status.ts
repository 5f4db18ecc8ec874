import type { Command } from "commander";
import { addAwsOptions, type AwsTargetOptions } from "../aws-target.ts";
import { FailedError, UsageError } from "../errors.ts";
import type { OpenedRuntime } from "../runtime-target.ts";

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
    .summary("show a build's (or a study's) state, groves, timings, metrics and cost")
    .description(
      "Show a build from the ledger: its state, groves landed and failed (with their errors), when it was submitted and " +
        "last progressed, and once it has completed its metrics, stage timings, estimated AWS cost and where the model is. " +
        "Reads the deployed app's table and bucket (flags, CANOPY_* variables or SST links, as canopy publish), or with " +
        "--root the local store of canopy train.",
    )
    .argument("<build-id>", "b- and 16 hex digits, as publish and train print it; or a study's s- id (canopy tune, publish --tune), or a partitioned run's p- id (--partition-by)")
    .option("--json", "print the status as one JSON object")
    .option("--root <dir>", "read canopy train's local store (e.g. .canopy) instead of AWS")
    .option("--url", "show the report page (report.html) of a build, study or partitioned run as a presigned HTTPS URL, valid for an hour (AWS)");
  addAwsOptions(command, ["bucket", "table"]);
  return command.action(async (buildId: string, options: StatusOptions) => {
    await status(buildId, options);
  });
}

export async function status(buildId: string, options: StatusOptions, io: { stdout?: NodeJS.WritableStream } = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const { inShort, isBuildId, isPartitionRunId, isStudyId } = await import("@canopy/core");
  if (options.url && options.root !== undefined)
    throw new UsageError("--url presigns an S3 URL of the deployed app's report page; with --root the page is a local file");
  if (isStudyId(buildId)) return studyStatus(buildId, options, stdout);
  if (isPartitionRunId(buildId)) return partitionStatus(buildId, options, stdout);
  if (!isBuildId(buildId)) throw new UsageError(`${inShort(buildId)} is not a build id (b- and 16 hex digits)`);
  const { statusJson, statusText } = await import("../render.ts");
  const opened = await (await import("../runtime-target.ts")).openRuntime(options, ["bucket", "table"]);
  let view: Awaited<ReturnType<typeof opened.runtime.status>>;
  let page: string | undefined;
  try {
    view = await opened.runtime.status(buildId);
    page = await pageOf(opened, view?.pageKey, options);
  } catch (err) {
    throw opened.explain(err);
  } finally {
    await opened.close();
  }
  if (!view) throw new FailedError(`build ${buildId} not found in ${opened.where}`);
  stdout.write(options.json ? `${JSON.stringify(statusJson(view, opened.locate, page), null, 2)}\n` : `${statusText(view, opened.locate, page)}\n`);
}

/** `canopy status <study-id>`: builds done of the total, groves settled over its builds, the best once ranked. */
async function studyStatus(studyId: string, options: StatusOptions, stdout: NodeJS.WritableStream): Promise<void> {
  const { readStudyView, scoreOf, showParams } = await import("@canopy/core");
  const opened = await (await import("../runtime-target.ts")).openRuntime(options, ["bucket", "table"]);
  let view: Awaited<ReturnType<typeof readStudyView>>;
  let page: string | undefined;
  try {
    view = await readStudyView(opened.stores, studyId);
    page = await pageOf(opened, view?.pageKey, options);
  } catch (err) {
    throw opened.explain(err);
  } finally {
    await opened.close();
  }
  if (!view) throw new FailedError(`study ${studyId} not found in ${opened.where}`);
  const s = view.summary;
  const r = view.report;
  if (options.json) {
    const out = {
      studyId,
      status: s.status,
      builds: view.builds,
      groves: view.groves,
      tags: s.tags,
      createdAt: s.createdAt,
      updatedAt: s.updatedAt,
      ...(s.reason !== undefined ? { reason: s.reason } : {}),
      ...(r ? { scoring: r.scoring, best_params_: r.best_params_, best_score_: r.best_score_, candidates: r.candidates.length, cv: r.cv, cost: r.cost } : {}),
      ...(r?.final ? { final: r.final } : view.final ? { final: view.final } : {}),
      ...(view.reportKey ? { report: opened.locate(view.reportKey) } : {}),
      ...(page ? { page } : {}),
    };
    return void stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  }
  const rows: [string, string][] = [
    ["study", `${studyId}  ${s.status}`],
    ["builds", `${view.builds.done}/${view.builds.total} done${view.builds.failed ? ` (${view.builds.failed} failed)` : ""}`],
    ["groves", `${view.groves.settled}/${view.groves.total} settled`],
  ];
  if (s.reason) rows.push(["reason", s.reason]);
  if (r) rows.push(["best", `${r.scoring} ${r.best_score_.toFixed(4)} with ${showParams(r.best_params_)} (${r.candidates.length} candidates ${r.spec.oob ? "scored out of bag" : `x ${r.cv} folds`})`]);
  const f = r?.final;
  if (f) rows.push(["final", `${f.buildId}: ${f.testRows > 0 ? `test ${r.scoring} ${scoreOf(r.scoring, f.metrics).toFixed(4)} on ${f.testRows} held-out rows` : "nothing held out"}`]);
  else if (view.final) rows.push(["final", `${view.final.buildId} ${view.final.status ?? "not started"}: groves ${view.final.groves.settled}/${view.final.groves.total} settled`]);
  if (view.reportKey) rows.push(["report", opened.locate(view.reportKey)]);
  if (page) rows.push(["page", page]);
  const { table } = await import("../format.ts");
  stdout.write(`${table(rows)}\n`);
}

/** `canopy status <p-id>`: partitions done of the total, groves settled over their builds, counts and metrics once done. */
async function partitionStatus(runId: string, options: StatusOptions, stdout: NodeJS.WritableStream): Promise<void> {
  const { readPartitionView } = await import("@canopy/core");
  const opened = await (await import("../runtime-target.ts")).openRuntime(options, ["bucket", "table"]);
  let view: Awaited<ReturnType<typeof readPartitionView>>;
  let page: string | undefined;
  try {
    view = await readPartitionView(opened.stores, runId);
    page = await pageOf(opened, view?.pageKey, options);
  } catch (err) {
    throw opened.explain(err);
  } finally {
    await opened.close();
  }
  if (!view) throw new FailedError(`partitioned run ${runId} not found in ${opened.where}`);
  const s = view.summary;
  const r = view.report;
  if (options.json) {
    const out = {
      runId,
      status: s.status,
      partitions: view.builds,
      groves: view.groves,
      tags: s.tags,
      createdAt: s.createdAt,
      updatedAt: s.updatedAt,
      ...(s.reason !== undefined ? { reason: s.reason } : {}),
      ...(view.tuning ? { tuning: { mode: view.tuning, ...(view.final ? { final: view.final } : {}) } } : {}),
      ...(r ? { partitionBy: r.partitionBy, counts: r.counts, metrics: r.metrics, cost: r.cost } : {}),
      ...(r?.tuning ? { best: r.tuning.partitions.map((p) => ({ partition: p.value, best_params_: p.best_params_, best_score_: p.best_score_ })), ...(r.tuning.shared ? { shared: r.tuning.shared.best_params_ } : {}) } : {}),
      ...(view.modelKey ? { model: opened.locate(view.modelKey) } : {}),
      ...(view.reportKey ? { report: opened.locate(view.reportKey) } : {}),
      ...(page ? { page } : {}),
    };
    return void stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  }
  const { metricsLine, table } = await import("../format.ts");
  const rows: [string, string][] = [
    ["run", `${runId}  ${s.status}`],
    ...(view.tuning ? [["tuning", view.tuning === "shared" ? "one shared set of parameters (--shared-params)" : "each partition its own best"] as [string, string]] : []),
    ["builds", `${view.builds.done}/${view.builds.total} done${view.builds.failed ? ` (${view.builds.failed} failed)` : ""}`],
    ["groves", `${view.groves.settled}/${view.groves.total} settled`],
  ];
  const f = view.final;
  if (f) rows.push(["final", `${f.runId}: builds ${f.builds.done}/${f.builds.total} done${f.builds.failed ? ` (${f.builds.failed} failed)` : ""}, groves ${f.groves.settled}/${f.groves.total} settled`]);
  if (s.reason) rows.push(["reason", s.reason]);
  if (r) {
    const c = r.counts;
    rows.push(["partitions", `${c.completed} of ${c.partitions} by ${r.partitionBy} trained (${c.skipped} skipped, ${c.failed} failed)`]);
    rows.push(["metrics", `${metricsLine(r.metrics)} (row-weighted)`]);
  }
  if (view.modelKey) rows.push(["model", opened.locate(view.modelKey)]);
  if (view.reportKey) rows.push(["report", opened.locate(view.reportKey)]);
  if (page) rows.push(["page", page]);
  stdout.write(`${table(rows)}\n`);
}

/** report.html of a build, study or run: with --url a presigned HTTPS URL (AWS), else where it is (a path or s3://). */
async function pageOf(opened: OpenedRuntime, pageKey: string | undefined, options: StatusOptions): Promise<string | undefined> {
  if (pageKey === undefined) return undefined;
  return options.url ? opened.presign!(pageKey) : opened.locate(pageKey);
}
