import { readCsvStream, type CellValue } from "@canopy/forest";

/** Where rows go: the header (CSV's row 1), then each row with its number in messages (the header is row 1). */
export interface RowSink {
  header(names: string[]): void;
  row(values: CellValue[], row: number): void;
}

/**
 * A table read once, front to back, into a sink: CSV text streamed in chunks, a gzip-compressed CSV, a Parquet
 * file by row group (see `openTable` in @canopy/core/ingest, which picks the reader from the content).
 */
export interface TableSource {
  /** The file, URL or key, for messages. */
  name: string;
  /** "csv", "csv.gz" or "parquet". */
  format: string;
  /** Bytes of the input as stored (compressed size for .gz), when known: the bench reports memory per input MB. */
  bytes?: number;
  read(sink: RowSink): Promise<void>;
}

/** CSV bytes or text held in memory, as a table source (tests, small inputs). */
export function csvTable(input: Uint8Array | string, name = "CSV"): TableSource {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  return {
    name,
    format: "csv",
    bytes: bytes.byteLength,
    read: (sink) => csvRows(oneChunk(bytes), sink),
  };
}

async function* oneChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  // Fed in pieces like a file stream, so the streaming reader is the only reader.
  const CHUNK = 1 << 20;
  for (let at = 0; at < bytes.byteLength; at += CHUNK) yield bytes.subarray(at, Math.min(bytes.byteLength, at + CHUNK));
}

/** Streams CSV chunks into a sink: the first record is the header. */
export async function csvRows(chunks: AsyncIterable<Uint8Array>, sink: RowSink): Promise<void> {
  await readCsvStream(chunks, (record, row) => {
    if (row === 1) sink.header(record);
    else sink.row(record, row);
  });
}
