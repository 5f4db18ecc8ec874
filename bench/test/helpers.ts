// Test helpers: synthetic idx files and a python with numpy.
import { existsSync } from "node:fs";
import { gzipSync } from "node:zlib";

/** An unsigned-byte idx file (magic 0x00000803 for 3 dims), optionally gzipped. */
export function makeIdx(dims: number[], data: Uint8Array, gzip = true): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  view.setUint8(2, 0x08);
  view.setUint8(3, dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  const raw = new Uint8Array(header.length + data.length);
  raw.set(header);
  raw.set(data, header.length);
  return gzip ? new Uint8Array(gzipSync(raw)) : raw;
}

/** The bench venv's python if set up, else python3 (the loaders only need numpy). */
export function pythonWithNumpy(): string {
  return existsSync("bench/.venv/bin/python") ? "bench/.venv/bin/python" : "python3";
}
