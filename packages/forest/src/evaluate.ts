import { CanopyError } from "./errors.ts";
import type { Forest } from "./forest.ts";
import { classificationMetrics, regressionMetrics, type Metrics } from "./metrics.ts";
import type { DatasetPack } from "./pack.ts";

/** Scores a forest on rows of a pack (e.g. the held-out split), in bin space. */
export function evaluate(forest: Forest, pack: DatasetPack, rows: Uint32Array): Metrics {
  if (rows.length === 0) throw new CanopyError("nothing to evaluate: no rows");
  const target = pack.target;
  if (target.task !== forest.task) throw new CanopyError(`a ${forest.task} model cannot be scored on ${target.task} data`);
  if (target.task === "classification") {
    if (target.classes.join("\u0000") !== forest.classes.join("\u0000")) {
      throw new CanopyError("the model's classes differ from the dataset's");
    }
    const truth = new Uint16Array(rows.length);
    for (let i = 0; i < rows.length; i++) truth[i] = target.codes[rows[i]];
    return classificationMetrics(truth, forest.predictPackProba(pack, rows), forest.classes);
  }
  const truth = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) truth[i] = target.values[rows[i]];
  return regressionMetrics(truth, forest.predictPack(pack, rows) as Float64Array);
}
