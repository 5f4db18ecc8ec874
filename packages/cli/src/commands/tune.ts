import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { isStudyId, parseStudySpec, SEARCHABLE, showParams, SpecError, type ParamDistribution, type ParamValue, type StudyReport, type StudySpec } from "@canopy/core";
import { createLocalRuntime, InterruptedError, type StudyOutcome, type StudyProgress } from "@canopy/runtime-local";
import { FailedError, InterruptedExit, UsageError } from "../errors.ts";
import { duration } from "../format.ts";
import { checkDataFile, shown } from "../fs.ts";
import { FLAG_FOR_FIELD, specInput, specUsageError, type SpecFlags } from "../spec.ts";

export interface TuneOptions extends SpecFlags {
  grid?: string[];
  random?: number;
  param?: string[];
  scoring?: string;
  cv?: number;
  oob?: boolean;
  halving?: boolean;
  workers?: number;
  root: string;
  notifyUrl?: string;
  resume?: string;
  json?: boolean;
}

/** A grid or list value as typed: none -> None (null), true/false, a number, else the word (sqrt, log2, gini...). */
export function parseParamValue(text: string): ParamValue {
  const t = text.trim();
  if (/^(none|null)$/i.test(t)) return null;
  if (t === "true" || t === "false") return t === "true";
  if (t !== "" && Number.isFinite(Number(t))) return Number(t);
  return t;
}

/** `name=v1,v2,...` (--grid) as [name, values]; the name as sklearn spells it (max_depth) or as its flag (max-depth). */
function splitAssignment(text: string, flag: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0 || eq === text.length - 1) throw new UsageError(`${flag}: expected name=values, e.g. max_depth=8,16,none; got ${JSON.stringify(text)}`);
  return [text.slice(0, eq).trim().replace(/-/g, "_"), text.slice(eq + 1)];
}

/** `name=int:LO..HI`, `name=float:LO..HI` or `name=v1,v2,...` (--param, for --random). */
export function parseDistribution(text: string): [string, ParamDistribution] {
  const [name, spec] = splitAssignment(text, "--param");
  const range = /^(int|float):\s*(-?[\d.e+-]+)\s*\.\.\s*(-?[\d.e+-]+)$/.exec(spec.trim());
  if (range) {
    const lo = Number(range[2]);
    const hi = Number(range[3]);
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new UsageError(`--param ${name}: ${spec} is not a range of numbers`);
    return [name, range[1] === "int" ? { int: [lo, hi] } : { float: [lo, hi] }];
  }
  if (/^(int|float):/.test(spec)) throw new UsageError(`--param ${name}: expected int:LO..HI or float:LO..HI; got ${JSON.stringify(spec)}`);
  return [name, { values: spec.split(",").map(parseParamValue) }];
}

/** The study spec from the command line; every error is one usage line naming the flag. */
export function studySpec(data: string, options: TuneOptions): StudySpec {
  const grid: Record<string, ParamValue[]> = {};
  for (const g of options.grid ?? []) {
    const [name, values] = splitAssignment(g, "--grid");
    if (name in grid) throw new UsageError(`--grid ${name}: given twice`);
    grid[name] = values.split(",").map(parseParamValue);
  }
  const params = Object.fromEntries((options.param ?? []).map(parseDistribution));
  if (options.random === undefined && (options.param?.length ?? 0) > 0) throw new UsageError("--param draws candidates for --random N; add --random");
  // A random search takes --grid lists as value lists too (RandomizedSearchCV's lists).
  const random = options.random !== undefined ? { n_iter: options.random, params: { ...Object.fromEntries(Object.entries(grid).map(([k, v]) => [k, { values: v }])), ...params } } : undefined;
  const base = specInput(data, options);
  for (const name of [...Object.keys(grid), ...Object.keys(params)]) {
    if (base[name] !== undefined) throw new UsageError(`${FLAG_FOR_FIELD[name] ?? name} is fixed but ${name} is also searched (--grid/--param): one or the other`);
  }
  try {
    return parseStudySpec({
      base,
      ...(random ? { random } : Object.keys(grid).length > 0 || options.grid ? { grid } : {}),
      ...(options.scoring !== undefined ? { scoring: options.scoring } : {}),
      cv: options.cv ?? 5,
    });
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    throw studyUsageError(err);
  }
}

function studyUsageError(err: SpecError): UsageError {
  return new UsageError(
    err.issues
      .map((i) => {
        const [head, name] = i.path.split(".");
        if (head === "grid") return `--grid${name ? ` ${name}` : ""}: ${i.message}`;
        if (head === "random") return `--random/--param${i.path.split(".")[2] ? ` ${i.path.split(".")[2]}` : ""}: ${i.message}`;
        if (head === "scoring" || head === "cv") return `--${head}: ${i.message}`;
        // A candidate's value of the wrong type: the searched option is named by the grid (its flag would be wrong).
        if (/\(candidate /.test(i.message) && (SEARCHABLE as string[]).includes(head)) return `--grid ${head}: ${i.message}`;
        return specUsageError(new SpecError([i])).message;
      })
      .join("; "),
  );
}

/** One line per progress step: builds and groves settled, and the time left at the rate so far. */
export function studyProgressLine(p: StudyProgress): string {
  const eta = p.etaMs !== undefined ? `, ETA ${duration(p.etaMs)}` : "";
  return `canopy: study ${p.studyId}: builds ${p.buildsDone}/${p.buildsTotal} done, groves ${p.grovesDone}/${p.grovesTotal} (${duration(p.elapsedMs)}${eta})`;
}

/** The ranked candidates as a table, best first (as sklearn's cv_results_ sorted by rank_test_score). */
export function rankingTable(report: StudyReport): string {
  const rows = [...report.candidates].sort((a, b) => a.rank_test_score - b.rank_test_score || a.index - b.index);
  const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : "nan");
  const lines = [["rank", `mean ${report.scoring}`, "std", "params"], ...rows.map((c) => [String(c.rank_test_score), fmt(c.mean_test_score), fmt(c.std_test_score), showParams(c.params) + (c.status === "FAILED" ? "  (failed)" : "")])];
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ")).join("\n");
}

export async function tune(data: string | undefined, raw: Record<string, unknown>): Promise<void> {
  const options = raw as unknown as TuneOptions;
  if (options.oob) throw new UsageError("--oob: out-of-bag scoring of a study is not available yet; use --cv K");
  if (options.halving) throw new UsageError("--halving: successive halving is not available yet; use a grid or --random");
  let spec: StudySpec | undefined;
  if (options.resume !== undefined) {
    if (!isStudyId(options.resume)) throw new UsageError(`--resume: ${JSON.stringify(options.resume).slice(0, 40)} is not a study id (s- and 16 hex digits)`);
  } else {
    if (data === undefined) throw new UsageError("missing <data.csv> (or --resume <study-id>); see canopy tune --help");
    spec = studySpec(data, options);
    await checkDataFile(data);
  }
  const stderr = process.stderr;
  let printed = { groves: -1, builds: -1 };
  const onProgress = (p: StudyProgress) => {
    // About every 2% of the groves and every 5% of the builds; the same counts twice print once.
    const grovesStep = Math.max(1, Math.ceil(p.grovesTotal / 50));
    const buildsStep = Math.max(1, Math.ceil(p.buildsTotal / 20));
    const groves = p.grovesDone - printed.groves >= grovesStep || (p.grovesDone === p.grovesTotal && printed.groves !== p.grovesDone);
    const builds = p.buildsDone !== printed.builds && (p.buildsDone % buildsStep === 0 || p.buildsDone === p.buildsTotal);
    if (!groves && !builds) return;
    printed = { groves: p.grovesDone, builds: p.buildsDone };
    stderr.write(`${studyProgressLine(p)}\n`);
  };
  const runtime = createLocalRuntime({
    root: options.root,
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.notifyUrl !== undefined ? { notifyUrl: options.notifyUrl } : {}),
    // The ranking below says it all; the notifications go to --notify-url.
    onNotify: () => {},
    onStudyNotify: () => {},
    onWarning: (message) => stderr.write(`canopy: warning: ${message}\n`),
  });
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(new InterruptedExit().exitCode);
    interrupted = true;
    stderr.write("canopy: interrupted: stopping the trainers (Ctrl-C again to quit at once)\n");
    void runtime.close();
  };
  process.on("SIGINT", onSigint);
  let outcome: StudyOutcome;
  try {
    outcome = spec ? await runtime.tune(spec, data, { onProgress }) : await runtime.resumeStudy(options.resume!, { onProgress });
  } catch (err) {
    if (interrupted || err instanceof InterruptedError) {
      const id = err instanceof InterruptedError ? err.buildId : undefined;
      throw new InterruptedExit(`interrupted${id ? `; finish the study with: canopy tune --resume ${id}${options.root !== ".canopy" ? ` --root ${options.root}` : ""}` : ""}`);
    }
    throw err instanceof SpecError ? studyUsageError(err) : err;
  } finally {
    process.off("SIGINT", onSigint);
    await runtime.close();
  }
  if (outcome.status === "FAILED") throw new FailedError(`study ${outcome.studyId} failed: ${outcome.reason ?? "unknown reason"}`);
  const report = outcome.report!;
  if (options.json) return void process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!outcome.notification) stderr.write(`canopy: study ${report.studyId} was already done with the same data and search; nothing to train\n`);
  const reportPath = shown(join(runtime.root, `studies/${report.studyId}/report.json`));
  const pagePath = join(runtime.root, `studies/${report.studyId}/report.html`);
  process.stdout.write(
    [
      `study ${report.studyId}: ${report.candidates.length} candidates x ${report.cv} folds (${report.builds.total} builds, ${report.builds.failed} failed)`,
      `best ${report.scoring} ${report.best_score_.toFixed(4)} with ${showParams(report.best_params_)}`,
      "",
      rankingTable(report),
      "",
      `report ${reportPath}`,
      ...(existsSync(pagePath) ? [`page   ${shown(pagePath)}`] : []),
      "",
    ].join("\n"),
  );
}
