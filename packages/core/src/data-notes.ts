import { canonicalNumber, quoted, type DatasetPack } from "@canopy/forest";
import type { RowSplit } from "./plan.ts";
import type { BuildSpec } from "./spec.ts";

/**
 * What the data made of a spec, said before training: the task detected from the label and why, and what
 * scikit-learn 1.9.1 would accept without a word but a user should hear about. `path` is the spec field a
 * warning is about (a command names its flag).
 */
export interface DataNote {
  level: "note" | "warning";
  message: string;
  path?: string;
}

/** Integer labels with more distinct values than this look like a quantity rather than classes. */
export const QUANTITY_CLASSES = 10;

/** The task's auto-detection (the engine's rule), which these notes explain: see forest/src/csv.ts. */
const MAX_AUTO_CLASSES = 50;

const isIntegerName = (name: string) => /^-?\d+$/.test(name);

/**
 * The detected task and why, as scikit-learn's `type_of_target` (1.9.1, sklearn/utils/multiclass.py) would be
 * asked: text labels are classes; numbers with a fractional part are continuous (regression). sklearn reads any
 * integer label as classes ("multiclass", whatever the count); Canopy keeps integer labels as classes only with at
 * most 50 distinct values and at most one per two rows, else regression. Integer classes past QUANTITY_CLASSES
 * are said as a warning naming --task regression: a rounded measure or a count looks exactly like that.
 */
export function taskNote(spec: Pick<BuildSpec, "task">, pack: Pick<DatasetPack, "labelName" | "nRows" | "target">): DataNote | undefined {
  if (spec.task !== "auto") return undefined;
  const label = quoted(pack.labelName);
  const target = pack.target;
  if (target.task === "classification") {
    const k = target.classes.length;
    if (!target.classes.every(isIntegerName))
      return { level: "note", message: `task: classification (detected: label ${label} holds text; ${k} class${k === 1 ? "" : "es"})` };
    if (k > QUANTITY_CLASSES) {
      const values = target.classes.map(Number);
      const range = `${canonicalNumber(Math.min(...values))} to ${canonicalNumber(Math.max(...values))}`;
      return {
        level: "warning",
        message:
          `task: classification, ${k} classes (detected: label ${label} holds ${k} distinct integers, ${range}, and integers with at most ` +
          `${MAX_AUTO_CLASSES} values are read as classes); if it is a quantity (a count, a score, a rounded measure), use --task regression`,
      };
    }
    return { level: "note", message: `task: classification (detected: label ${label} holds ${k} distinct integers; --task regression reads them as a quantity)` };
  }
  const values = target.values;
  let integral = true;
  for (let i = 0; i < values.length && integral; i++) integral = Number.isInteger(values[i]);
  if (!integral) return { level: "note", message: `task: regression (detected: label ${label} holds numbers with fractional parts)` };
  const distinct = new Set(values).size;
  const why = distinct > MAX_AUTO_CLASSES ? `more than ${MAX_AUTO_CLASSES}` : `more than one per two of the ${pack.nRows} rows`;
  return { level: "note", message: `task: regression (detected: label ${label} holds ${distinct} distinct integers, ${why}; --task classification reads them as classes)` };
}

/**
 * Options scikit-learn 1.9.1 takes silently whose effect on this data a user should hear about, and the one it
 * warns about. None of them is an error there, so none is here:
 * - `max_features` above the feature count: sklearn's splitter draws features without replacement until it has
 *   seen them all (tree/_splitter.pyx), so every split tries all of them; so does Canopy.
 * - an integer `max_samples` above the training rows: sklearn draws that many rows with replacement
 *   (ensemble/_bootstrap.py `_get_n_samples_bootstrap` returns it as is; 1.9 dropped the old upper bound); so
 *   does Canopy.
 * - a fractional `max_samples` that draws fewer than max(10, n^(1/3)) rows: sklearn warns, with this advice.
 * - a single class in the training rows: RandomForestClassifier fits it (every tree predicts it, score 1.0);
 *   sklearn's other classifiers refuse it ("needs samples of at least 2 classes"). A per-entity model may meet it
 *   legitimately, so it is a warning, not an error.
 */
export function optionWarnings(spec: BuildSpec, pack: Pick<DatasetPack, "nFeatures" | "labelName" | "target">, split: RowSplit): DataNote[] {
  const out: DataNote[] = [];
  const trainRows = split.train.length;
  const mf = spec.max_features;
  if (typeof mf === "number" && Number.isInteger(mf) && mf > pack.nFeatures)
    out.push({
      level: "warning",
      message: `${mf} is more than the ${pack.nFeatures} features; every split tries all ${pack.nFeatures}, as scikit-learn 1.9.1 does`,
      path: "max_features",
    });
  const ms = spec.max_samples;
  if (typeof ms === "number" && spec.bootstrap !== false) {
    if (Number.isInteger(ms) && ms > trainRows)
      out.push({
        level: "warning",
        message: `${ms} is more than the ${trainRows} training rows; each tree draws ${ms} rows with replacement, as scikit-learn 1.9.1 does`,
        path: "max_samples",
      });
    else if (!Number.isInteger(ms)) {
      const draws = Math.max(1, Math.round(ms * trainRows));
      if (draws < Math.max(10, Math.cbrt(trainRows)))
        out.push({
          level: "warning",
          message: `the fraction ${ms} of ${trainRows} training rows is a low number (${draws}) of bootstrap samples; pass an integer count instead (scikit-learn 1.9.1 warns the same)`,
          path: "max_samples",
        });
    }
  }
  if (pack.target.task === "classification" && trainRows > 0) {
    const { codes, classes } = pack.target;
    const first = codes[split.train[0]!]!;
    if (split.train.every((r) => codes[r] === first))
      out.push({
        level: "warning",
        message:
          `label ${quoted(pack.labelName)} has one class (${quoted(classes[first]!)}) in the ${trainRows} training rows: every tree predicts it, so the ` +
          `metrics say nothing (scikit-learn 1.9.1's RandomForestClassifier fits it the same way; its other classifiers refuse it)`,

      });
  }
  return out;
}
