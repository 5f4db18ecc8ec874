// One ingest measured in a fresh process: `tsx bench/ingest-child.ts <file> <label>` prepares the pack (streamed,
// format by content) into a blob store that keeps nothing, and prints JSON with the peak RSS. With no file, it
// only loads the modules: the baseline RSS the ingest is measured against.
import { prepareDataset, type BlobStore } from "@canopy/core";
import { fileSource, openTable } from "@canopy/core/ingest";

const [file, label] = process.argv.slice(2);
const nowhere: BlobStore = { get: async () => undefined, put: async () => undefined, exists: async () => false };
const started = performance.now();
let out: Record<string, unknown> = {};
if (file) {
  const table = await openTable(fileSource(file));
  const prepared = await prepareDataset(table, { ...(label ? { label } : {}) }, nowhere);
  out = { format: prepared.format, inputBytes: prepared.inputBytes, rows: prepared.pack.nRows, features: prepared.pack.nFeatures, packBytes: prepared.pack.bytes.length };
}
out.ms = performance.now() - started;
out.maxRssMb = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify(out)}\n`);
