import { UsageError } from "../errors.ts";
import { checkDataFile } from "../fs.ts";
import { csvField, FeatureReader } from "../features.ts";
import { openModelRef, type LoadedPartitionedModel } from "../model.ts";
import { partitionedPredictionLines, readNamedTable } from "../partitioned-table.ts";

export interface PredictOptions {
  model: string;
  proba?: boolean;
  /** A partitioned model: rows whose partition value has no model (and no fallback) get an empty prediction instead of failing the run. */
  skipUnknown?: boolean;
  root: string;
}

/** Predictions as CSV on stdout: one column named after the label, or one probability column per class. */
export async function predict(
  data: string,
  options: PredictOptions,
  out: NodeJS.WritableStream = process.stdout,
  note: (line: string) => void = (line) => process.stderr.write(`canopy: ${line}\n`),
): Promise<void> {
  const opened = await openModelRef(options.model, options.root);
  if (opened.kind === "partitioned") return predictPartitioned(data, opened, options, out, note);
  const { forest } = opened;
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

/**
 * A partitioned model: the table is read once (cells kept as read), rows are routed by core's PartitionedPredictor
 * (one partition's forest at a time), and the answers written in row order. The column is named after the first
 * served partition's label. An unknown value fails the run (exit 2) naming it, unless --skip-unknown.
 */
async function predictPartitioned(
  data: string,
  opened: LoadedPartitionedModel,
  options: PredictOptions,
  out: NodeJS.WritableStream,
  note: (line: string) => void,
): Promise<void> {
  const { model } = opened;
  if (options.proba && model.task !== "classification") throw new UsageError("--proba needs a classification model; this partitioned model is regression");
  await checkDataFile(data);
  const core = await import("@canopy/core");
  const { header, rows, numbers } = await readNamedTable(data);
  const predictor = new core.PartitionedPredictor(model, (ref, key) => opened.load(ref, key));
  const result = await predictor.predict(core.tableRows(header, rows, numbers), { proba: options.proba, skipUnknown: options.skipUnknown });
  const lines = partitionedPredictionLines(options.proba === true, result);
  out.write(`${lines.join("\n")}\n`);
  if (result.unknown.length > 0) {
    note(`warning: ${core.unknownPartitionMessage(model.partitionBy, result.unknown, (r) => `row ${numbers[r]}`)}; their predictions are empty (--skip-unknown)`);
  }
}
