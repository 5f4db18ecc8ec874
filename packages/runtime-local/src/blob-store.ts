import { constants, type Dirent } from "node:fs";
import { access, readdir, readFile, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { inShort, InputError, type BlobStore } from "@canopy/core";
import { isNotFound, isTempName, nearestExisting, writeFileAtomic } from "./atomic.ts";

/** Path segments of letters, digits and `._-`, none starting with a dot: no `..`, no absolute paths, no temp names. */
const KEY = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

/**
 * Blobs as files under a root directory, with the S3 bucket's key layout (core's `keys`), so
 * `<root>/builds/<id>/model.canopy` is the object `builds/<id>/model.canopy`. Writes are atomic.
 */
export class DiskBlobStore implements BlobStore {
  readonly root: string;
  private readonly fsync: boolean;

  constructor(root: string, options: { fsync?: boolean } = {}) {
    this.root = resolve(root);
    this.fsync = options.fsync ?? true;
  }

  /** The file behind a key. Throws on keys that could leave the root. */
  path(key: string): string {
    if (!KEY.test(key)) throw new InputError(`invalid blob key ${inShort(key, 120)}`);
    return join(this.root, key);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const buf = await readFile(this.path(key));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The content type is not kept: it follows from the key. */
  async put(key: string, bytes: Uint8Array, _contentType?: string): Promise<void> {
    await writeFileAtomic(this.path(key), bytes, { fsync: this.fsync });
  }

  /**
   * Removes the temp files that interrupted writes left under `prefix` (a key prefix such as `builds/<id>`): a
   * process killed between writing a temp file and renaming it leaves one that nothing will ever rename. Only for
   * the process that owns the store, which writes there alone. Returns the keys of what it removed.
   */
  async removeTemporaries(prefix: string): Promise<string[]> {
    const removed: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      for (const entry of entries) {
        const key = `${keyPrefix}/${entry.name}`;
        if (entry.isDirectory()) await walk(join(dir, entry.name), key);
        else if (entry.isFile() && isTempName(entry.name)) {
          await rm(join(dir, entry.name), { force: true });
          removed.push(key);
        }
      }
    };
    await walk(this.path(prefix), prefix);
    return removed.sort();
  }

  /** Chunk by chunk into a temp file renamed over the key at the end: never a part of the blob under the key. */
  async putStream(key: string, chunks: AsyncIterable<Uint8Array>, _contentType?: string): Promise<void> {
    await writeFileAtomic(this.path(key), chunks, { fsync: this.fsync });
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.path(key))).isFile();
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}

const DENIED = new Set(["EACCES", "EPERM", "EROFS"]);

/**
 * A store root this process can write: an existing directory, or one it could create (its nearest existing
 * ancestor is a directory it can write). Checked before anything is prepared, and without creating anything, so a
 * root that is a file or a directory without permission is one input error naming it, not a Node error from deep
 * in a write.
 */
export async function checkStoreRoot(root: string): Promise<void> {
  const dir = resolve(root);
  const existing = await nearestExisting(dir);
  if (!existing.stats.isDirectory())
    throw new InputError(existing.path === dir ? `the store ${dir} is a file, not a directory` : `the store ${dir} cannot be made: ${existing.path} is a file`);
  try {
    await access(existing.path, constants.W_OK | constants.X_OK);
  } catch (err) {
    if (!DENIED.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
    throw new InputError(existing.path === dir ? `cannot write to the store ${dir}: permission denied` : `cannot create the store ${dir}: ${existing.path} is not writable (permission denied)`);
  }
}
