// Ingest section: the 3-million-row flights table (vega-datasets, U.S. BTS) as Parquet, CSV and .csv.gz, each
// prepared into a pack in a fresh process; peak RSS per input MB and per pack MB. The Parquet file is fetched
// with `npm pack vega-datasets@3.2.1` into bench/.cache (13 MB, not committed); the CSV and .csv.gz are written
// from it with the same reader.
import { spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import { fileSource, openTable } from "@canopy/core/ingest";
import type { CellValue } from "@canopy/forest";
import { check, type Section, type SectionContext } from "./section.ts";

const MB = 1024 * 1024;

/** bench/.cache/flights-3m.parquet, from the npm package (extracted once). */
export function ensureFlights(ctx: SectionContext): string {
  const target = join(ctx.cacheDir, "flights-3m.parquet");
  if (existsSync(target)) return target;
  const dir = join(ctx.cacheDir, "vega-datasets");
  mkdirSync(dir, { recursive: true });
  ctx.log("fetching vega-datasets@3.2.1 (npm pack) for flights-3m.parquet");
  const pack = spawnSync("npm", ["pack", "vega-datasets@3.2.1", "--pack-destination", dir, "--silent"], { encoding: "utf8" });
  if (pack.status !== 0) throw new Error(`npm pack vega-datasets@3.2.1 failed: ${pack.stderr}`);
  const tgz = join(dir, pack.stdout.trim().split("\n").pop()!);
  const tar = spawnSync("tar", ["-xzf", tgz, "-C", dir, "package/data/flights-3m.parquet"], { encoding: "utf8" });
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  renameSync(join(dir, "package", "data", "flights-3m.parquet"), target);
  return target;
}

/**
 * The first `limit` rows of the Parquet table as CSV (and gzip-compressed), written once. `numeric`: only the
 * numeric columns, the date as epoch days (what the reader of fc21793 could read).
 */
export async function writeCsv(parquet: string, path: string, limit: number, gzip: boolean, numeric = false): Promise<void> {
  if (existsSync(path)) return;
  const lines: string[] = [];
  const cell = (v: CellValue) =>
    v === null || v === undefined ? "" : v instanceof Date ? (numeric ? String(v.getTime() / 86_400_000) : v.toISOString().slice(0, 16).replace("T", " ")) : String(v);
  const keep = (values: CellValue[]) => (numeric ? values.slice(0, 3) : values);
  const rows = (async function* () {
    const table = await openTable(fileSource(parquet));
    let n = 0;
    const batch: string[] = [];
    await table.read({
      header: (names) => void lines.push(keep(names).join(",")),
      row: (values) => {
        if (n++ < limit) batch.push(keep(values).map(cell).join(","));
      },
    });
    yield `${lines[0]}\n`;
    for (let i = 0; i < batch.length; i += 10_000) yield `${batch.slice(i, i + 10_000).join("\n")}\n`;
  })();
  const temp = `${path}.tmp`;
  if (gzip) await pipeline(Readable.from(rows), createGzip(), createWriteStream(temp));
  else await pipeline(Readable.from(rows), createWriteStream(temp));
  renameSync(temp, path);
}

interface Measured {
  format?: string;
  inputBytes?: number;
  rows?: number;
  features?: number;
  packBytes?: number;
  ms: number;
  maxRssMb: number;
}

function measure(ctx: SectionContext, file?: string, whole = false): Measured {
  const run = spawnSync(process.execPath, ["--import", "tsx", "bench/ingest-child.ts", ...(file ? [file, "delay", ...(whole ? ["whole"] : [])] : [])], {
    encoding: "utf8",
    env: ctx.env,
    maxBuffer: 16 * MB,
  });
  if (run.status !== 0) throw new Error(`ingest of ${file ?? "(nothing)"} failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split("\n").pop()!) as Measured;
}

export const ingestSection: Section = async (ctx) => {
  const parquet = ensureFlights(ctx);
  const rows = ctx.quick ? 300_000 : 3_000_000;
  const csv = join(ctx.cacheDir, `flights-${rows}.csv`);
  const gz = `${csv}.gz`;
  ctx.log(`ingest: writing ${rows} rows of flights as CSV and .csv.gz (once)`);
  await writeCsv(parquet, csv, rows, false);
  await writeCsv(parquet, gz, rows, true);
  const numericCsv = join(ctx.cacheDir, `flights-${rows}-numeric.csv`);
  await writeCsv(parquet, numericCsv, rows, false, true);
  const inputs = ctx.quick ? [csv, gz] : [parquet, csv, gz];
  const baseline = measure(ctx);
  const results = inputs.map((file) => {
    ctx.log(`ingest: ${file}`);
    return { file, ...measure(ctx, file) };
  });
  // Side by side on a table the old reader can read: streamed vs the whole file in memory.
  ctx.log(`ingest: ${numericCsv}, streamed and whole`);
  const streamed = { file: numericCsv, ...measure(ctx, numericCsv) };
  const whole = { file: numericCsv, ...measure(ctx, numericCsv, true) };
  streamed.format = "numeric csv (streamed)";
  results.push(streamed, whole);
  const table = {
    title: `Ingest: flights (${rows.toLocaleString("en-US")} rows; date, delay, distance, origin, destination; the numeric CSV: date as epoch days, delay, distance), label delay`,
    headers: ["input", "input MB", "pack MB", "peak RSS MB", "RSS over baseline MB", "RSS/input MB", "RSS/pack MB", "rows/s"],
    rows: results.map((r) => {
      const over = r.maxRssMb - baseline.maxRssMb;
      const inMb = (r.inputBytes ?? statSync(r.file).size) / MB;
      const packMb = (r.packBytes ?? 0) / MB;
      return [
        r.format ?? "?",
        inMb.toFixed(1),
        packMb.toFixed(1),
        r.maxRssMb.toFixed(0),
        over.toFixed(0),
        (over / inMb).toFixed(2),
        (over / packMb).toFixed(2),
        Math.round((r.rows ?? 0) / (r.ms / 1000)).toLocaleString("en-US"),
      ];
    }),
    notes: [
      `baseline: a process that loads the same modules and reads nothing peaks at ${baseline.maxRssMb.toFixed(0)} MB`,
      "each input is read once, streamed (CSV in 1 MB chunks, Parquet by row group) into typed columns, then binned into the pack",
    ],
  };
  const streamedRss = streamed.maxRssMb - baseline.maxRssMb;
  const wholeRss = whole.maxRssMb - baseline.maxRssMb;
  const byFormat = new Map(results.map((r) => [r.format, r]));
  const csvRss = byFormat.get("csv")!.maxRssMb - baseline.maxRssMb;
  const other = byFormat.get(ctx.quick ? "csv.gz" : "parquet")!;
  const otherRss = other.maxRssMb - baseline.maxRssMb;
  const csvMb = (byFormat.get("csv")!.inputBytes ?? 0) / MB;
  return {
    title: "Ingest (issue 12)",
    tables: [table],
    targets: [
      check(
        `the CSV's text is not held: its peak RSS over baseline is within 15% of the same table's from ${ctx.quick ? ".csv.gz" : "Parquet"} (${csvMb.toFixed(0)} MB of text)`,
        `${csvRss.toFixed(0)} MB vs ${otherRss.toFixed(0)} MB (${(csvRss / otherRss).toFixed(2)}×)`,
        csvRss <= otherRss * 1.15,
      ),
      check(
        "streaming uses less memory than reading the whole file first (fc21793's way), on the same numeric CSV",
        `${streamedRss.toFixed(0)} MB vs ${wholeRss.toFixed(0)} MB over baseline (${(streamedRss / wholeRss).toFixed(2)}×)`,
        streamedRss < wholeRss,
      ),
    ],
    raw: { baseline, results },
  };
};
