import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Temp files are dot-files ending in .tmp, so listings can skip them. */
export function isTempName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(".tmp");
}

/**
 * Writes a file (bytes, or chunks as they come) so readers see the old content or the new, never a part: a temp file in the same directory
 * (same file system, so rename is atomic) renamed over the target. With `fsync`, the data and then the
 * directory entry are flushed, so the write also survives a power loss, not only a crashed process.
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array | string | AsyncIterable<Uint8Array>,
  options: { fsync?: boolean } = {},
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temp, "w");
    try {
      if (typeof bytes === "string" || bytes instanceof Uint8Array) await handle.writeFile(bytes);
      else for await (const chunk of bytes) await handle.write(chunk);
      if (options.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  if (options.fsync) await syncDir(dir);
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Names (without ".json") of the JSON files in a directory; none if it does not exist yet. */
export async function jsonFileStems(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5));
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** `path` if it exists, else its nearest ancestor that does (what a recursive mkdir would build on). */
export async function nearestExisting(path: string): Promise<{ path: string; stats: Stats }> {
  for (let at = path; ; at = dirname(at)) {
    try {
      return { path: at, stats: await stat(at) };
    } catch (err) {
      if (!isNotFound(err) || dirname(at) === at) throw err;
    }
  }
}
