import { exportMlrf } from "@canopy/forest";
import { writeFileAtomic } from "../fs.ts";
import { loadModelRef } from "../model.ts";

export const EXPORT_FORMATS = ["ml-random-forest"] as const;

export interface ExportOptions {
  format: (typeof EXPORT_FORMATS)[number];
  out?: string;
  root: string;
}

/**
 * The model in another library's format: JSON that ml-random-forest's `RandomForestClassifier.load` /
 * `RandomForestRegression.load` accept. To --out (written atomically) or stdout.
 */
export async function exportModel(ref: string, options: ExportOptions, out: NodeJS.WritableStream = process.stdout): Promise<string | undefined> {
  const { forest } = await loadModelRef(ref, options.root);
  const json = `${JSON.stringify(exportMlrf(forest))}\n`;
  if (options.out === undefined) {
    out.write(json);
    return undefined;
  }
  await writeFileAtomic(options.out, json);
  return options.out;
}
