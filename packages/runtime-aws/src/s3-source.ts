import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { InputError } from "@canopy/core";
import type { ByteSource } from "@canopy/core/ingest";
import { clients } from "./clients.ts";

/**
 * An s3:// object as a byte source for `openTable` (@canopy/core/ingest): ranged GETs for Parquet's footer and
 * row groups, one streamed GET for CSV. A missing bucket or key is the caller's input error.
 */
export async function s3ByteSource(url: string, location: { bucket: string; key: string }): Promise<ByteSource> {
  const s3 = clients.s3();
  const missing = (err: unknown) => {
    const name = (err as { name?: string }).name;
    return name === "NoSuchKey" || name === "NoSuchBucket" || name === "NotFound" ? new InputError(`data file not found: ${url}`) : err;
  };
  let size: number;
  try {
    size = (await s3.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }))).ContentLength ?? 0;
  } catch (err) {
    throw missing(err);
  }
  const get = async (range?: string) => {
    try {
      return (await s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key, ...(range ? { Range: range } : {}) }))).Body!;
    } catch (err) {
      throw missing(err);
    }
  };
  return {
    name: url,
    size: async () => size,
    read: async (start, end) => (end <= start ? new Uint8Array(0) : (await get(`bytes=${start}-${end - 1}`)).transformToByteArray()),
    stream: () =>
      (async function* () {
        yield* (await get()) as unknown as AsyncIterable<Uint8Array>;
      })(),
  };
}
