// Section: Canopy vs scikit-learn vs ml-random-forest, 10-tree forests on one thread, plus 100-tree predict speed.
import { loadDigits, loadFashionMnist, fingerprint, writeCaseFiles } from "./data.ts";
import type { BenchCase } from "./data.ts";
import { runCanopy } from "./engine.ts";
import type { RunOptions } from "./engine.ts";
import { mlrfCapSeconds, runMlrf } from "./mlrf.ts";
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
  let canopy: EngineResult;
  try {
    canopy = runCanopy(c, opts);
  } catch (e) {
    canopy = failed("canopy", c.id, opts.trees, e);
  }
  ctx.log(`${c.label} (${opts.trees} trees): sklearn`);
  const sklearn = await runSklearn(ctx.python, caseDir, c.id, fingerprint(c), opts).catch((e) => failed("sklearn", c.id, opts.trees, e));
  return [canopy, sklearn];
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
    results.push(...(await canopyAndSklearn(ctx, c, dir, opts)));
    if (spec.mlrf) {
      ctx.log(`${c.label} (${TREES} trees): ml-random-forest (cap ${cap} s)`);
      results.push(await runMlrf(dir, c.id, TREES, SEED, cap));
    }
  }

  // Predict throughput on a bigger model: 100 trees on the largest FM case of this run.
  const bigSpec = specs[specs.length - 1];
  const big = bigSpec.load();
  const bigDir = writeCaseFiles(big, ctx.cacheDir);
  const [c100, s100] = await canopyAndSklearn(ctx, big, bigDir, { ...opts, trees: PREDICT_TREES });

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
        `ml-random-forest: JSON.stringify(model.toJSON()); killed after BENCH_MLRF_CAP=${cap} s. predict rows/s = best of ${PREDICT_REPEATS} over the test set (ml-random-forest: 1).`,
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
    ],
    notes: [c100, s100].filter((r) => r.status === "error").map((r) => `${r.engine} ${bigLabel}: ${r.message}`),
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
        `Predict rows/s ≥ 2× sklearn (${PREDICT_TREES}-tree FM model, one thread)`,
        both ? `${fmtRatio(p)} (${fmtInt(c100.predictRowsPerSec)} vs ${fmtInt(s100.predictRowsPerSec)})${where}` : "not measured",
        both ? p! >= 2 : undefined,
      ),
      check(
        "Serialized bytes per node ≤ 0.5× sklearn pickle",
        both ? `${fmtRatio(b)} (${fmtFixed(bytesPerNode(c100), 1)} vs ${fmtFixed(bytesPerNode(s100), 1)} B/node)${where}` : "not measured",
        both ? b! <= 0.5 : undefined,
      ),
    );
  }

  return {
    title: "Engine: Canopy vs scikit-learn vs ml-random-forest",
    tables: [mainTable, summary],
    targets,
    raw: { seed: SEED, mlrfCapSeconds: cap, results, predictModel: [c100, s100], exponents: { canopy: kCanopy, sklearn: kSklearn } },
  };
};
