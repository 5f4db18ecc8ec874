/**
 * The one home of the app's names: the SST component (link) names sst.config.ts declares, which property of each
 * linked resource the adapters read, and the CANOPY_* variables that override them. It imports nothing, so the
 * SST app and the CLI's option definitions read it without loading the AWS SDK (`@canopy/runtime-aws/names`).
 */

/** SST component names. A link is `Resource.<name>` in a linked function, so renaming one here renames it everywhere. */
export const LINKS = {
  bucket: "CanopyBucket",
  table: "CanopyBuilds",
  groves: "CanopyGroves",
  grovesDlq: "CanopyGrovesDlq",
  notifications: "CanopyNotifications",
  aggregationFailures: "CanopyAggregationFailures",
  predict: "CanopyPredict",
} as const;

/** The resources the adapters and commands look up by name. */
export interface AwsResources {
  bucket: string;
  table: string;
  queueUrl: string;
  topicArn: string;
}

export type ResourceName = keyof AwsResources;

/** The link of each resource and the property of the linked resource that holds the value. */
export const RESOURCE_LINKS: Record<ResourceName, { link: string; property: string }> = {
  bucket: { link: LINKS.bucket, property: "name" },
  table: { link: LINKS.table, property: "name" },
  queueUrl: { link: LINKS.groves, property: "url" },
  topicArn: { link: LINKS.notifications, property: "arn" },
};

/** Environment overrides, checked first (emulators, `canopy dev`, tests). */
export const RESOURCE_ENV: Record<ResourceName, string> = {
  bucket: "CANOPY_BUCKET",
  table: "CANOPY_TABLE",
  queueUrl: "CANOPY_QUEUE_URL",
  topicArn: "CANOPY_TOPIC_ARN",
};

/**
 * The grove dead-letter queue's URL, for the trainer: a grove that can never succeed (an input error) goes there at
 * once instead of being retried. Handed to the trainer as a variable (not a link: it only sends to that queue).
 */
export const DEAD_LETTER_QUEUE_ENV = "CANOPY_DLQ_URL";

/** The ledger table's TTL attribute (epoch seconds): written when a build finishes, and on each grove's entry. */
export const TTL_ATTRIBUTE = "expiresAt";

/**
 * The ledger table's sparse index of unfinished builds: a build's counter carries `open` = "1" from its creation
 * until it finishes, and nothing else does, so the sweeper's Query reads open builds only. Keys only: the sweeper
 * reads each counter itself, and a keys-only index is not written when a counter's other attributes change.
 */
export const OPEN_BUILDS_INDEX = { name: "open-builds", hashKey: "open", rangeKey: "createdAt", value: "1" } as const;
