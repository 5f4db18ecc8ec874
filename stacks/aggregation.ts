import { AGGREGATION_TRIGGER_FILTER } from "@canopy/core";
import { CHART_LIBRARY_FILES } from "@canopy/report/assets";
import { LINKS } from "@canopy/runtime-aws/names";
import { permissionsOf } from "./access.ts";
import { functionDefaults } from "./defaults.ts";
import { FOURTEEN_DAYS, HANDLERS } from "./handlers.ts";
import { ledgerEnvironment, type AppSettings } from "./settings.ts";

/**
 * The aggregator, on the builds table's stream. Only the MODIFY that brings `remaining` to 0 while TRAINING
 * passes the filter (the one shared object in @canopy/core, which the local emulator applies too).
 *
 * Failure path (a stream shard is blocked while its oldest record keeps failing): aggregate() itself fails the
 * build and notifies on any error after its claim, so a record rarely fails; when one does (say the claim hits
 * DynamoDB throttling; the handler reports it as a batch item failure), Lambda retries it `retries` times, then
 * skips it and sends the record's metadata to an on-failure queue, so the shard moves on. The build is then
 * left TRAINING with nothing remaining, and the sweeper fires its trigger again (a redrive). An aggregator that dies
 * (out of time or memory) leaves its claim; past the aggregator's time limit the sweeper reopens it.
 */
export function aggregation(
  settings: AppSettings,
  { bucket, table, topic, groves }: { bucket: sst.aws.Bucket; table: sst.aws.Dynamo; topic: sst.aws.SnsTopic; groves: sst.aws.Queue },
) {
  const failures = new sst.aws.Queue(LINKS.aggregationFailures, {
    transform: { queue: { messageRetentionSeconds: FOURTEEN_DAYS } },
  });

  const { aggregator } = settings;
  table.subscribe(
    "CanopyAggregator",
    {
      ...functionDefaults(),
      handler: HANDLERS.aggregator,
      description: "Canopy aggregator: merges a build's groves into its model, reports, notifies; ranks studies",
      // The grove queue: a study's aggregation queues builds (its final model, a halving round's new trees).
      link: [bucket, table, topic, groves],
      // Lambda sends failed-record metadata with the function's own role.
      permissions: [{ actions: ["sqs:SendMessage"], resources: [failures.arn] }, ...permissionsOf("aggregator", { bucket, table, topic, groves })],
      memory: `${aggregator.memoryMb} MB`,
      timeout: `${aggregator.timeoutSeconds} seconds`,
      environment: ledgerEnvironment(settings),
      // report.html inlines the chart library (d3 and Observable Plot, minified): the renderer reads the two files
      // from node_modules above it, so they go into the zip at node_modules/ of its root, where it finds them.
      copyFiles: CHART_LIBRARY_FILES.map((file) => ({ from: `node_modules/${file}`, to: `node_modules/${file}` })),
    },
    {
      filters: [AGGREGATION_TRIGGER_FILTER],
      transform: {
        eventSourceMapping: {
          // One build per invocation: a failing aggregation never retries another build's record.
          batchSize: 1,
          // The handler reports a failed record (a claim that threw) as a batch item failure; without this
          // Lambda would take that response as success and never retry it.
          functionResponseTypes: ["ReportBatchItemFailures"],
          // Up to 10 batches of one shard at once (order is kept per build id): builds finishing together
          // aggregate in parallel instead of queueing behind each other.
          parallelizationFactor: 10,
          maximumRetryAttempts: aggregator.retries,
          destinationConfig: { onFailure: { destinationArn: failures.arn } },
          // Replays what the stream still holds if the mapping is ever recreated; aggregate() is idempotent
          // (only the claim winner proceeds), so a replay is harmless while a skipped trigger would stall a build.
          startingPosition: "TRIM_HORIZON",
        },
      },
    },
  );

  return { failures };
}
