import { spawn, spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import type { BuildReport, PartitionReport, StudyReport } from "@canopy/core";
import type { ReportDocument } from "@canopy/report";
import { FailedError, fileError, UsageError } from "../errors.ts";
import { bytes } from "../format.ts";
import { writeFileAtomic } from "../fs.ts";
import { addTargetOptions, type TargetOptions } from "../registry-target.ts";

export interface ReportOptions extends TargetOptions {
  out?: string;
  open?: boolean;
  json?: boolean;
}

export function addReportCommand(canopy: Command): Command {
  return addTargetOptions(
    canopy
      .command("report")
      .summary("write a build's, a study's or a partitioned run's report.html (charts) and optionally open it")
      .description(
        "Write a build's report as one self-contained web page (report.html: metrics, the metric by number of trees, " +
          "confusion matrix or residuals, importances, the build's timeline, timings and cost; it opens offline). From a " +
          "build id in the local store (written beside its model), a model file or train --out directory (beside " +
          "model.canopy, from the report.json there), or with --aws / --endpoint / --bucket a build in the deployed " +
          "app's bucket (written to <build-id>.report.html here). A study's id (s-) or a partitioned run's (p-) writes its page " +
          "from its report.json the same way. Prints the file's path.",
      )
      .argument("<build-id|model>", "a build id, a study's s- or a partitioned run's p- id, a model file, or a train --out directory")
      .option("--out <file.html>", "write the page here instead (an existing file is replaced only if it is a Canopy report)")
      .option("--open", "open the page in the default browser (xdg-open, open or start)")
      .option("--json", "print {buildId, path, bytes} as JSON"),
    ["bucket"],
  ).action(async (ref: string, options: ReportOptions) => {
    await report(ref, options);
  });
}

/** A page this command (or a build) wrote earlier, which may be replaced; anything else at --out is the user's. */
function isCanopyReport(text: string): boolean {
  return text.startsWith("<!doctype html>") && text.includes('<script type="application/json" id="canopy-charts">');
}

async function checkOut(out: string): Promise<void> {
  if (!out.toLowerCase().endsWith(".html")) throw new UsageError(`--out ${out}: the page is HTML; give a file name ending in .html`);
  let existing: string;
  try {
    existing = await readFile(out, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw fileError(err, out, "file") ?? err;
  }
  if (!isCanopyReport(existing)) throw new UsageError(`--out ${out} already exists and is not a Canopy report; choose another file`);
}

/** The id a report describes: a build's, a study's or a partitioned run's. */
const idOf = (r: ReportDocument): string => ("studyId" in r ? r.studyId : "runId" in r ? r.runId : r.buildId);

function parseReport(bytes: Uint8Array, where: string, kind: "build" | "study" | "partitions" = "build"): ReportDocument {
  try {
    const report = JSON.parse(new TextDecoder().decode(bytes)) as ReportDocument & { kind?: string };
    const id = kind === "study" ? (report as StudyReport).studyId : kind === "partitions" ? (report as PartitionReport).runId : (report as BuildReport).buildId;
    if (report?.v === 1 && (report.kind ?? "build") === kind && typeof id === "string") return report;
  } catch {
    // below
  }
  throw new UsageError(`${where} is not a Canopy ${kind === "build" ? "" : `${kind === "study" ? "study" : "partitioned run"} `}report.json`);
}

/** The report and where its page goes by default, from the local store, a model on disk, or the AWS bucket. */
async function locate(ref: string, options: ReportOptions): Promise<{ report: ReportDocument; page: string }> {
  const { inShort, isBuildId, isPartitionRunId, isStudyId, keys, reportKeysOf } = await import("@canopy/core");
  const awsFlags = [options.aws && "--aws", options.endpoint && "--endpoint", options.bucket && "--bucket"].filter(Boolean);
  // A study's or a partitioned run's report.json (written when it completed), and its page's key beside it.
  const run = isStudyId(ref)
    ? { kind: "study" as const, what: "study", ...reportKeysOf(ref) }
    : isPartitionRunId(ref)
      ? { kind: "partitions" as const, what: "partitioned run", ...reportKeysOf(ref) }
      : undefined;
  if (awsFlags.length > 0) {
    if (options.root !== undefined) throw new UsageError(`--root is the local store; it does not go with ${awsFlags.join(", ")}`);
    if (!isBuildId(ref) && !run) throw new UsageError(`${inShort(ref)} is not a build id (b- and 16 hex digits), a study's (s-) or a partitioned run's (p-); on AWS the report is found by its id`);
    const { connectAws } = await import("../aws-target.ts");
    const target = await connectAws(options, ["bucket"]);
    try {
      const { S3BlobStore } = await import("@canopy/runtime-aws");
      const { bucket } = target.resources;
      const key = run?.json ?? keys.report(ref);
      const json = await new S3BlobStore(bucket).get(key);
      const what = run?.what ?? "build";
      if (!json) throw new FailedError(`${what} ${ref} has no report in s3://${bucket}/${key} (not completed, or not this app's ${what})`);
      return { report: parseReport(json, `s3://${bucket}/${key}`, run?.kind), page: `${ref}.report.html` };
    } catch (err) {
      throw target.explain(err);
    } finally {
      target.close();
    }
  }
  const root = options.root ?? ".canopy";
  if (run) {
    const path = join(root, run.json);
    const json = await readFile(path).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new UsageError(`${run.what} ${ref} has no report in ${path} (not finished, or not in ${root})`);
      throw fileError(err, path, "report") ?? err;
    });
    return { report: parseReport(json, path, run.kind), page: join(root, run.html) };
  }
  const { loadModelRef } = await import("../model.ts");
  const loaded = await loadModelRef(ref, root);
  if (loaded.report) return { report: loaded.report, page: join(dirname(loaded.path), "report.html") };
  // A build of the store whose report.json does not match (or is missing): say so rather than guess.
  throw new UsageError(`no report.json for ${ref} beside ${loaded.path}: the page is made from the build's report (canopy train writes it, --out exports it)`);
}

/** The platform's "open this file" command, if there is one. */
function opener(): { command: string; args: (path: string) => string[] } | undefined {
  if (process.platform === "darwin") return { command: "open", args: (p) => [p] };
  if (process.platform === "win32") return { command: "cmd", args: (p) => ["/c", "start", "", p] };
  const found = spawnSync("sh", ["-c", "command -v xdg-open"], { encoding: "utf8" });
  return found.status === 0 ? { command: "xdg-open", args: (p) => [p] } : undefined;
}

export async function report(ref: string, options: ReportOptions, io: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream } = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  if (options.out !== undefined) await checkOut(options.out);
  const { report: found, page } = await locate(ref, options);
  const { renderReport } = await import("@canopy/report");
  const html = renderReport(found);
  const path = resolve(options.out ?? page);
  await writeFileAtomic(path, html);
  const size = Buffer.byteLength(html);
  stdout.write(options.json ? `${JSON.stringify({ buildId: idOf(found), path, bytes: size })}\n` : `${path}\n`);
  if (!options.json) stderr.write(`canopy: wrote the report of ${idOf(found)} (${bytes(size)}; it opens offline)\n`);
  if (options.open) {
    const open = opener();
    if (!open) {
      stderr.write(`canopy: no browser opener found (xdg-open, open or start); open ${path} in a browser\n`);
      return;
    }
    const child = spawn(open.command, open.args(path), { detached: true, stdio: "ignore" });
    child.on("error", (err) => stderr.write(`canopy: could not run ${open.command}: ${err.message}; open ${path} in a browser\n`));
    child.unref();
  }
}
