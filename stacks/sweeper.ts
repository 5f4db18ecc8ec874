import { permissionsOf } from "./access.ts";
import { functionDefaults } from "./defaults.ts";
import { HANDLERS } from "./handlers.ts";
import { ledgerEnvironment, type AppSettings } from "./settings.ts";

/**
 * The sweeper: finishes what was left unfinished (a lost aggregation trigger fired again, a dead aggregator's claim
 * reopened, lost grove tasks queued again) and fails only builds that cannot finish, once each.
 */
export function sweeper(
  settings: AppSettings,
  { bucket, table, topic, groves }: { bucket: sst.aws.Bucket; table: sst.aws.Dynamo; topic: sst.aws.SnsTopic; groves: sst.aws.Queue },
) {
  const cron = new sst.aws.Cron("CanopySweeper", {
    schedule: settings.sweeper.schedule as `rate(${string})` | `cron(${string})`,
    function: {
      ...functionDefaults(),
      handler: HANDLERS.sweeper,
      description: "Canopy sweeper: finishes unfinished builds (redrives), fails only those that cannot finish",
      // The open-builds index and counters (table), the manifests of builds whose groves it queues again (bucket)
      // onto the grove queue, whose depth it reads (queued work is not stalled), and failures it announces (topic).
      link: [bucket, table, topic, groves],
      permissions: permissionsOf("sweeper", { bucket, table, topic, groves }),
      memory: "256 MB",
      timeout: "60 seconds",
      environment: {
        CANOPY_STALL_MINUTES: String(settings.sweeper.stallMinutes),
        CANOPY_AGGREGATOR_TIMEOUT_SECONDS: String(settings.aggregator.timeoutSeconds),
        ...ledgerEnvironment(settings),
      },
    },
  });
  return { cron };
}
