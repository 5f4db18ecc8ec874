import { parseStudySpec, SEARCHABLE, SpecError, type ParamDistribution, type ParamValue, type StudySpec } from "@canopy/core";
import { UsageError } from "./errors.ts";
import { FLAG_FOR_FIELD, specInput, specUsageError } from "./spec.ts";
import type { StudyFlags } from "./study-options.ts";

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
export function studySpec(data: string, options: StudyFlags): StudySpec {
  const grid: Record<string, ParamValue[]> = {};
  for (const g of options.grid ?? []) {
    const [name, values] = splitAssignment(g, "--grid");
    if (name in grid) throw new UsageError(`--grid ${name}: given twice`);
    grid[name] = values.split(",").map(parseParamValue);
  }
  if (options.oob && options.cv !== undefined) throw new UsageError("--cv and --oob are exclusive: a candidate is scored by K folds or by its out-of-bag rows, not both");
  const params = Object.fromEntries((options.param ?? []).map(parseDistribution));
  if (options.random === undefined && (options.param?.length ?? 0) > 0) throw new UsageError("--param draws candidates for --random N; add --random");
  if (!options.halving && (options.factor !== undefined || options.minTrees !== undefined)) throw new UsageError(`--${options.factor !== undefined ? "factor" : "min-trees"} is a setting of --halving; add --halving`);
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
      ...(options.cv !== undefined ? { cv: options.cv } : {}),
      ...(options.oob ? { oob: true } : {}),
      // sklearn's refit=True is the default: the study ends with its final model.
      ...(options.refit !== false ? { refit: true } : {}),
      ...(options.halving ? { halving: { factor: options.factor ?? 3, ...(options.minTrees !== undefined ? { min_resources: options.minTrees } : {}) } } : {}),
    });
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    throw studyUsageError(err);
  }
}

export function studyUsageError(err: SpecError): UsageError {
  return new UsageError(
    err.issues
      .map((i) => {
        const [head, name] = i.path.split(".");
        if (head === "grid") return `--grid${name ? ` ${name}` : ""}: ${i.message}`;
        if (head === "random") return `--random/--param${i.path.split(".")[2] ? ` ${i.path.split(".")[2]}` : ""}: ${i.message}`;
        if (head === "scoring" || head === "cv") return `--${head}: ${i.message}`;
        if (head === "oob") return i.message.startsWith("--") ? i.message : `--oob: ${i.message}`;
        if (head === "halving") return `${name === "factor" ? "--factor" : name === "min_resources" ? "--min-trees" : "--halving"}: ${i.message}`;
        // A candidate's value of the wrong type: the searched option is named by the grid (its flag would be wrong).
        if (/\(candidate /.test(i.message) && (SEARCHABLE as string[]).includes(head)) return `--grid ${head}: ${i.message}`;
        return specUsageError(new SpecError([i])).message;
      })
      .join("; "),
  );
}

