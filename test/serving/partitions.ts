// A partitioned model made with the real CLI, for the tests of what reads one: one ordinary `canopy train` per value
// of a column on that value's rows (the column dropped), then the manifest a partitioned run writes over those
// builds, and its ledger record walked to COMPLETED. No model bytes are written by hand.
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { keys, PARTITIONED_MODEL_FORMAT, PARTITIONED_MODEL_VERSION, type PartitionedModel } from "@canopy/core";
import { buildWithStatus, partitionRows } from "@canopy/core/testing";
import { Forest } from "@canopy/forest";
import { DiskLedger } from "@canopy/runtime-local";
import { expect } from "vitest";
import { canopy } from "./support.ts";

export interface MadePartitions {
  model: PartitionedModel;
  /** The per-partition CSV files trained on, by partition key. */
  files: Map<string, string>;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/**
 * Trains one model per value of `partitionBy` in `dir/.canopy` and writes the partitioned model `runId` over them.
 * Values with fewer than `minRows` rows are listed as skipped. Extra `train` options go in `args`.
 */
export async function makePartitioned(
  dir: string,
  csvPath: string,
  options: { label: string; partitionBy: string; runId: string; args?: string[]; minRows?: number },
): Promise<MadePartitions> {
  const { header, groups } = partitionRows(await readFile(csvPath, "utf8"), options.partitionBy);
  const quote = (cell: string) => (/[",\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell);
  await mkdir(join(dir, "parts"), { recursive: true });
  const partitions: PartitionedModel["partitions"] = {};
  const skipped: PartitionedModel["skipped"] = [];
  const files = new Map<string, string>();
  let features: string[] = [];
  let task: PartitionedModel["task"] = "classification";
  for (const [key, { value, rows: lines }] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (lines.length < (options.minRows ?? 1)) {
      skipped.push({ value, rows: lines.length, reason: `fewer than ${options.minRows} rows` });
      continue;
    }
    const file = join(dir, "parts", `${files.size}.csv`);
    await writeFile(file, [header, ...lines].map((r) => r.map(quote).join(",")).join("\n") + "\n");
    files.set(key, file);
    const run = await canopy(["train", file, "--label", options.label, "--drop", options.partitionBy, ...(options.args ?? []), "--json"], dir);
    expect(run.code, run.stderr).toBe(0);
    const build = (JSON.parse(run.stdout) as { buildId: string }).buildId;
    const bytes = new Uint8Array(await readFile(join(dir, ".canopy", keys.model(build))));
    const forest = Forest.load(bytes);
    features = forest.schema!.columns.map((c) => c.name);
    task = forest.task;
    partitions[key] = { value, build, sha256: sha256(bytes), bytes: bytes.byteLength, rows: lines.length };
  }
  const model: PartitionedModel = {
    format: PARTITIONED_MODEL_FORMAT,
    version: PARTITIONED_MODEL_VERSION,
    runId: options.runId,
    partitionBy: options.partitionBy,
    features,
    task,
    partitions,
    skipped,
  };
  const manifest = join(dir, ".canopy", keys.partitionedModel(options.runId));
  await mkdir(join(manifest, ".."), { recursive: true });
  await writeFile(manifest, JSON.stringify(model, null, 2));
  await buildWithStatus(new DiskLedger(join(dir, ".canopy"), { fsync: false }), "COMPLETED", options.runId);
  return { model, files };
}

/** The exported form: `out/model.json` with `file` set on every partition, the models in `out/partitions/`. */
export async function exportPartitioned(dir: string, made: MadePartitions, out: string): Promise<void> {
  await mkdir(join(out, "partitions"), { recursive: true });
  const partitions: PartitionedModel["partitions"] = {};
  let n = 0;
  for (const [key, ref] of Object.entries(made.model.partitions)) {
    const file = `partitions/${String(n++).padStart(5, "0")}.canopy`;
    await writeFile(join(out, file), await readFile(join(dir, ".canopy", keys.model(ref.build))));
    partitions[key] = { ...ref, file };
  }
  await writeFile(join(out, "model.json"), JSON.stringify({ ...made.model, partitions }, null, 2));
}
