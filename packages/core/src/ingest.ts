import { open, stat } from "node:fs/promises";
import { createGunzip } from "node:zlib";
import { Readable } from "node:stream";
import { binaryKind, CsvError, printable, type CellValue } from "@canopy/forest";
import { csvRows, type RowSink, type TableSource } from "./table-source.ts";

/**
 * Opening tables for training: the format is chosen by the content (CSV text, gzip-compressed CSV, Parquet),
 * not by the name. Kept out of the core's index so the Lambda functions, which never read tables, do not bundle
 * the Parquet reader.
 */

/** Bytes that can be read front to back (CSV) or at any offset (Parquet). */
export interface ByteSource {
  /** A path or URL, for messages. */
  name: string;
  size(): Promise<number>;
  /** Bytes [start, end). */
  read(start: number, end: number): Promise<Uint8Array>;
  stream(): AsyncIterable<Uint8Array>;
}

export {
  packSpilledPartition,
  preparePartitions,
  type PartitionPackOutcome,
  type PartitionPacker,
  type PartitionProgress,
  type SpilledPartition,
} from "./partition-table.ts";

export const FORMATS_READ = "CSV (UTF-8 text), gzip-compressed CSV (.csv.gz) and Parquet";

/** A file on disk. */
export function fileSource(path: string): ByteSource {
  return {
    name: path,
    size: async () => (await stat(path)).size,
    read: async (start, end) => {
      const handle = await open(path, "r");
      try {
        const out = new Uint8Array(end - start);
        let done = 0;
        while (done < out.length) {
          const { bytesRead } = await handle.read(out, done, out.length - done, start + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return out.subarray(0, done);
      } finally {
        await handle.close();
      }
    },
    stream: () => (async function* () {
      const handle = await open(path, "r");
      try {
        yield* handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false }) as AsyncIterable<Uint8Array>;
      } finally {
        await handle.close();
      }
    })(),
  };
}

/** Bytes in memory. */
export function bytesSource(bytes: Uint8Array, name: string): ByteSource {
  return {
    name,
    size: async () => bytes.byteLength,
    read: async (start, end) => bytes.subarray(start, end),
    stream: () => (async function* () {
      const CHUNK = 1 << 20;
      for (let at = 0; at < bytes.byteLength; at += CHUNK) yield bytes.subarray(at, Math.min(bytes.byteLength, at + CHUNK));
    })(),
  };
}

const isGzip = (head: Uint8Array) => head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
const isParquet = (head: Uint8Array) => head.length >= 4 && head[0] === 0x50 && head[1] === 0x41 && head[2] === 0x52 && head[3] === 0x31;

/** The table in `source`, its reader chosen by its first bytes. Anything else is refused in one line. */
export async function openTable(source: ByteSource): Promise<TableSource> {
  const size = await source.size();
  const head = await source.read(0, Math.min(size, 64 * 1024));
  const name = source.name;
  if (isParquet(head)) return { name, format: "parquet", bytes: size, read: (sink) => parquetRows(source, size, sink) };
  if (isGzip(head)) return { name, format: "csv.gz", bytes: size, read: (sink) => gzipRows(source, sink) };
  const kind = binaryKind(head);
  if (kind !== undefined) throw new CsvError(`${printable(name)}: the data is ${kind}; canopy reads ${FORMATS_READ}`);
  return { name, format: "csv", bytes: size, read: (sink) => csvRows(source.stream(), sink) };
}

async function gzipRows(source: ByteSource, sink: RowSink): Promise<void> {
  let first = true;
  const checked = (async function* () {
    // Made when the rows are first pulled, so that the iteration below is listening before gunzip can fail: a damaged
    // header errors at once, and an 'error' event nobody listens to would crash the process.
    const input = Readable.from(source.stream());
    const gunzip = createGunzip();
    input.on("error", (err) => gunzip.destroy(err));
    input.pipe(gunzip);
    try {
      for await (const chunk of gunzip as AsyncIterable<Uint8Array>) {
        if (first) {
          first = false;
          if (isParquet(chunk) || isGzip(chunk)) throw new CsvError(`${printable(source.name)}: gzip-compressed ${isParquet(chunk) ? "Parquet" : "gzip"} is not read; canopy reads ${FORMATS_READ}`);
        }
        yield chunk;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === "string" && code.startsWith("Z_")) throw new CsvError(`${printable(source.name)}: the gzip data is damaged (${(err as Error).message})`);
      throw err;
    }
  })();
  await csvRows(checked, sink);
}

/** Parquet values as cells: strings, numbers (INT64 as numbers), booleans, dates; nested values are refused. */
function cellOf(value: unknown, column: string): CellValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "bigint":
      return value;
  }
  if (value instanceof Date) return value;
  throw new CsvError(`column ${JSON.stringify(printable(column))}: nested or binary Parquet values are not read; drop the column (--drop)`, undefined, column);
}

/** A Parquet file, one row group at a time: memory holds one group's rows, not the file. */
async function parquetRows(source: ByteSource, size: number, sink: RowSink): Promise<void> {
  const { parquetMetadataAsync, parquetRead } = await import("hyparquet");
  const { compressors } = await import("hyparquet-compressors");
  const file = { byteLength: size, slice: async (start: number, end?: number) => copy(await source.read(start, end ?? size)) };
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new CsvError(`${printable(source.name)}: not a readable Parquet file (${(err as Error).message.split("\n")[0]})`);
  }
  // Top-level fields, in order; a nested field's children follow it (num_children) and are skipped.
  const names: string[] = [];
  for (let i = 1; i < metadata.schema.length; ) {
    const element = metadata.schema[i]!;
    names.push(element.name);
    // Skip this field's whole subtree.
    let skip = 1;
    let pending = element.num_children ?? 0;
    while (pending > 0) {
      const child = metadata.schema[i + skip]!;
      pending += (child.num_children ?? 0) - 1;
      skip++;
    }
    i += skip;
  }
  sink.header(names);
  const column = new Map(names.map((name, c) => [name, c]));
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    // The group's columns as hyparquet decodes them, page by page: its rows (onComplete) would be one more array
    // per row to build and collect.
    const columns: unknown[][] = names.map(() => new Array(rowEnd - rowStart));
    await parquetRead({
      file,
      metadata,
      rowStart,
      rowEnd,
      compressors,
      onChunk: ({ columnName, columnData, rowStart: at }) => {
        const into = columns[column.get(columnName)!]!;
        for (let i = 0; i < columnData.length; i++) into[at - rowStart + i] = columnData[i];
      },
    });
    for (let i = 0; i < rowEnd - rowStart; i++) {
      const values: CellValue[] = new Array(names.length);
      for (let c = 0; c < names.length; c++) values[c] = cellOf(columns[c]![i], names[c]!);
      sink.row(values, rowStart + i + 2);
    }
    rowStart = rowEnd;
  }
}

/** An ArrayBuffer of exactly these bytes (hyparquet reads ArrayBuffers). */
function copy(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.slice().buffer as ArrayBuffer;
}
