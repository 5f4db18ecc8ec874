import type { Logger } from "@aws-lambda-powertools/logger";
import { sweepStalledBuilds, type BuildLedger, type BuildRecord, type Clock, type Notifier } from "@canopy/core";
import { stallLimitMs } from "@canopy/runtime-aws/settings";
import type { Context, ScheduledEvent } from "aws-lambda";
import { resources } from "./resources.ts";
import { functionLogger } from "./runtime.ts";

// CANOPY_STALL_MINUTES (the SST app sets it), read by the rule the deploy validated it with.
export { stallLimitMs } from "@canopy/runtime-aws/settings";

export interface SweeperDeps {
  ports?: () => Promise<{ ledger: BuildLedger; notifier: Notifier; openBuilds: () => Promise<BuildRecord[]> }>;
  logger?: Logger;
  clock?: Clock;
  limitMs?: number;
}

/** Scheduled: fails (and notifies once for) every non-terminal build that made no progress within the limit. */
export function createSweeper(deps: SweeperDeps = {}) {
  const logger = deps.logger ?? functionLogger("sweeper");
  const getPorts =
    deps.ports ?? (async () => ({ ledger: await resources.ledger(), notifier: await resources.notifier(), openBuilds: await resources.openBuilds() }));

  return async (_event: ScheduledEvent | Record<string, never>, context: Context): Promise<{ open: number; failed: string[] }> => {
    logger.addContext(context);
    const limitMs = deps.limitMs ?? stallLimitMs();
    const { ledger, notifier, openBuilds } = await getPorts();
    const open = await openBuilds();
    const failed = await sweepStalledBuilds(open, limitMs, { ledger, notifier, ...(deps.clock ? { clock: deps.clock } : {}) });
    if (failed.length > 0) logger.warn("stalled builds failed", { failed, limitMs });
    else logger.info("no stalled builds", { open: open.length, limitMs });
    return { open: open.length, failed };
  };
}

export const handler = createSweeper();
