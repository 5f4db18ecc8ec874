import { UsageError } from "../errors.ts";
import { readDataFile } from "../fs.ts";
import { csvField, readFeatureCsv } from "../features.ts";
import { loadModelRef } from "../model.ts";

export interface PredictOptions {
  model: string;
  proba?: boolean;
  root: string;
}

/** Predictions as CSV on stdout: one column named after the label, or one probability column per class. */
export async function predict(data: string, options: PredictOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const { forest } = await loadModelRef(options.model, options.root);
  if (options.proba && forest.task !== "classification") throw new UsageError("--proba needs a classification model; this one is regression");
  const X = readFeatureCsv(await readDataFile(data), forest.featureNames);
  const lines: string[] = [];
  if (options.proba) {
    const k = forest.classes.length;
    const proba = forest.predictProba(X);
    lines.push(forest.classes.map(csvField).join(","));
    for (let r = 0; r < X.nRows; r++) lines.push(Array.from(proba.subarray(r * k, r * k + k), String).join(","));
  } else {
    const predictions = forest.predict(X);
    lines.push(csvField(forest.labelName));
    if (Array.isArray(predictions)) for (const p of predictions) lines.push(csvField(p));
    else for (const v of predictions) lines.push(String(v));
  }
  out.write(`${lines.join("\n")}\n`);
}
