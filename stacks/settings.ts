/**
 * The app's tunable numbers, read from the environment of `sst deploy` (a shell variable or the `.env` file SST
 * loads). Pure and free of SST globals so it can be unit-tested; every value is validated to the range AWS
 * accepts, and a bad one stops the deploy with one line naming the variable. The variables, their ranges and
 * the reader are runtime-aws's, shared with the functions that read them again at run time.
 */
import { isSettingSet, readSetting, settingsConflict } from "@canopy/runtime-aws/settings";

export { SETTINGS_ENV, type SettingName } from "@canopy/runtime-aws/settings";

export interface AppSettings {
  trainer: {
    /**
     * 1,769 MB is where Lambda gives a full vCPU (CPU is allotted in proportion to memory). A grove is CPU-bound
     * and single-threaded: ~10 trees on ~60k × 800 rows train in ~4 s on one core, so less memory only slows it
     * down at about the same GB-s cost, and more buys a second core it does not use. The ~50 MB pack, its
     * decoded arrays and the pack cache kept across warm invocations fit with a wide margin.
     */
    memoryMb: number;
    /** ~4 s of training plus loading a ~50 MB pack and a cold start is well under 30 s; 120 s leaves room for bigger groves. */
    timeoutSeconds: number;
    /** Grove tasks per invocation: one, so a failed grove never delays or retries another. */
    batchSize: number;
    /** Cap on concurrent trainer invocations from the queue (SQS maximum concurrency, 2-1,000), in the default mode. */
    maxConcurrency: number;
    /**
     * Provisioned mode of the trainer's mapping (CANOPY_TRAINER_MIN_POLLERS / _MAX_POLLERS), absent in the default
     * mode. The default mode starts a few batches at once and adds up to ~300 concurrent invocations a minute;
     * provisioned pollers are ready at once (10 invocations each) and add up to 1,000 a minute, billed per poller-hour.
     * Lambda takes this or a maximum concurrency, not both: the cap is then 10 × maximum pollers.
     */
    provisionedPollers?: { minimum: number; maximum: number };
  };
  groves: {
    /** Receives before a grove task goes to the dead-letter queue (its consumer fails the grove). */
    maxReceives: number;
  };
  aggregator: {
    /**
     * It holds every grove, the merged forest and the pack (to evaluate on the held-out split) at once. It runs
     * once per build, so generous memory costs little and keeps a large forest from failing the build.
     */
    memoryMb: number;
    timeoutSeconds: number;
    /** Stream retries before the record is skipped and its metadata sent to the failure queue. */
    retries: number;
  };
  sweeper: {
    /** EventBridge schedule of the stalled-build sweeper. */
    schedule: string;
    /**
     * A build with groves outstanding and no progress for this long, while no task waits in the grove queue, has lost
     * its tasks: the sweeper queues them again (three times, then fails the build). Longer than a failing grove's
     * retries and than an aggregation may take (checked at deploy).
     */
    stallMinutes: number;
  };
  ledger: {
    /** Days a finished build's ledger items are kept before DynamoDB's TTL deletes them (models stay in S3). */
    retentionDays: number;
  };
}

/** AWS's guidance for SQS-triggered Lambda: the queue's visibility timeout at least six times the function's. */
export const VISIBILITY_FACTOR = 6;

const SCHEDULE = /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$/;

/** The trainer mapping's provisioned pollers, when either bound is set; one line on a bad or conflicting value. */
function readProvisionedPollers(env: Record<string, string | undefined>): AppSettings["trainer"]["provisionedPollers"] {
  if (!isSettingSet(env, "CANOPY_TRAINER_MIN_POLLERS") && !isSettingSet(env, "CANOPY_TRAINER_MAX_POLLERS")) return undefined;
  if (isSettingSet(env, "CANOPY_TRAINER_MAX_CONCURRENCY"))
    throw new Error(
      "CANOPY_TRAINER_MAX_CONCURRENCY cannot be set with CANOPY_TRAINER_MIN_POLLERS/_MAX_POLLERS: Lambda takes a maximum concurrency or provisioned pollers (up to 10 invocations each), not both",
    );
  const minimum = readSetting(env, "CANOPY_TRAINER_MIN_POLLERS");
  const maximum = readSetting(env, "CANOPY_TRAINER_MAX_POLLERS");
  if (minimum > maximum) throw new Error(`CANOPY_TRAINER_MIN_POLLERS (${minimum}) must not exceed CANOPY_TRAINER_MAX_POLLERS (${maximum})`);
  return { minimum, maximum };
}

export function readSettings(env: Record<string, string | undefined> = process.env): AppSettings {
  const schedule = env.CANOPY_SWEEP_SCHEDULE?.trim() || "rate(5 minutes)";
  if (!SCHEDULE.test(schedule))
    throw new Error(`CANOPY_SWEEP_SCHEDULE must be an EventBridge rate(...) or cron(...) expression; got "${schedule}"`);
  const provisionedPollers = readProvisionedPollers(env);
  const settings: AppSettings = {
    trainer: {
      memoryMb: readSetting(env, "CANOPY_TRAINER_MEMORY_MB"),
      timeoutSeconds: readSetting(env, "CANOPY_TRAINER_TIMEOUT_SECONDS"),
      batchSize: readSetting(env, "CANOPY_TRAINER_BATCH_SIZE"),
      maxConcurrency: readSetting(env, "CANOPY_TRAINER_MAX_CONCURRENCY"),
      ...(provisionedPollers ? { provisionedPollers } : {}),
    },
    groves: { maxReceives: readSetting(env, "CANOPY_MAX_RECEIVES") },
    aggregator: {
      memoryMb: readSetting(env, "CANOPY_AGGREGATOR_MEMORY_MB"),
      timeoutSeconds: readSetting(env, "CANOPY_AGGREGATOR_TIMEOUT_SECONDS"),
      retries: readSetting(env, "CANOPY_AGGREGATOR_RETRIES"),
    },
    sweeper: { schedule, stallMinutes: readSetting(env, "CANOPY_STALL_MINUTES") },
    ledger: { retentionDays: readSetting(env, "CANOPY_LEDGER_RETENTION_DAYS") },
  };
  const conflict = settingsConflict({
    stallMinutes: settings.sweeper.stallMinutes,
    visibilityTimeoutSeconds: settings.trainer.timeoutSeconds * VISIBILITY_FACTOR,
    maxReceives: settings.groves.maxReceives,
    aggregatorTimeoutSeconds: settings.aggregator.timeoutSeconds,
  });
  if (conflict) throw new Error(conflict);
  return settings;
}

/** What every function that writes the ledger reads at run time (the retention of the items it writes). */
export function ledgerEnvironment(settings: AppSettings): Record<string, string> {
  return { CANOPY_LEDGER_RETENTION_DAYS: String(settings.ledger.retentionDays) };
}
