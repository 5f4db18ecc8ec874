// One ingest measured in a fresh process: `tsx bench/ingest-child.ts <file> <label> [whole]` prepares the pack
// (streamed, format by content) into a blob store that keeps nothing, and prints JSON with the peak RSS. With
// `whole`, the way fc21793 did it instead: the whole file read into memory, then parsed (numeric CSV only). With
// no file, it only loads the modules: the baseline RSS the ingest is measured against.
import { readFileSync } from "node:fs";
import { prepareDataset, type BlobStore } from "@canopy/core";
import { fileSource, openTable } from "@canopy/core/ingest";
import { buildPack, parseCsv } from "@canopy/forest";

const [file, label, mode] = process.argv.slice(2);
const nowhere: BlobStore = { get: async () => undefined, put: async () => undefined, exists: async () => false };
const started = performance.now();
let out: Record<string, unknown> = {};
if (file && mode === "whole") {
  const bytes = readFileSync(file);
  const pack = buildPack(parseCsv(bytes, { ...(label ? { label } : {}) }));
  out = { format: "csv (whole file)", inputBytes: bytes.length, rows: pack.nRows, features: pack.nFeatures, packBytes: pack.bytes.length };
} else if (file) {
  const table = await openTable(fileSource(file));
  const prepared = await prepareDataset(table, { ...(label ? { label } : {}) }, nowhere);
  out = { format: prepared.format, inputBytes: prepared.inputBytes, rows: prepared.pack.nRows, features: prepared.pack.nFeatures, packBytes: prepared.pack.bytes.length };
}
out.ms = performance.now() - started;
out.maxRssMb = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify(out)}\n`);
