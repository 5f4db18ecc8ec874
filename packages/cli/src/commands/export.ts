import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { exportMlrf } from "@canopy/forest";
import { UsageError } from "../errors.ts";
import { writeFileAtomic } from "../fs.ts";
import { loadModelRef, type LoadedModel } from "../model.ts";

export const EXPORT_FORMATS = ["ml-random-forest"] as const;

export interface ExportOptions {
  format: (typeof EXPORT_FORMATS)[number];
  out?: string;
  root: string;
  /** Export even when the export predicts differently from the model, or cannot be checked. */
  force?: boolean;
}

/**
 * The model in another library's format: JSON that ml-random-forest's `RandomForestClassifier.load` /
 * `RandomForestRegression.load` accept. To --out (written atomically) or stdout. The export is first checked
 * against the model on the build's held-out rows (core's exportAgreement): if any prediction differs, or the
 * rows cannot be found, it is refused unless --force, which exports it with a warning giving the numbers.
 */
export async function exportModel(
  ref: string,
  options: ExportOptions,
  out: NodeJS.WritableStream = process.stdout,
  note: (line: string) => void = (line) => process.stderr.write(`canopy: ${line}\n`),
): Promise<string | undefined> {
  const loaded = await loadModelRef(ref, options.root);
  const exported = exportMlrf(loaded.forest);
  const verdict = await checkExport(loaded, exported, options.root);
  if (verdict.problem !== undefined) {
    if (!options.force) throw new UsageError(`${verdict.problem}; --force exports it anyway`);
    note(`warning: ${verdict.problem}`);
  } else note(verdict.ok);
  const json = `${JSON.stringify(exported)}\n`;
  if (options.out === undefined) {
    out.write(json);
    return undefined;
  }
  await writeFileAtomic(options.out, json);
  return options.out;
}


/** The check's outcome: a line saying it passed, or the problem (predictions differ, or no rows to check on). */
async function checkExport(loaded: LoadedModel, exported: object, root: string): Promise<{ ok: string; problem?: undefined } | { problem: string }> {
  const core = await import("@canopy/core");
  const { buildId } = loaded;
  const unchecked = (why: string) => ({ problem: `the export cannot be checked against the model's predictions: ${why}` });
  if (buildId === undefined) return unchecked(`${loaded.path} names no build (no report.json of it beside it)`);
  const { DiskBlobStore } = await import("@canopy/runtime-local");
  const blobs = new DiskBlobStore(root, { fsync: false });
  const specKey = core.keys.spec(buildId);
  const manifestBytes = (await blobs.get(specKey)) ?? (await readFile(join(dirname(loaded.path), "spec.json")).catch(() => undefined));
  if (!manifestBytes) return unchecked(`build ${buildId}'s manifest is neither in ${root} nor beside the model`);
  const manifest = core.decodeManifest(manifestBytes, buildId, specKey);
  const packBytes = await blobs.get(core.keys.pack(manifest.packHash));
  if (!packBytes) return unchecked(`build ${buildId}'s data (${manifest.packKey}) is not in ${root} (--root names the store)`);
  const pack = core.verifiedPack(packBytes, manifest.packKey, manifest.packHash);
  const forest = loaded.forest;
  if (pack.featureNames.join("\u0000") !== forest.featureNames.join("\u0000")) return unchecked(`build ${buildId}'s data has other features than the model`);

  const check = core.checkRows(pack, manifest.spec.test_fraction, manifest.spec.seed);
  const a = core.exportAgreement(forest, exported, pack, check);
  const where = `${a.heldOut ? "held-out" : "training (none were held out)"} rows of build ${buildId}`;
  if (a.differ === 0) return { ok: `checked: the export predicts what the model predicts on all ${a.rows} ${where}` };
  const why: string[] = [];
  if (a.missingDiffer > 0) why.push(`ml-random-forest sends a missing value right at every split, where this model sends some left (${a.missingDiffer} of the ${a.missingRows} rows with missing values differ)`);
  if (a.differ > a.missingDiffer)
    why.push(
      forest.task === "classification"
        ? "ml-random-forest takes a majority vote of each tree's most likely class, where Canopy averages the trees' class probabilities (they differ where leaves hold several classes, and on ties)"
        : "the trees' mean differs",
    );
  return {
    problem:
      `the ml-random-forest export predicts differently from the model on ${a.differ} of ${a.rows} ${where} ` +
      `(${a.metric === "r2" ? "R²" : "accuracy"} ${a.model.toFixed(4)} -> ${a.exported.toFixed(4)}): ${why.join("; ")}`,
  };
}
