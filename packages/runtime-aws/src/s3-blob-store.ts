import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Readable } from "node:stream";
import { Upload } from "@aws-sdk/lib-storage";
import type { BlobStore } from "@canopy/core";
import { clients } from "./clients.ts";
import { AwsBusyError, AwsSetupError } from "./errors.ts";

const MiB = 1024 * 1024;

export interface S3BlobStoreOptions {
  /** Blobs of at least this many bytes go up as a multipart upload. Default 16 MiB. */
  multipartThreshold?: number;
  /** Part size for multipart uploads; S3's minimum is 5 MiB. Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded at once. Default 4. */
  queueSize?: number;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata?.httpStatusCode === 404;
}

/**
 * The blob store on one S3 bucket; keys come from core's keys.ts. Packs are content addressed, and core's
 * prepareDataset checks `exists` before `put`, so a dataset is uploaded once and reused by every build.
 */
export class S3BlobStore implements BlobStore {
  readonly multipartThreshold: number;
  readonly partSize: number;
  readonly queueSize: number;

  constructor(
    readonly bucket: string,
    private readonly client: S3Client = clients.s3(),
    options: S3BlobStoreOptions = {},
  ) {
    this.partSize = options.partSize ?? 8 * MiB;
    this.multipartThreshold = options.multipartThreshold ?? 16 * MiB;
    this.queueSize = options.queueSize ?? 4;
    if (this.partSize < 5 * MiB) throw new AwsSetupError(`S3BlobStore: partSize must be at least 5 MiB (S3's minimum); got ${this.partSize}`);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) throw new AwsBusyError(`s3://${this.bucket}/${key}: response has no body`);
      return await out.Body.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async put(key: string, bytes: Uint8Array, contentType?: string): Promise<void> {
    const params = { Bucket: this.bucket, Key: key, Body: bytes, ...(contentType ? { ContentType: contentType } : {}) };
    if (bytes.byteLength < this.multipartThreshold) {
      await this.client.send(new PutObjectCommand(params));
      return;
    }
    // Parts in parallel, each retried by the SDK; a failed upload is aborted rather than left to accrue storage.
    await new Upload({ client: this.client, params, partSize: this.partSize, queueSize: this.queueSize, leavePartsOnError: false }).done();
  }

  /**
   * A multipart upload fed chunk by chunk (at most `queueSize` parts of `partSize` held at once): the object appears
   * whole when the upload completes, and a failure part-way aborts it, leaving the key as it was.
   */
  async putStream(key: string, chunks: AsyncIterable<Uint8Array>, contentType?: string): Promise<void> {
    const params = { Bucket: this.bucket, Key: key, Body: Readable.from(chunks, { objectMode: false }), ...(contentType ? { ContentType: contentType } : {}) };
    await new Upload({ client: this.client, params, partSize: this.partSize, queueSize: this.queueSize, leavePartsOnError: false }).done();
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}
