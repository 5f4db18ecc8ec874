import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileError, UsageError } from "./errors.ts";

/** Temp file in the target's directory, then rename: readers never see half a file. The directory must exist. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  if (!(await isDirectory(dir))) throw new UsageError(`cannot write ${path}: directory ${dir} does not exist`);
  if (await isDirectory(path)) throw new UsageError(`cannot write ${path}: it is a directory`);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * An --out directory must be new, empty, or an earlier export that Canopy marked as its own (the runtime's rule:
 * every file in it listed by its mark): the artifacts are moved in whole at the end, and checking first means a
 * long build is not thrown away over it.
 */
export async function checkOutDir(path: string): Promise<void> {
  const { exportDirProblem, otherFilesLine } = await import("@canopy/runtime-local");
  let problem: Awaited<ReturnType<typeof exportDirProblem>>;
  try {
    problem = await exportDirProblem(path);
  } catch (err) {
    throw fileError(err, path, "--out directory") ?? err;
  }
  if (problem?.kind === "not-a-directory")
    throw new UsageError(problem.path === resolve(path) ? `--out ${path} is a file, expected a directory` : `--out ${path} cannot be made: ${shown(problem.path)} is a file`);
  if (problem) throw new UsageError(`--out ${path} ${otherFilesLine(problem.files)}`);
}

/**
 * A data file's bytes. Binary data (a .csv.gz, a Parquet or Excel file, a model) is refused here with one line
 * naming the file, before anything tries to read it as CSV.
 */
export async function readDataFile(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    throw fileError(err, path, "data file") ?? err;
  }
  const { binaryKind, notCsvMessage, printable } = await import("@canopy/forest");
  const kind = binaryKind(bytes);
  if (kind !== undefined) throw new UsageError(`${printable(path)}: ${notCsvMessage(kind)}`);
  return bytes;
}

/** A data file that training will stream: it must exist and be readable (its content is checked as it is read). */
export async function checkDataFile(path: string): Promise<void> {
  try {
    const handle = await open(path, "r");
    try {
      if (!(await handle.stat()).isFile()) throw Object.assign(new Error("not a file"), { code: "EISDIR" });
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw fileError(err, path, "data file") ?? err;
  }
}

/** A path relative to the working directory when that is shorter, as users type them. */
export function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== "" && !rel.startsWith("..") && rel.length < path.length ? rel : path;
}
