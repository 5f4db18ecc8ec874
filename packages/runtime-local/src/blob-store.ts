import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { InputError, type BlobStore } from "@canopy/core";
import { isNotFound, writeFileAtomic } from "./atomic.ts";

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
    if (!KEY.test(key)) throw new InputError(`invalid blob key ${JSON.stringify(key)}`);
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
