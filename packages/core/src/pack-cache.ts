import { decodePack, FormatError, type DatasetPack } from "@canopy/forest";
import { TaskError } from "./errors.ts";
import type { BlobStore } from "./ports.ts";

/**
 * Decoded packs by hash, kept across calls: a warm trainer (a reused Lambda, the embedded runtime's workers)
 * loads each dataset once. Packs are content-addressed, so a cached pack can never be stale. Least recently
 * used packs are dropped beyond `maxEntries`.
 */
export class PackCache {
  private readonly entries = new Map<string, Promise<DatasetPack>>();

  constructor(private readonly maxEntries = 4) {}

  /** Pre-fills the cache, e.g. with a SharedArrayBuffer-backed pack the embedded runtime already holds. */
  set(pack: DatasetPack): void {
    this.remember(pack.hash, Promise.resolve(pack));
  }

  has(hash: string): boolean {
    return this.entries.has(hash);
  }

  /** The pack with this hash, from memory or else from `key` in the blob store (concurrent loads share one read). */
  async load(hash: string, key: string, blobs: BlobStore): Promise<{ pack: DatasetPack; cached: boolean }> {
    const hit = this.entries.get(hash);
    if (hit) {
      this.remember(hash, hit);
      return { pack: await hit, cached: true };
    }
    const loading = fetchPack(hash, key, blobs);
    this.remember(hash, loading);
    try {
      return { pack: await loading, cached: false };
    } catch (err) {
      if (this.entries.get(hash) === loading) this.entries.delete(hash);
      throw err;
    }
  }

  private remember(hash: string, pack: Promise<DatasetPack>): void {
    this.entries.delete(hash);
    this.entries.set(hash, pack);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }
}

async function fetchPack(hash: string, key: string, blobs: BlobStore): Promise<DatasetPack> {
  const bytes = await blobs.get(key);
  if (!bytes) throw new TaskError(`dataset pack ${key} not found`);
  return verifiedPack(bytes, key, hash);
}

/**
 * Decodes a pack read back from a store and checks it against its content address: the SHA-256 of its bytes
 * must be `hash`, so any damaged byte is refused, naming the key, instead of training on garbage.
 */
export function verifiedPack(bytes: Uint8Array, key: string, hash: string): DatasetPack {
  let pack: DatasetPack;
  try {
    pack = decodePack(bytes);
  } catch (err) {
    if (err instanceof FormatError) throw new TaskError(`dataset pack ${key} is damaged: ${err.message}`);
    throw err;
  }
  if (pack.hash !== hash) throw new TaskError(`dataset pack ${key} is damaged: it has hash ${pack.hash} (the SHA-256 of its bytes), expected ${hash}`);
  return pack;
}
