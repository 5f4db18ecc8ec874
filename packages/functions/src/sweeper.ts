import type { Logger } from "@aws-lambda-powertools/logger";
import { sweepBuilds, type BlobStore, type BuildLedger, type Clock, type Notifier, type QueueState, type SweepPolicy, type TaskQueue } from "@canopy/core";
import { aggregationLeaseMs, stallLimitMs } from "@canopy/runtime-aws/settings";
import type { Context, ScheduledEvent } from "aws-lambda";
import { resources } from "./resources.ts";
import { functionLogger } from "./runtime.ts";

// CANOPY_STALL_MINUTES and CANOPY_AGGREGATOR_TIMEOUT_SECONDS (the SST app sets them), read by the rules the deploy
// validated them with.
export { aggregationLeaseMs, stallLimitMs } from "@canopy/runtime-aws/settings";

export interface SweeperPorts {
  ledger: BuildLedger;
  notifier: Notifier;
  blobs: BlobStore;
  /** The grove queue, to queue lost groves again. */
  queue: TaskQueue;
  /** Whether the grove queue holds tasks (visible, in flight or delayed). */
  queueState: () => Promise<QueueState>;
  /** Ids of the builds not yet finished. */
  openBuilds: () => Promise<string[]>;
}

export interface SweeperDeps {
  ports?: () => Promise<SweeperPorts>;
  logger?: Logger;
  clock?: Clock;
  /** Default: CANOPY_STALL_MINUTES and the aggregator's time limit plus a margin (CANOPY_AGGREGATOR_TIMEOUT_SECONDS). */
  policy?: SweepPolicy;
}

export interface SweepSummary {
  open: number;
  failed: string[];
  redriven: string[];
  reopened: string[];
  requeued: string[];
  /** Studies whose finished members were landed or unsubmitted members started. */
  settled: string[];
  /** Builds that could not be swept this time (each is retried by the next sweep). */
  errors: { buildId: string; error: string }[];
}

/**
 * Scheduled: sweeps the builds of the open-builds index, each on its own (core's sweepBuilds): a build with every
 * grove in and nothing aggregating it has its trigger fired again, a claim older than the aggregator's time limit is
 * reopened, a build whose tasks were lost (no progress, nothing queued) has its groves queued again, and only what
 * cannot finish fails, notified once. A build that cannot be swept is logged and left for the next run.
 */
export function createSweeper(deps: SweeperDeps = {}) {
  const logger = deps.logger ?? functionLogger("sweeper");
  const getPorts =
    deps.ports ??
    (async (): Promise<SweeperPorts> => ({
      ledger: await resources.ledger(),
      notifier: await resources.notifier(),
      blobs: await resources.blobs(),
      queue: await resources.queue(),
      queueState: await resources.queueState(),
      openBuilds: await resources.openBuilds(),
    }));

  return async (_event: ScheduledEvent | Record<string, never>, context: Context): Promise<SweepSummary> => {
    logger.addContext(context);
    const policy = deps.policy ?? { stallMs: stallLimitMs(), leaseMs: aggregationLeaseMs() };
    const ports = await getPorts();
    const open = await ports.openBuilds();
    const results = await sweepBuilds(open, policy, { ...ports, ...(deps.clock ? { clock: deps.clock } : {}) });
    const done = (action: string) => results.filter((r) => r.action === action && !r.skipped && !r.error).map((r) => r.buildId);
    const summary: SweepSummary = {
      open: open.length,
      failed: done("fail"),
      redriven: done("redrive"),
      reopened: done("reopen"),
      requeued: done("requeue"),
      settled: done("settle"),
      errors: results.filter((r) => r.error).map((r) => ({ buildId: r.buildId, error: r.error! })),
    };
    for (const r of results) {
      if (r.error) logger.error("build not swept", { buildId: r.buildId, error: r.error });
      else if (r.action === "fail" && !r.skipped) logger.warn("build failed", { buildId: r.buildId, reason: r.detail });
      else if (r.action !== "none" && !r.skipped) logger.warn(`build ${r.action}`, { buildId: r.buildId, why: r.detail });
    }
    logger.info("sweep done", { ...summary, stallMs: policy.stallMs, leaseMs: policy.leaseMs });
    return summary;
  };
}

export const handler = createSweeper();
