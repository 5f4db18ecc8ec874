import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CsvError, printable, type CellValue } from "@canopy/forest";
import { InputError, SpecError } from "./errors.ts";
import { partitionKey } from "./partitioned-model.ts";
import {
  checkPartitionOptions,
  PARTITION_IDENTIFIER,
  PARTITION_LIMITS,
  partitionMemberSpec,
  tooManyPartitions,
  type PartitionRunOptions,
  type PreparedPartition,
  type PreparedPartitions,
} from "./partition-plan.ts";
import { systemClock, type BlobStore, type Clock } from "./ports.ts";
import type { BuildSpec } from "./spec.ts";
import { prepareBuildData } from "./submit.ts";
import { decodeRows, SpillEncoder } from "./row-spill.ts";
import type { RowSink, TableSource } from "./table-source.ts";

/**
 * Preparing a partitioned run: the input is read once; each row goes to its partition (partitionKey of its cell, the
 * rule predict routes by) and is spilled to one temporary file in per-partition chunks, so memory holds the spill
 * buffers (SPILL_BUFFER_BYTES in all), not the table. Then each partition's rows are replayed, in their order, into
 * prepareBuildData with the run's spec and the partition column dropped: the pack `canopy train <its rows> --drop
 * <col>` makes (kinds inferred on its rows alone), stored, and released before the next. With `--fallback global`
 * the same single read also feeds the fallback's table (every row), which holds all rows as typed columns, as
 * `canopy train` of the whole table would.
 */

/** Rows buffered before a partition's chunk is written, and in all before every buffer is written. */
const CHUNK_BYTES = 256 * 1024;
const SPILL_BUFFER_BYTES = 32 * 1024 * 1024;

interface Group {
  value: string;
  rows: number;
  chunks: { at: number; length: number }[];
  /** Its rows since the last chunk was written (row-spill.ts's bytes). */
  rowsBuffered: SpillEncoder;
}

/** A cell as the key it routes by: Parquet's INT64 (bigint) as its digits, a date as its ISO text. */
function cellKey(value: CellValue): string | undefined {
  if (typeof value === "bigint") return partitionKey(value.toString());
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : partitionKey(value.toISOString());
  return partitionKey(value);
}

const cellText = (value: CellValue): string => (value instanceof Date ? value.toISOString() : String(value).trim());

/** Rows of every partition, spilled to a file as they stream by. */
class PartitionSpill implements RowSink {
  readonly groups = new Map<string, Group>();
  names: string[] = [];
  column = -1;
  rows = 0;
  unkeyed = 0;
  private readonly dir: string;
  readonly file: string;
  private readonly fd: number;
  private size = 0;
  private buffered = 0;

  /** Removes the spill if the process exits before close() (a second Ctrl-C): nothing of it is left behind. */
  private readonly onExit = () => rmSync(this.dir, { recursive: true, force: true });

  constructor(private readonly partitionBy: string, tmp: string) {
    this.dir = mkdtempSync(join(tmp, "canopy-partitions-"));
    this.file = join(this.dir, "rows.bin");
    this.fd = openSync(this.file, "w+");
    process.on("exit", this.onExit);
  }

  header(record: string[]): void {
    this.names = record.map((n) => n.trim());
    this.column = this.names.indexOf(this.partitionBy);
    if (this.column < 0) {
      const list = this.names.slice(0, 20).map((n) => printable(n)).join(", ");
      throw new InputError(`--partition-by: no column ${JSON.stringify(printable(this.partitionBy))}; columns are: ${list}${this.names.length > 20 ? ", …" : ""}`);
    }
  }

  row(values: CellValue[], row: number): void {
    if (values.length !== this.names.length) throw new CsvError(`row ${row} has ${values.length} fields, expected ${this.names.length}`, row);
    this.rows++;
    const key = cellKey(values[this.column]);
    if (key === undefined) {
      this.unkeyed++;
      return;
    }
    let group = this.groups.get(key);
    if (!group) {
      if (this.groups.size >= PARTITION_LIMITS.maxPartitions) throw tooManyPartitions(this.partitionBy, this.groups.size, this.rows, true);
      group = { value: cellText(values[this.column]), rows: 0, chunks: [], rowsBuffered: new SpillEncoder() };
      this.groups.set(key, group);
    }
    group.rows++;
    const before = group.rowsBuffered.length;
    group.rowsBuffered.row(row, values);
    this.buffered += group.rowsBuffered.length - before;
    if (group.rowsBuffered.length >= CHUNK_BYTES) this.flush(group);
    if (this.buffered >= SPILL_BUFFER_BYTES) for (const g of this.groups.values()) this.flush(g);
  }

  flush(group: Group): void {
    if (group.rowsBuffered.length === 0) return;
    const bytes = group.rowsBuffered.take();
    writeSync(this.fd, bytes, 0, bytes.length, this.size);
    group.chunks.push({ at: this.size, length: bytes.length });
    this.size += bytes.length;
    this.buffered -= bytes.length;
  }

  /** What packing partition `key` needs (a worker thread can do it: the spill is read by its path). */
  job(key: string, name: string, spec: BuildSpec): SpilledPartition {
    return { spec, name, file: this.file, chunks: this.groups.get(key)!.chunks, names: this.names };
  }

  close(): void {
    process.off("exit", this.onExit);
    closeSync(this.fd);
    this.onExit();
  }
}

/** One partition's spilled rows and the spec its pack is made with: what packSpilledPartition needs, and no more. */
export interface SpilledPartition {
  /** The member spec (the run's with the partition column dropped). */
  spec: BuildSpec;
  /** The table's name in messages: the input's, with the partition's value. */
  name: string;
  file: string;
  chunks: { at: number; length: number }[];
  names: string[];
}

/** A partition's pack as stored, or why its own rows refuse a build (it is then skipped with that reason). */
export type PartitionPackOutcome = { packKey: string; hash: string; nRows: number; task: "classification" | "regression" } | { refused: string };

/**
 * Packs where preparePartitions says: in this process by default; a runtime with idle threads packs `concurrency`
 * partitions at once (runtime-local's trainers do, as the run's groves wait for every pack anyway). Packs are
 * content-addressed, so where one is made never changes its bytes.
 */
export interface PartitionPacker {
  concurrency: number;
  pack(job: SpilledPartition): Promise<PartitionPackOutcome>;
}

/**
 * Replays a partition's rows, in their order, into prepareBuildData and stores its pack. A refusal of its own rows
 * (no feature left, no training row) is returned, not thrown: the run skips that partition, as train would refuse it.
 */
export async function packSpilledPartition(job: SpilledPartition, blobs: BlobStore, clock?: Clock): Promise<PartitionPackOutcome> {
  const fd = openSync(job.file, "r");
  try {
    const table: TableSource = {
      name: job.name,
      format: "partition",
      read: async (sink) => {
        sink.header(job.names);
        for (const { at, length } of job.chunks) {
          const bytes = Buffer.allocUnsafe(length);
          readSync(fd, bytes, 0, length, at);
          decodeRows(bytes, job.names.length, (values, row) => sink.row(values, row));
        }
      },
    };
    const prepared = await prepareBuildData(job.spec, table, blobs, clock ? { clock } : {});
    return { packKey: prepared.packKey, hash: prepared.hash, nRows: prepared.pack.nRows, task: prepared.pack.target.task };
  } catch (err) {
    if (!(err instanceof CsvError || err instanceof SpecError)) throw err;
    return { refused: err.message.split("\n")[0]!.slice(0, 300) };
  } finally {
    closeSync(fd);
  }
}

/** The input's columns a row must carry: without the label, weight, dropped columns and the partition column. */
function featureColumns(names: string[], spec: BuildSpec, partitionBy: string): string[] {
  const label = spec.label?.trim() ?? names[names.length - 1];
  const out = new Set([label, spec.weight_column?.trim(), partitionBy, ...(spec.columns?.drop ?? []).map((c) => c.trim())]);
  return names.filter((n) => !out.has(n));
}

export interface PartitionProgress {
  stage: "reading" | "packing";
  rows: number;
  partitions: number;
  /** Partitions packed so far (stage packing). */
  packed?: number;
}

/**
 * Reads the table once and stores one pack per partition of at least `minPartitionRows` rows (and the fallback's,
 * with `fallback: "global"`). Refused before any pack is stored: a missing partition column (naming it), more
 * partitions than a run carries, a column with nearly one value per row. A partition whose own rows the build
 * refuses (no feature left, no training row) is skipped with that reason; partitions whose labels make them another
 * task than the first's are refused: --task decides then.
 */
export async function preparePartitions(
  spec: BuildSpec,
  options: PartitionRunOptions,
  source: TableSource,
  blobs: BlobStore,
  o: { clock?: Clock; tmpDir?: string; onProgress?: (p: PartitionProgress) => void; packer?: PartitionPacker } = {},
): Promise<PreparedPartitions> {
  const clock = o.clock ?? systemClock;
  const started = clock.now();
  const partitionBy = options.partitionBy.trim();
  checkPartitionOptions(spec, { ...options, partitionBy });
  const memberSpec = partitionMemberSpec(spec, partitionBy);
  const spill = new PartitionSpill(partitionBy, o.tmpDir ?? tmpdir());
  try {
    let fallback: PreparedPartition | undefined;
    if (options.fallback === "global") {
      // The one read drives both: each row goes to the fallback's table and to its partition.
      const tee: TableSource = {
        name: source.name,
        format: source.format,
        read: (sink) =>
          source.read({
            header: (names) => {
              spill.header(names);
              sink.header(names);
            },
            row: (values, row) => {
              spill.row(values, row);
              sink.row(values, row);
            },
          }),
      };
      const prepared = await prepareBuildData(memberSpec, tee, blobs, { clock, check: () => checkGroups(spill, partitionBy) });
      fallback = { fallback: true, rows: spill.rows, packKey: prepared.packKey, pack: { hash: prepared.hash, nRows: prepared.pack.nRows, target: { task: prepared.pack.target.task } } };
    } else {
      await source.read(spill);
      if (spill.names.length === 0) throw new CsvError(`${printable(source.name)}: CSV is empty: expected a header row and data rows`);
      checkGroups(spill, partitionBy);
    }
    for (const g of spill.groups.values()) spill.flush(g);
    o.onProgress?.({ stage: "reading", rows: spill.rows, partitions: spill.groups.size });

    const keys = [...spill.groups.keys()].sort();
    const partitions: PreparedPartition[] = [];
    const skipped: PreparedPartitions["skipped"] = [];
    let task = fallback?.pack.target.task;
    let taskFrom = fallback ? "the fallback (every row)" : undefined;
    const packer: PartitionPacker = o.packer ?? { concurrency: 1, pack: (job) => packSpilledPartition(job, blobs, clock) };
    const named = (key: string) => `partition ${JSON.stringify(printable(spill.groups.get(key)!.value))}`;
    // Packs run `concurrency` at a time; their outcomes are taken in key order, so the run is the same either way.
    const packing = new Map<string, Promise<PartitionPackOutcome>>();
    const eligible = keys.filter((key) => spill.groups.get(key)!.rows >= options.minPartitionRows);
    let launched = 0;
    const startMore = () => {
      while (launched < eligible.length && packing.size < Math.max(1, packer.concurrency)) {
        const key = eligible[launched++]!;
        const outcome = packer.pack(spill.job(key, `${source.name} (${named(key)})`, memberSpec));
        // Awaited in order below; a rejection met there first is not left unhandled meanwhile.
        outcome.catch(() => undefined);
        packing.set(key, outcome);
      }
    };
    try {
      startMore();
      for (const [i, key] of keys.entries()) {
        const group = spill.groups.get(key)!;
        if (group.rows < options.minPartitionRows) {
          skipped.push({ value: group.value, rows: group.rows, reason: `${group.rows} rows, fewer than --min-partition-rows ${options.minPartitionRows}` });
          continue;
        }
        // Launched already: eligible keys go out in this order, and each one taken makes room for the next.
        const prepared = await packing.get(key)!;
        packing.delete(key);
        startMore();
        if ("refused" in prepared) {
          skipped.push({ value: group.value, rows: group.rows, reason: prepared.refused });
          continue;
        }
        const t = prepared.task;
        if (task !== undefined && t !== task)
          throw new SpecError([{ path: "task", message: `${named(key)} is ${t} but ${taskFrom} is ${task} (each decided on its own rows); pass --task` }]);
        task = t;
        taskFrom ??= named(key);
        partitions.push({ key, value: group.value, rows: group.rows, packKey: prepared.packKey, pack: { hash: prepared.hash, nRows: prepared.nRows, target: { task: t } } });
        o.onProgress?.({ stage: "packing", rows: spill.rows, partitions: keys.length, packed: i + 1 });
      }
    } finally {
      // The spill is removed once this returns: packs still being made must be done with it first.
      await Promise.allSettled(packing.values());
    }
    if (partitions.length === 0)
      throw new InputError(
        `--partition-by ${JSON.stringify(partitionBy)}: no partition to train: ${keys.length} partitions, ${skipped.filter((s) => s.rows < options.minPartitionRows).length} with fewer than --min-partition-rows ${options.minPartitionRows} rows` +
          (skipped.length > 0 ? ` (e.g. ${JSON.stringify(printable(skipped[0]!.value))}: ${skipped[0]!.reason})` : ""),
      );
    return {
      partitionBy,
      task: task!,
      features: featureColumns(spill.names, spec, partitionBy),
      partitions: fallback ? [...partitions, fallback] : partitions,
      skipped,
      rows: spill.rows,
      unkeyed: spill.unkeyed,
      prepareMs: clock.now() - started,
    };
  } finally {
    spill.close();
  }
}

/** A column with nearly one value per row is an identifier, not a group. */
function checkGroups(spill: PartitionSpill, partitionBy: string): void {
  const keyed = spill.rows - spill.unkeyed;
  if (keyed >= PARTITION_IDENTIFIER.minRows && spill.groups.size >= keyed * PARTITION_IDENTIFIER.share) throw tooManyPartitions(partitionBy, spill.groups.size, keyed, false);
}
