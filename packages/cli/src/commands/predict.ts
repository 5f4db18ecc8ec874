import { UsageError } from "../errors.ts";
import { checkDataFile } from "../fs.ts";
import { csvField, FeatureReader } from "../features.ts";
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
  // Any table training reads (CSV, .csv.gz, Parquet), streamed through the model's schema.
  await checkDataFile(data);
  const ingest = await import("@canopy/core/ingest");
  const reader = new FeatureReader(forest.schema ?? forest.featureNames);
  await (await ingest.openTable(ingest.fileSource(data))).read(reader);
  const X = reader.result();
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
