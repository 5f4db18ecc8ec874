import { buildPack, fitForest, readCsvRecords, TableBuilder, type Forest } from "@canopy/forest";
import { sha256Hex } from "../digest.ts";
import { keys } from "../keys.ts";
import { partitionKey, PARTITIONED_MODEL_FORMAT, PARTITIONED_MODEL_VERSION, type PartitionedModel } from "../partitioned-model.ts";
import type { BlobStore } from "../ports.ts";

export interface PartitionedFixtureOptions {
  label: string;
  partitionBy: string;
  trees: number;
  seed?: number;
  /** `p-` and 16 hex digits. */
  runId?: string;
  /** Partitions with fewer rows are skipped (listed in the manifest). Default 1. */
  minRows?: number;
  /** Also train a fallback on every row. */
  fallback?: boolean;
}

export interface PartitionedFixture {
  model: PartitionedModel;
  /** Model bytes by build id (partitions and fallback). */
  files: Map<string, Uint8Array>;
  /** Forests by partition key; the fallback under "". */
  forests: Map<string, Forest>;
}

const idOf = (prefix: string, text: string) => `${prefix}-${sha256Hex(new TextEncoder().encode(text)).slice(0, 16)}`;

/** A CSV's header and its rows grouped by `partitionKey` of `partitionBy` (each group with the value as written, trimmed), and all rows. */
export function partitionRows(csv: string, partitionBy: string): { header: string[]; groups: Map<string, { value: string; rows: string[][] }>; all: string[][] } {
  let header: string[] = [];
  const groups = new Map<string, { value: string; rows: string[][] }>();
  const all: string[][] = [];
  readCsvRecords(csv, (record, row) => {
    if (row === 1) {
      header = record;
      return;
    }
    all.push(record);
    const value = record[header.indexOf(partitionBy)]!;
    const key = partitionKey(value);
    if (key === undefined) return;
    const group = groups.get(key) ?? { value: value.trim(), rows: [] };
    group.rows.push(record);
    groups.set(key, group);
  });
  return { header, groups, all };
}

/**
 * A partitioned model trained in memory for tests of what reads one: one forest per value of `partitionBy` on that
 * value's rows of a CSV (the column dropped, so it is no feature), with the manifest over them. Real models, real
 * digests; the build ids are made up (there are no builds behind them).
 */
export function partitionedFixture(csv: string, options: PartitionedFixtureOptions): PartitionedFixture {
  const { header, groups, all } = partitionRows(csv, options.partitionBy);
  const fit = (rows: string[][]): Forest => {
    const builder = new TableBuilder({ label: options.label, drop: [options.partitionBy] });
    builder.header(header);
    rows.forEach((r, i) => builder.row(r, i + 2));
    const { dataset, schema } = builder.finish();
    return fitForest(buildPack(dataset), { n_estimators: options.trees, random_state: options.seed ?? 1 }).withSchema(schema);
  };
  const runId = options.runId ?? idOf("p", `${options.partitionBy}:${options.trees}:${options.seed ?? 1}`);
  const files = new Map<string, Uint8Array>();
  const forests = new Map<string, Forest>();
  const ref = (name: string, forest: Forest, rows: number) => {
    const bytes = forest.toBinary();
    const build = idOf("b", `${runId}:${name}`);
    files.set(build, bytes);
    return { build, sha256: sha256Hex(bytes), bytes: bytes.byteLength, rows };
  };
  const partitions: PartitionedModel["partitions"] = {};
  const skipped: PartitionedModel["skipped"] = [];
  let features: string[] = [];
  let task: PartitionedModel["task"] = "classification";
  for (const key of [...groups.keys()].sort()) {
    const { value, rows } = groups.get(key)!;
    if (rows.length < (options.minRows ?? 1)) {
      skipped.push({ value, rows: rows.length, reason: `fewer than ${options.minRows} rows` });
      continue;
    }
    const forest = fit(rows);
    forests.set(key, forest);
    features = forest.schema!.columns.map((c) => c.name);
    task = forest.task;
    partitions[key] = { value, ...ref(key, forest, rows.length) };
  }
  let fallback: PartitionedModel["fallback"];
  if (options.fallback) {
    const forest = fit(all);
    forests.set("", forest);
    fallback = ref("(fallback)", forest, all.length);
  }
  const model: PartitionedModel = {
    format: PARTITIONED_MODEL_FORMAT,
    version: PARTITIONED_MODEL_VERSION,
    runId,
    partitionBy: options.partitionBy,
    features,
    task,
    partitions,
    ...(fallback ? { fallback } : {}),
    skipped,
  };
  return { model, files, forests };
}

/** Puts a fixture in a blob store where a partitioned run leaves it: the models under builds/, the manifest under partitions/. */
export async function storePartitioned(blobs: Pick<BlobStore, "put">, fixture: PartitionedFixture): Promise<void> {
  for (const [build, bytes] of fixture.files) await blobs.put(keys.model(build), bytes);
  await blobs.put(keys.partitionedModel(fixture.model.runId), new TextEncoder().encode(JSON.stringify(fixture.model)));
}
