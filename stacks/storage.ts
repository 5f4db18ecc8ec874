import { LINKS } from "@canopy/runtime-aws/names";

/** Where everything lives: the artifact bucket and the builds ledger table. */
export function storage() {
  // Private (SST blocks public access unless `access` is set): datasets, packs, groves, models and reports under
  // the stable prefixes of @canopy/core's `keys`.
  const bucket = new sst.aws.Bucket(LINKS.bucket);

  // One item per build (the ledger). The aggregator is driven by this table's stream, and its filter reads
  // NewImage, so the stream must carry new images; old images help when inspecting records by hand.
  const table = new sst.aws.Dynamo(LINKS.table, {
    fields: { buildId: "string" },
    primaryIndex: { hashKey: "buildId" },
    stream: "new-and-old-images",
  });

  return { bucket, table };
}
