import { LINKS, OPEN_BUILDS_INDEX, TTL_ATTRIBUTE } from "@canopy/runtime-aws/names";

/** The bucket's one lifecycle rule: abandoned multipart uploads are aborted a day after they began. */
export const ABORT_UPLOADS_RULE = "abort-incomplete-multipart-uploads";
export const ABORT_UPLOADS_AFTER_DAYS = 1;

/** Where everything lives: the artifact bucket and the builds ledger table. */
export function storage() {
  // Private (SST blocks public access unless `access` is set, and its policy refuses plain HTTP): datasets, packs,
  // groves, models and reports under the stable prefixes of @canopy/core's `keys`. No CORS: no browser reads it.
  const bucket = new sst.aws.Bucket(LINKS.bucket, {
    cors: false,
    // Parts of a multipart upload that never completed (a publish killed mid-upload) are billed until aborted.
    lifecycle: [{ id: ABORT_UPLOADS_RULE }],
    transform: {
      lifecycle: (args) => {
        args.rules = [
          { id: ABORT_UPLOADS_RULE, status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: ABORT_UPLOADS_AFTER_DAYS } },
        ];
      },
    },
  });

  // The ledger: per build a counter item and one item per settled grove (see runtime-aws's ledger-item.ts). The
  // aggregator is driven by this table's stream, and its filter reads NewImage, so the stream must carry new images;
  // old images help when inspecting records by hand. Finished builds' items expire (TTL); the sweeper queries the
  // sparse index of open builds instead of scanning the table.
  const table = new sst.aws.Dynamo(LINKS.table, {
    fields: { buildId: "string", [OPEN_BUILDS_INDEX.hashKey]: "string", [OPEN_BUILDS_INDEX.rangeKey]: "number" },
    primaryIndex: { hashKey: "buildId" },
    globalIndexes: {
      [OPEN_BUILDS_INDEX.name]: { hashKey: OPEN_BUILDS_INDEX.hashKey, rangeKey: OPEN_BUILDS_INDEX.rangeKey, projection: "keys-only" },
    },
    ttl: TTL_ATTRIBUTE,
    stream: "new-and-old-images",
  });

  return { bucket, table };
}
