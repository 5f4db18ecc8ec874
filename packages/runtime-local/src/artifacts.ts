import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { inShort, InputError, isBuildId, isPartitionRunId, keys, parsePartitionedModel, sha256Hex, type BuildReport, type PartitionedModel } from "@canopy/core";
import { Forest } from "@canopy/forest";
import { renderReport } from "@canopy/report";
import { isNotFound, nearestExisting } from "./atomic.ts";
import { DiskBlobStore } from "./blob-store.ts";
import { DiskLedger } from "./disk-ledger.ts";
import { LocalStoreError } from "./errors.ts";

/**
 * The mark Canopy leaves in every export: the build it came from and every file it wrote there. An existing
 * directory is replaced only if it is empty, or holds this mark and no file the mark does not list: a directory
 * that merely has the same names (`groves/`, `report.json`) is the user's, and nothing of theirs is deleted.
 */
export const EXPORT_MARKER = ".canopy-export.json";

interface ExportMarker {
  format: "canopy-export";
  v: 1;
  buildId: string;
  /** Paths relative to the export directory, `/`-separated. */
  files: string[];
}

/** Why an existing directory may not receive an export: it is not a directory, or it holds files Canopy did not write there. */
export type ExportDirProblem = { kind: "not-a-directory"; path: string } | { kind: "other-files"; files: string[] };

export interface ExportedArtifacts {
  dir: string;
  /** Paths relative to `dir`, sorted. */
  files: string[];
}

/**
 * Copies a completed build out of the runtime root: `model.canopy`, `report.json`, `report.html` (rendered
 * from report.json if the build predates it), `spec.json` (the manifest), `groves/<00000>.grove` and, for a build
 * with oob_score, `oob.bin` (the out-of-bag decision function per training row). Written into a temp directory next to `outDir`, then renamed into place, so
 * `outDir` is never half-written. An existing `outDir` is replaced only if it is empty or an earlier export.
 */
export async function exportArtifacts(root: string, buildId: string, outDir: string): Promise<ExportedArtifacts> {
  if (!isBuildId(buildId)) throw new InputError(`invalid build id ${inShort(buildId)} (expected b- and 16 hex digits)`);
  const record = await new DiskLedger(root).get(buildId);
  if (!record) throw new InputError(`build ${buildId} not found in ${resolve(root)}`);
  if (record.status !== "COMPLETED") throw new InputError(`build ${buildId} is ${record.status}; only a COMPLETED build has a model to export`);
  const blobs = new DiskBlobStore(root, { fsync: false });
  const wanted: [string, string][] = [
    ["model.canopy", keys.model(buildId)],
    ["report.json", keys.report(buildId)],
    ["report.html", keys.reportHtml(buildId)],
    ["spec.json", keys.spec(buildId)],
    ...record.landed.map((g): [string, string] => [`groves/${String(g).padStart(5, "0")}.grove`, keys.grove(buildId, g)]),
  ];
  if (await blobs.exists(keys.oob(buildId))) wanted.push(["oob.bin", keys.oob(buildId)]);
  return writeExport(outDir, buildId, wanted, async (file, key) => {
    const bytes = file === "report.html" ? await reportHtml(blobs, buildId) : await blobs.get(key);
    if (!bytes) throw new LocalStoreError(`build ${buildId} is COMPLETED but ${key} is missing from ${blobs.root}`);
    return bytes;
  });
}

/**
 * Writes `files` ([relative path, what to read]) and the mark into a temp directory next to `outDir`, then renames
 * it into place: `outDir` is never half-written, and replaced only if it is empty or an earlier export.
 */
async function writeExport(outDir: string, id: string, files: [string, string][], read: (file: string, key: string) => Promise<Uint8Array>): Promise<ExportedArtifacts> {
  const target = resolve(outDir);
  await checkReplaceable(target);
  await mkdir(dirname(target), { recursive: true });
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    for (const [file, key] of files) {
      await mkdir(dirname(join(temp, file)), { recursive: true });
      await writeFile(join(temp, file), await read(file, key));
    }
    const marker: ExportMarker = { format: "canopy-export", v: 1, buildId: id, files: files.map(([file]) => file).sort() };
    await writeFile(join(temp, EXPORT_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
    // Checked again right before the swap: the build may have run for hours since the first check.
    await checkReplaceable(target);
    await replaceDir(temp, target);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  return { dir: target, files: files.map(([file]) => file).sort() };
}

/**
 * Copies a completed partitioned run out of the runtime root as one directory: `model.json` (the partitioned
 * model with `file` set on every ref), `partitions/<00000>.canopy` in the manifest's key order (code units),
 * `fallback.canopy` with --fallback global, and the run's `report.json`. Each model file is its build's
 * model.canopy, checked against the manifest's SHA-256. Same safety as exportArtifacts.
 */
export async function exportPartitionedModel(root: string, runId: string, outDir: string): Promise<ExportedArtifacts> {
  if (!isPartitionRunId(runId)) throw new InputError(`invalid partitioned run id ${inShort(runId)} (expected p- and 16 hex digits)`);
  const blobs = new DiskBlobStore(root, { fsync: false });
  const modelKey = keys.partitionedModel(runId);
  const stored = await blobs.get(modelKey);
  if (!stored) throw new InputError(`partitioned run ${runId} has no model in ${resolve(root)} (not COMPLETED)`);
  const model = parsePartitionedModel(new TextDecoder().decode(stored), blobs.path(modelKey));
  const files: [string, string][] = [];
  const refs = Object.keys(model.partitions).sort();
  const exported: PartitionedModel = { ...model, partitions: {} };
  refs.forEach((key, i) => {
    const file = `partitions/${String(i).padStart(5, "0")}.canopy`;
    exported.partitions[key] = { ...model.partitions[key]!, file };
    files.push([file, keys.model(model.partitions[key]!.build)]);
  });
  if (model.fallback) {
    exported.fallback = { ...model.fallback, file: "fallback.canopy" };
    files.push(["fallback.canopy", keys.model(model.fallback.build)]);
  }
  const sha = new Map([...Object.values(exported.partitions), ...(exported.fallback ? [exported.fallback] : [])].map((r) => [r.file!, r.sha256]));
  const manifest = new TextEncoder().encode(`${JSON.stringify(exported, null, 2)}\n`);
  files.push(["model.json", modelKey], ["report.json", keys.partitionReport(runId)]);
  return writeExport(outDir, runId, files, async (file, key) => {
    if (file === "model.json") return manifest;
    const bytes = await blobs.get(key);
    if (!bytes) throw new LocalStoreError(`partitioned run ${runId} is COMPLETED but ${key} is missing from ${blobs.root}`);
    if (sha.has(file) && sha256Hex(bytes) !== sha.get(file)) throw new LocalStoreError(`${key} is not the model partitioned run ${runId} names (its SHA-256 differs)`);
    return bytes;
  });
}

/**
 * The build's report.html: the stored one, else rendered from its report.json (builds made before report.html
 * existed); undefined when neither is there.
 */
async function reportHtml(blobs: DiskBlobStore, buildId: string): Promise<Uint8Array | undefined> {
  const stored = await blobs.get(keys.reportHtml(buildId));
  if (stored) return stored;
  const json = await blobs.get(keys.report(buildId));
  if (!json) return undefined;
  return new TextEncoder().encode(renderReport(JSON.parse(new TextDecoder().decode(json)) as BuildReport));
}

/**
 * Whether an export may go to `dir`: undefined when it is absent, empty, or an earlier export (its mark lists
 * every file in it); otherwise what stands in the way.
 */
export async function exportDirProblem(outDir: string): Promise<ExportDirProblem | undefined> {
  const dir = resolve(outDir);
  const existing = await nearestExisting(dir);
  if (!existing.stats.isDirectory()) return { kind: "not-a-directory", path: existing.path };
  if (existing.path !== dir) return undefined; // made at the end
  const files = await filesUnder(dir);
  const listed = new Set((await readMarker(join(dir, EXPORT_MARKER)))?.files ?? []);
  if (listed.size > 0) listed.add(EXPORT_MARKER);
  const other = files.filter((f) => !listed.has(f));
  return other.length > 0 ? { kind: "other-files", files: other } : undefined;
}

/** The end of the refusal: which files are in the way (a few of them), and what to do. */
export function otherFilesLine(files: readonly string[]): string {
  return `already holds other files (${files.slice(0, 3).join(", ")}${files.length > 3 ? ", ..." : ""}); choose a new or empty directory`;
}

async function checkReplaceable(dir: string): Promise<void> {
  const problem = await exportDirProblem(dir);
  if (problem?.kind === "not-a-directory") throw new InputError(problem.path === dir ? `${dir} exists and is not a directory` : `${dir} cannot be made: ${problem.path} is a file`);
  if (problem) throw new InputError(`${dir} ${otherFilesLine(problem.files)}`);
}

/** Every entry under `dir` that is not a directory (files, links, ...), as sorted `/`-separated relative paths. */
async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    if ((await lstat(path)).isDirectory()) out.push(...(await filesUnder(path, `${prefix}${name}/`)));
    else out.push(`${prefix}${name}`);
  }
  return out;
}

async function readMarker(path: string): Promise<ExportMarker | undefined> {
  try {
    const marker = JSON.parse(await readFile(path, "utf8")) as Partial<ExportMarker> | null;
    const ok = marker?.format === "canopy-export" && typeof marker.buildId === "string" && Array.isArray(marker.files) && marker.files.every((f) => typeof f === "string");
    return ok ? (marker as ExportMarker) : undefined;
  } catch {
    return undefined; // absent, unreadable or not ours: not a mark
  }
}

/** Moves `from` to `to`; a previous `to` is moved aside first and removed after. */
async function replaceDir(from: string, to: string): Promise<void> {
  let aside: string | undefined;
  try {
    await rmdir(to); // succeeds only if empty
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") {
      aside = join(dirname(to), `.${basename(to)}.${randomBytes(6).toString("hex")}.old`);
      await rename(to, aside);
    } else if (!isNotFound(err)) throw err;
  }
  await rename(from, to);
  if (aside) await rm(aside, { recursive: true, force: true });
}

/**
 * A model: `buildIdOrPath` is a build id (its model under `root`), a model file, or an export directory
 * (its model.canopy).
 */
export async function loadModel(root: string, buildIdOrPath: string): Promise<Forest> {
  let file: string;
  if (isBuildId(buildIdOrPath)) {
    const path = new DiskBlobStore(root).path(keys.model(buildIdOrPath));
    file = path;
  } else {
    file = resolve(buildIdOrPath);
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "model.canopy");
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if (isNotFound(err))
      throw new InputError(isBuildId(buildIdOrPath) ? `build ${buildIdOrPath} has no model in ${resolve(root)}` : `no model at ${file}`);
    throw err;
  }
  return Forest.load(bytes);
}
