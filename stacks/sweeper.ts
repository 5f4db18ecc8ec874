import { permissionsOf } from "./access.ts";
import { functionDefaults } from "./defaults.ts";
import { HANDLERS } from "./handlers.ts";
import type { AppSettings } from "./settings.ts";

/** The stalled-build sweeper: a backstop for builds whose groves stopped landing or whose aggregation was skipped. */
export function sweeper(
  settings: AppSettings,
  { table, topic }: { table: sst.aws.Dynamo; topic: sst.aws.SnsTopic },
) {
  const cron = new sst.aws.Cron("CanopySweeper", {
    schedule: settings.sweeper.schedule as `rate(${string})` | `cron(${string})`,
    function: {
      ...functionDefaults(),
      handler: HANDLERS.sweeper,
      description: "Canopy sweeper: fails builds that stopped making progress",
      link: [table, topic],
      permissions: permissionsOf("sweeper", { table, topic }),
      memory: "256 MB",
      timeout: "60 seconds",
      environment: { CANOPY_STALL_MINUTES: String(settings.sweeper.stallMinutes) },
    },
  });
  return { cron };
}
