// Section: Canopy vs scikit-learn vs ml-random-forest, 10-tree forests on one thread, plus 100-tree predict speed.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildPack } from "@canopy/forest";
import { loadDigits, loadFashionMnist, fingerprint, writeCaseFiles } from "./data.ts";
import type { BenchCase } from "./data.ts";
import { toDataset } from "./engine.ts";
import type { RunOptions } from "./engine.ts";
import { mlrfCapSeconds, runCapped, runMlrf } from "./mlrf.ts";
import { bytesPerNode, failed } from "./results.ts";
import type { EngineName, EngineResult } from "./results.ts";
import { check } from "./section.ts";
import type { Section, SectionContext, TargetCheck } from "./section.ts";
import { runSklearn } from "./sklearn.ts";
import { scalingExponent } from "./stats.ts";
import { fmtBytes, fmtFixed, fmtInt, fmtSeconds } from "./table.ts";
import type { Table } from "./table.ts";

export const SEED = 0;
export const TREES = 10;
export const PREDICT_TREES = 100;
export const PREDICT_REPEATS = 3;
/** The depth-limited binary task: FM classes 5–9 against 0–4, max_depth 10, at these forest sizes. */
export const BINARY_DEPTH = 10;
export const BINARY_TREES = [10, 100];
/** Single-row predict latency is measured over this many test rows (one call each). */
export const LATENCY_ROWS = 1000;
/** Trainer memory: one grove of this many trees (of a PREDICT_TREES build), in a fresh process. */
export const GROVE_TREES = 10;
const FM_SIZES = [5000, 20000, 60000];

interface CaseSpec {
  load: () => BenchCase;
  mlrf: boolean;
  /** Train rows, for the scaling fit (FM only). */
  fmRows?: number;
}

function caseSpecs(quick: boolean): CaseSpec[] {
  const sizes = quick ? FM_SIZES.slice(0, 1) : FM_SIZES;
  return [
    { load: () => loadDigits(), mlrf: true },
    ...sizes.map((n) => ({ load: () => loadFashionMnist(n), mlrf: n === 5000, fmRows: n })),
  ];
}

/** Canopy and sklearn on one case; an engine failure is recorded, not fatal, so the other numbers still print. */
async function canopyAndSklearn(ctx: SectionContext, c: BenchCase, caseDir: string, opts: RunOptions): Promise<[EngineResult, EngineResult]> {
  ctx.log(`${c.label} (${opts.trees} trees): canopy`);
  const canopy = await runCanopyChild(caseDir, c, opts);
  ctx.log(`${c.label} (${opts.trees} trees): sklearn`);
  const sklearn = await runSklearn(ctx.python, caseDir, c.id, fingerprint(c), opts).catch((e) => failed("sklearn", c.id, opts.trees, e));
  return [canopy, sklearn];
}

/** Canopy on one case in a fresh process (see canopy-child.ts); a failure is recorded like an engine's. */
async function runCanopyChild(caseDir: string, c: BenchCase, opts: RunOptions): Promise<EngineResult> {
  const r = await runCapped(join("bench", "canopy-child.ts"), [caseDir, JSON.stringify(opts)], 3600);
  if (r.status === "ok") return JSON.parse(r.stdout.trim().split("\n").pop()!) as EngineResult;
  return failed("canopy", c.id, opts.trees, new Error(r.status === "timeout" ? "timed out after 3600 s" : r.message));
}

/** The binary task: classes 5–9 (sandal, shirt, sneaker, bag, ankle boot) against 0–4, on the same rows. */
export function binaryCase(c: BenchCase): BenchCase {
  const part = (p: BenchCase["train"]) => ({ ...p, y: p.y.map((v) => (v >= 5 ? 1 : 0)) });
  return { ...c, id: `${c.id}-binary`, label: `${c.label} binary`, classes: ["0-4", "5-9"], train: part(c.train), test: part(c.test) };
}

interface GroveMemory {
  packMb: number;
  rowCopyMb: number;
  rssBeforeFitMb: number;
  peakRssMb: number;
  groveMb: number;
  fitSeconds: number;
  trees: number;
}

/** Peak RSS of a fresh process that decodes the case's pack and trains one grove, as a trainer does. */
async function groveMemory(c: BenchCase, cacheDir: string): Promise<GroveMemory | string> {
  const file = join(cacheDir, `${c.id}.pack`);
  writeFileSync(file, buildPack(toDataset(c)).bytes);
  const r = await runCapped(join("bench", "grove-memory-child.ts"), [file, String(GROVE_TREES), String(PREDICT_TREES)], 600);
  if (r.status === "ok") return JSON.parse(r.stdout.trim().split("\n").pop()!) as GroveMemory;
  return r.status === "timeout" ? "timed out" : r.message;
}

const ok = (r: EngineResult | undefined): r is EngineResult => r !== undefined && r.status === "ok";
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
const fmtRatio = (x: number | undefined) => (x === undefined ? "-" : `${x.toFixed(2)}×`);

function trainCell(r: EngineResult): string {
  if (r.status === "timeout") return `> ${r.capSeconds} s`;
  if (r.status === "error") return "error";
  return fmtSeconds(r.fitSeconds);
}

export const compareEngines: Section = async (ctx) => {
  const cap = mlrfCapSeconds(ctx.env);
  const opts: RunOptions = { trees: TREES, seed: SEED, predictRepeats: PREDICT_REPEATS };
  const results: EngineResult[] = [];
  const labels = new Map<string, string>();
  const fmRows = new Map<string, number>();
  const specs = caseSpecs(ctx.quick);

  for (const spec of specs) {
    const c = spec.load();
    labels.set(c.id, c.label);
    if (spec.fmRows) fmRows.set(c.id, spec.fmRows);
    const dir = writeCaseFiles(c, ctx.cacheDir);
    // Digits is the first fit of the process: time a second one too, to tell warm-up from fixed costs.
    results.push(...(await canopyAndSklearn(ctx, c, dir, { ...opts, warm: c.id === "digits" })));
    if (spec.mlrf) {
      ctx.log(`${c.label} (${TREES} trees): ml-random-forest (cap ${cap} s)`);
      results.push(await runMlrf(dir, c.id, TREES, SEED, cap));
    }
  }

  // Predict throughput on a bigger model: 100 trees on the largest FM case of this run.
  const bigSpec = specs[specs.length - 1];
  const big = bigSpec.load();
  const bigDir = writeCaseFiles(big, ctx.cacheDir);
  const [c100, s100] = await canopyAndSklearn(ctx, big, bigDir, { ...opts, trees: PREDICT_TREES, latencyRows: LATENCY_ROWS });
  // Single-row latency of a 100-tree digits model too (the serving section's model).
  const digits = specs[0].load();
  const [d100, sd100] = await canopyAndSklearn(ctx, digits, writeCaseFiles(digits, ctx.cacheDir), { ...opts, trees: PREDICT_TREES, latencyRows: LATENCY_ROWS });

  // The depth-limited binary task, 10 and 100 trees.
  const binary = binaryCase(big);
  const binaryDir = writeCaseFiles(binary, ctx.cacheDir);
  const binaryRuns: [number, EngineResult, EngineResult][] = [];
  for (const trees of BINARY_TREES) {
    binaryRuns.push([trees, ...(await canopyAndSklearn(ctx, binary, binaryDir, { ...opts, trees, maxDepth: BINARY_DEPTH }))]);
  }

  ctx.log(`${big.label}: one grove of ${GROVE_TREES} trees in a fresh process (peak RSS)`);
  const memory = await groveMemory(big, ctx.cacheDir);

  const get = (engine: EngineName, caseId: string, trees = TREES) =>
    results.find((r) => r.engine === engine && r.caseId === caseId && r.trees === trees);

  const mainTable: Table = {
    title: `${TREES}-tree forests, one thread (train s for Canopy includes pack s)`,
    headers: ["case", "engine", "train s", "pack s", "accuracy", "predict rows/s", "model", "nodes", "B/node", "time ÷ sklearn"],
    rows: results.map((r) => [
      labels.get(r.caseId)!,
      r.engine,
      trainCell(r),
      fmtSeconds(r.packSeconds),
      fmtFixed(r.accuracy, 4),
      fmtInt(r.predictRowsPerSec),
      fmtBytes(r.modelBytes),
      fmtInt(r.nodeCount),
      fmtFixed(bytesPerNode(r), 1),
      r.engine === "sklearn" || !ok(r) ? "-" : fmtRatio(ratio(r.fitSeconds, get("sklearn", r.caseId)?.fitSeconds)),
    ]),
    notes: results
      .filter((r) => r.status === "error")
      .map((r) => `${r.engine} on ${labels.get(r.caseId)}: ${r.message}`)
      .concat([
        "sklearn: RandomForestClassifier(n_jobs=1) on float32 input; model = len(pickle.dumps(model)); Canopy model = forest.toBinary().",
        `ml-random-forest: JSON.stringify(model.toJSON()); killed after BENCH_MLRF_CAP=${cap} s. predict rows/s = the best run over the test set, of at least ${PREDICT_REPEATS} runs and 0.5 s of predicting (ml-random-forest: 1 run).`,
      ]),
  };

  // Scaling in rows: least-squares slope of log(train s) on log(n) over the FM sizes.
  const exponent = (engine: EngineName): number | undefined => {
    const pts = [...fmRows].map(([id, n]) => ({ n, r: get(engine, id) })).filter((p) => ok(p.r));
    return pts.length === FM_SIZES.length ? scalingExponent(pts.map((p) => ({ n: p.n, t: p.r!.fitSeconds! }))) : undefined;
  };
  const kCanopy = exponent("canopy");
  const kSklearn = exponent("sklearn");

  const bigLabel = `${PREDICT_TREES} trees ${big.label}`;
  const summary: Table = {
    title: "Canopy vs scikit-learn",
    headers: ["measure", "Canopy", "sklearn", "Canopy ÷ sklearn"],
    rows: [
      ...[...labels].map(([id, label]) => {
        const [c, s] = [get("canopy", id), get("sklearn", id)];
        return [`train s, ${label}`, fmtSeconds(c?.fitSeconds), fmtSeconds(s?.fitSeconds), fmtRatio(ratio(c?.fitSeconds, s?.fitSeconds))];
      }),
      [`scaling exponent in rows (FM ${FM_SIZES.map((n) => n / 1000 + "k").join("/")})`, fmtFixed(kCanopy, 3), fmtFixed(kSklearn, 3), "-"],
      [`train s, ${bigLabel}`, fmtSeconds(c100.fitSeconds), fmtSeconds(s100.fitSeconds), fmtRatio(ratio(c100.fitSeconds, s100.fitSeconds))],
      [`accuracy, ${bigLabel}`, fmtFixed(c100.accuracy, 4), fmtFixed(s100.accuracy, 4), "-"],
      [`predict rows/s, ${bigLabel}`, fmtInt(c100.predictRowsPerSec), fmtInt(s100.predictRowsPerSec), fmtRatio(ratio(c100.predictRowsPerSec, s100.predictRowsPerSec))],
      [`bytes/node, ${bigLabel}`, fmtFixed(bytesPerNode(c100), 1), fmtFixed(bytesPerNode(s100), 1), fmtRatio(ratio(bytesPerNode(c100), bytesPerNode(s100)))],
      ...[
        [d100, sd100, `${PREDICT_TREES} trees digits`],
        [c100, s100, bigLabel],
      ].flatMap(([c, s, label]) => [
        [`single-row predict p50 ms, ${label}`, fmtFixed((c as EngineResult).latency?.p50Ms, 3), fmtFixed((s as EngineResult).latency?.p50Ms, 3), fmtRatio(ratio((c as EngineResult).latency?.p50Ms, (s as EngineResult).latency?.p50Ms))],
        [`single-row predict p99 ms, ${label}`, fmtFixed((c as EngineResult).latency?.p99Ms, 3), fmtFixed((s as EngineResult).latency?.p99Ms, 3), fmtRatio(ratio((c as EngineResult).latency?.p99Ms, (s as EngineResult).latency?.p99Ms))],
      ]),
      ...binaryRuns.flatMap(([trees, c, s]) => [
        [`train s, ${binary.label} max_depth ${BINARY_DEPTH}, ${trees} trees`, fmtSeconds(c.fitSeconds), fmtSeconds(s.fitSeconds), fmtRatio(ratio(c.fitSeconds, s.fitSeconds))],
        [`accuracy, ${binary.label} max_depth ${BINARY_DEPTH}, ${trees} trees`, fmtFixed(c.accuracy, 4), fmtFixed(s.accuracy, 4), "-"],
      ]),
    ],
    notes: [
      ...[c100, s100, d100, sd100, ...binaryRuns.flatMap(([, c, s]) => [c, s])].filter((r) => r.status === "error").map((r) => `${r.engine} ${labels.get(r.caseId) ?? r.caseId} (${r.trees} trees): ${r.message}`),
      `single-row predict: predictProba / predict_proba on one test row per call, ${LATENCY_ROWS} rows after ${LATENCY_ROWS / 10} warm-up calls, in process.`,
      `${binary.label}: classes 5–9 against 0–4 on the same rows; both engines max_depth=${BINARY_DEPTH}, max_features="sqrt".`,
    ],
  };

  const memoryTable: Table = {
    title: `Trainer memory: one grove of ${GROVE_TREES} trees on ${big.label} in a fresh process (decode the pack, train)`,
    headers: ["pack MB", "row-major copy MB", "RSS before fit MB", "peak RSS MB", "grove MB", "fit s"],
    rows:
      typeof memory === "string"
        ? []
        : [[fmtFixed(memory.packMb, 1), fmtFixed(memory.rowCopyMb, 1), fmtFixed(memory.rssBeforeFitMb, 0), fmtFixed(memory.peakRssMb, 0), fmtFixed(memory.groveMb, 2), fmtSeconds(memory.fitSeconds)]],
    notes: typeof memory === "string" ? [`not measured: ${memory}`] : ["peak RSS = process.resourceUsage().maxRSS; the row-major copy of the bins is made once per pack (small nodes read it)."],
  };

  const targets: TargetCheck[] = [];
  {
    const [c, s] = [get("canopy", "fm-60k"), get("sklearn", "fm-60k")];
    const both = ok(c) && ok(s);
    const t = ratio(c?.fitSeconds, s?.fitSeconds);
    targets.push(
      check(
        "FM 60k, 10 trees: Canopy train time ≤ 0.5× sklearn, accuracy ≥ sklearn − 0.005",
        both ? `${fmtRatio(t)} time; accuracy ${fmtFixed(c.accuracy, 4)} vs ${fmtFixed(s.accuracy, 4)}` : "not measured",
        both ? t! <= 0.5 && c.accuracy! >= s.accuracy! - 0.005 : undefined,
      ),
    );
  }
  targets.push(
    check(
      "Canopy scaling exponent in rows ≤ 1.15",
      kCanopy === undefined ? "not measured" : `${kCanopy.toFixed(3)} (sklearn ${fmtFixed(kSklearn, 3)})`,
      kCanopy === undefined ? undefined : kCanopy <= 1.15,
    ),
  );
  {
    const both = ok(c100) && ok(s100);
    const p = ratio(c100.predictRowsPerSec, s100.predictRowsPerSec);
    const b = ratio(bytesPerNode(c100), bytesPerNode(s100));
    const where = ctx.quick ? ` [quick run: ${bigLabel}]` : "";
    targets.push(
      check(
        `Predict rows/s ≥ 3× sklearn (${PREDICT_TREES}-tree FM model, batch of ${fmtInt(big.test.nRows)} rows, one thread)`,
        both ? `${fmtRatio(p)} (${fmtInt(c100.predictRowsPerSec)} vs ${fmtInt(s100.predictRowsPerSec)})${where}` : "not measured",
        both ? p! >= 3 : undefined,
      ),
      check(
        "Serialized bytes per node ≤ 0.5× sklearn pickle",
        both ? `${fmtRatio(b)} (${fmtFixed(bytesPerNode(c100), 1)} vs ${fmtFixed(bytesPerNode(s100), 1)} B/node)${where}` : "not measured",
        both ? b! <= 0.5 : undefined,
      ),
    );
  }

  {
    const [c, s] = [get("canopy", "digits"), get("sklearn", "digits")];
    const both = ok(c) && ok(s);
    const t = ratio(c?.fitSeconds, s?.fitSeconds);
    targets.push(
      check(
        "Digits, 10 trees: Canopy train time ≤ 1.0× sklearn",
        both
          ? `${fmtRatio(t)} (${fmtSeconds(c.fitSeconds)} vs ${fmtSeconds(s.fitSeconds)}; pack ${fmtSeconds(c.packSeconds)}; first fit of the process` +
              (c.warm ? `, a second: ${fmtRatio(ratio(c.warm.fitSeconds, s.fitSeconds))}, ${fmtSeconds(c.warm.fitSeconds)}, pack ${fmtSeconds(c.warm.packSeconds)})` : ")")
          : "not measured",
        both ? t! <= 1 : undefined,
      ),
    );
  }
  for (const [trees, c, s] of binaryRuns) {
    const both = ok(c) && ok(s);
    const t = ratio(c.fitSeconds, s.fitSeconds);
    const where = ctx.quick ? ` [quick run: ${binary.label}]` : "";
    targets.push(
      check(
        `FM 60k binary (5–9 vs 0–4), max_depth ${BINARY_DEPTH}, ${trees} trees: Canopy train time ≤ 0.5× sklearn, accuracy ≥ sklearn − 0.005`,
        both ? `${fmtRatio(t)} time (${fmtSeconds(c.fitSeconds)} vs ${fmtSeconds(s.fitSeconds)}); accuracy ${fmtFixed(c.accuracy, 4)} vs ${fmtFixed(s.accuracy, 4)}${where}` : "not measured",
        both && !ctx.quick ? t! <= 0.5 && c.accuracy! >= s.accuracy! - 0.005 : undefined,
      ),
    );
  }
  {
    const lat = (r: EngineResult) => (r.latency ? `p50 ${fmtFixed(r.latency.p50Ms, 3)} ms, p99 ${fmtFixed(r.latency.p99Ms, 3)} ms` : "-");
    const measured = d100.latency !== undefined && c100.latency !== undefined;
    targets.push(
      check(
        `Single-row predict latency in process reported (p50, p99), ${PREDICT_TREES}-tree digits and FM models`,
        measured ? `digits ${lat(d100)} (sklearn ${lat(sd100)}); ${big.label} ${lat(c100)} (sklearn ${lat(s100)})` : "not measured",
        measured ? true : undefined,
      ),
    );
  }
  targets.push(
    check(
      `Trainer memory: peak RSS of one grove (${GROVE_TREES} trees) on FM 60k reported beside the pack size`,
      typeof memory === "string" ? `not measured: ${memory}` : `peak RSS ${fmtFixed(memory.peakRssMb, 0)} MB; pack ${fmtFixed(memory.packMb, 1)} MB (+ ${fmtFixed(memory.rowCopyMb, 1)} MB row-major copy)${ctx.quick ? ` [quick run: ${big.label}]` : ""}`,
      typeof memory === "string" ? undefined : ctx.quick ? undefined : true,
    ),
  );

  return {
    title: "Engine: Canopy vs scikit-learn vs ml-random-forest",
    tables: [mainTable, summary, memoryTable],
    targets,
    raw: { seed: SEED, mlrfCapSeconds: cap, results, predictModel: [c100, s100], digitsModel: [d100, sd100], binary: binaryRuns, groveMemory: memory, exponents: { canopy: kCanopy, sklearn: kSklearn } },
  };
};
