import { open, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  checkPartitionModel,
  isAliasName,
  isBuildId,
  isPartitionRunId,
  keys,
  parsePartitionedModel,
  type BuildReport,
  type PartitionedModel,
  type PartitionLoader,
} from "@canopy/core";
import { Forest, FormatError } from "@canopy/forest";
import { fileError, UsageError } from "./errors.ts";

export interface LoadedModel {
  forest: Forest;
  /** The file the model was read from. */
  path: string;
  bytes: number;
  buildId?: string;
  /** The build's report.json, when one is found that belongs to this model. */
  report?: BuildReport;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readReport(path: string): Promise<BuildReport | undefined> {
  try {
    const report = JSON.parse(await readFile(path, "utf8")) as BuildReport;
    return report?.v === 1 && typeof report.buildId === "string" ? report : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A model given as a file path, an export directory (its model.canopy), or a build id whose model lives in
 * the local store (`<root>/builds/<id>/`). A path wins over an id of the same spelling. The report is looked up next to the model (an --out directory
 * holds both) and kept only if it describes these exact bytes.
 */
export async function loadModelRef(ref: string, root: string): Promise<LoadedModel> {
  const opened = await openModelRef(ref, root);
  if (opened.kind === "partitioned")
    throw new UsageError(`${ref} is a partitioned model (${opened.path}); this command takes one model: a partition's build id (canopy inspect ${ref} lists them)`);
  return opened;
}

/** A partitioned model found by id, alias or export directory: its manifest, and a loader for its partitions' models. */
export interface LoadedPartitionedModel {
  kind: "partitioned";
  model: PartitionedModel;
  /** The manifest's file. */
  path: string;
  bytes: number;
  /** Loads a partition's (or the fallback's) forest, checked against the manifest's size and SHA-256. */
  load: PartitionLoader;
  /** Where a partition's model file is. */
  fileOf(build: string, file: string | undefined): string;
}

export type OpenedModel = (LoadedModel & { kind: "single" }) | LoadedPartitionedModel;

async function readPartitioned(path: string, fileOf: (build: string, file: string | undefined) => string): Promise<LoadedPartitionedModel> {
  const text = await readFile(path, "utf8").catch((err: unknown) => {
    throw fileError(err, path, "model") ?? err;
  });
  const model = parsePartitionedModel(text, path);
  const load: PartitionLoader = async (ref) => {
    const file = fileOf(ref.build, ref.file);
    const bytes = new Uint8Array(
      await readFile(file).catch((err: unknown) => {
        throw fileError(err, file, "model") ?? err;
      }),
    );
    checkPartitionModel(bytes, ref, file);
    return Forest.load(bytes);
  };
  return { kind: "partitioned", model, path, bytes: Buffer.byteLength(text), load, fileOf };
}

/**
 * Any model reference: a model file, a train --out directory, an exported partitioned model (a directory with a
 * model.json), a build id or a partitioned run's id in the local store, or an alias of the local store (which points
 * at either). A path wins over an id or alias spelled the same.
 */
export async function openModelRef(ref: string, root: string): Promise<OpenedModel> {
  if (await isDirectory(ref)) {
    const manifest = join(ref, "model.json");
    if (await isFile(manifest)) return exportedPartitioned(ref, manifest);
  } else if (!(await isFile(ref))) {
    if (isPartitionRunId(ref)) {
      const path = join(root, keys.partitionedModel(ref));
      if (!(await isFile(path))) throw new UsageError(`partitioned run ${ref} has no model in ${root} (not found, or not finished)`);
      return readPartitioned(path, (build) => join(root, keys.model(build)));
    }
    if (!isBuildId(ref) && isAliasName(ref)) {
      // An alias of the local store; an unset one is reported as the missing file it may also have meant.
      const { DiskModelRegistry } = await import("@canopy/runtime-local");
      const target = await new DiskModelRegistry(root).resolve(ref).catch(() => undefined);
      if (target !== undefined) return openModelRef(target, root);
    }
  } else if ((await firstByte(ref)) === "{") {
    // A partitioned model's manifest given as a file: its partitions are beside it.
    return exportedPartitioned(dirname(ref), ref);
  }
  return { kind: "single", ...(await loadSingle(ref, root)) };
}

async function firstByte(path: string): Promise<string> {
  const handle = await open(path, "r").catch(() => undefined);
  if (!handle) return ""; // unreadable: the single-model path says why
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, 0);
    return buffer.subarray(0, bytesRead).toString();
  } finally {
    await handle.close();
  }
}

function exportedPartitioned(dir: string, manifest: string): Promise<LoadedPartitionedModel> {
  return readPartitioned(manifest, (build, file) => {
    if (file === undefined) throw new UsageError(`${manifest}: the model of build ${build} has no file in this directory (an exported partitioned model names one for every partition)`);
    return join(dir, file);
  });
}

async function loadSingle(ref: string, root: string): Promise<LoadedModel> {
  let path = ref;
  let buildId: string | undefined;
  if (await isDirectory(ref)) {
    // An --out directory of `canopy train`.
    path = join(ref, "model.canopy");
    if (!(await isFile(path))) throw new UsageError(`${ref} is a directory without a model.canopy`);
  } else if (!(await isFile(ref))) {
    if (!isBuildId(ref)) {
      const err = await stat(ref).then(
        () => new UsageError(`cannot read model ${ref}`),
        (e: unknown) => fileError(e, ref, "model") ?? new UsageError(`cannot read model ${ref}`),
      );
      throw err;
    }
    buildId = ref;
    path = join(root, keys.model(ref));
    if (!(await isFile(path))) {
      const known = await isFile(join(root, keys.spec(ref)));
      const resume = `canopy train --resume ${ref}${root !== ".canopy" ? ` --root ${root}` : ""}`;
      throw new UsageError(known ? `build ${ref} has no model yet (not finished; try ${resume})` : `build ${ref} not found in ${root}`);
    }
  }
  const bytes = new Uint8Array(
    await readFile(path).catch((err: unknown) => {
      throw fileError(err, path, "model") ?? err;
    }),
  );
  let forest: Forest;
  try {
    forest = Forest.load(bytes);
  } catch (err) {
    if (err instanceof FormatError) throw new FormatError(`${path}: ${err.message}`);
    throw err;
  }
  const report = await readReport(join(dirname(path), "report.json"));
  const matches = report !== undefined && report.model?.bytes === bytes.byteLength && report.model?.trees === forest.nTrees;
  const loaded: LoadedModel = { forest, path, bytes: bytes.byteLength };
  if (matches) {
    loaded.report = report;
    loaded.buildId = report.buildId;
  }
  if (buildId !== undefined) loaded.buildId = buildId;
  return loaded;
}
