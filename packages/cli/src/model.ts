import { readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { isBuildId, keys, type BuildReport } from "@canopy/core";
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
