import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { InputError, isBuildId, keys, type BuildReport } from "@canopy/core";
import { Forest } from "@canopy/forest";
import { renderReport } from "@canopy/report";
import { isNotFound } from "./atomic.ts";
import { DiskBlobStore } from "./blob-store.ts";
import { DiskLedger } from "./disk-ledger.ts";
import { LocalStoreError } from "./errors.ts";

/** What an export directory holds; only a directory with nothing else in it is ever replaced. */
const EXPORT_ENTRIES = new Set(["model.canopy", "report.json", "report.html", "spec.json", "groves"]);

export interface ExportedArtifacts {
  dir: string;
  /** Paths relative to `dir`, sorted. */
  files: string[];
}

/**
 * Copies a completed build out of the runtime root: `model.canopy`, `report.json`, `report.html` (rendered
 * from report.json if the build predates it), `spec.json` (the manifest) and `groves/<00000>.grove`. Written into a temp directory next to `outDir`, then renamed into place, so
 * `outDir` is never half-written. An existing `outDir` is replaced only if it is empty or an earlier export.
 */
export async function exportArtifacts(root: string, buildId: string, outDir: string): Promise<ExportedArtifacts> {
  if (!isBuildId(buildId)) throw new InputError(`invalid build id ${JSON.stringify(buildId)} (expected b- and 16 hex digits)`);
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

  const target = resolve(outDir);
  await checkReplaceable(target);
  await mkdir(dirname(target), { recursive: true });
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await mkdir(join(temp, "groves"), { recursive: true });
    for (const [file, key] of wanted) {
      const bytes = file === "report.html" ? await reportHtml(blobs, buildId) : await blobs.get(key);
      if (!bytes) throw new LocalStoreError(`build ${buildId} is COMPLETED but ${key} is missing from ${blobs.root}`);
      await writeFile(join(temp, file), bytes);
    }
    await replaceDir(temp, target);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  return { dir: target, files: wanted.map(([file]) => file).sort() };
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

async function checkReplaceable(dir: string): Promise<void> {
  let entries: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new InputError(`${dir} exists and is not a directory`);
    entries = await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  const foreign = entries.filter((e) => !EXPORT_ENTRIES.has(e));
  if (foreign.length > 0)
    throw new InputError(`${dir} already holds other files (${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", ..." : ""}); choose a new or empty directory`);
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
