/**
 * The app's tunable numbers, read from the environment of `sst deploy` (a shell variable or the `.env` file SST
 * loads). Pure and free of SST globals so it can be unit-tested; every value is validated to the range AWS
 * accepts, and a bad one stops the deploy with one line naming the variable.
 */
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
    /** Cap on concurrent trainer invocations from the queue (SQS maximum concurrency, 2-1,000). */
    maxConcurrency: number;
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
    /** A non-terminal build with no progress for this long is failed by the sweeper. */
    stallMinutes: number;
  };
}

/** Environment variable → where it goes, default and accepted range. */
export const SETTINGS_ENV = {
  CANOPY_TRAINER_MEMORY_MB: { default: 1769, min: 128, max: 10_240 },
  CANOPY_TRAINER_TIMEOUT_SECONDS: { default: 120, min: 1, max: 900 },
  CANOPY_TRAINER_BATCH_SIZE: { default: 1, min: 1, max: 10 },
  // The seed pipelines throttled at 1,000; a lower default leaves most of the account's default regional
  // concurrency (1,000, shared by every function) to everything else while still training 1,000 trees at once.
  CANOPY_TRAINER_MAX_CONCURRENCY: { default: 100, min: 2, max: 1_000 },
  CANOPY_MAX_RECEIVES: { default: 3, min: 1, max: 1_000 },
  CANOPY_AGGREGATOR_MEMORY_MB: { default: 3008, min: 128, max: 10_240 },
  CANOPY_AGGREGATOR_TIMEOUT_SECONDS: { default: 300, min: 1, max: 900 },
  CANOPY_AGGREGATOR_RETRIES: { default: 2, min: 0, max: 10_000 },
  CANOPY_STALL_MINUTES: { default: 30, min: 1, max: 7 * 24 * 60 },
} as const;

export type SettingName = keyof typeof SETTINGS_ENV;

/** AWS's guidance for SQS-triggered Lambda: the queue's visibility timeout at least six times the function's. */
export const VISIBILITY_FACTOR = 6;

const SCHEDULE = /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$/;

function integer(env: Record<string, string | undefined>, name: SettingName): number {
  const spec = SETTINGS_ENV[name];
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return spec.default;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < spec.min || value > spec.max)
    throw new Error(`${name} must be an integer from ${spec.min} to ${spec.max}; got "${raw}"`);
  return value;
}

export function readSettings(env: Record<string, string | undefined> = process.env): AppSettings {
  const schedule = env.CANOPY_SWEEP_SCHEDULE?.trim() || "rate(5 minutes)";
  if (!SCHEDULE.test(schedule))
    throw new Error(`CANOPY_SWEEP_SCHEDULE must be an EventBridge rate(...) or cron(...) expression; got "${schedule}"`);
  return {
    trainer: {
      memoryMb: integer(env, "CANOPY_TRAINER_MEMORY_MB"),
      timeoutSeconds: integer(env, "CANOPY_TRAINER_TIMEOUT_SECONDS"),
      batchSize: integer(env, "CANOPY_TRAINER_BATCH_SIZE"),
      maxConcurrency: integer(env, "CANOPY_TRAINER_MAX_CONCURRENCY"),
    },
    groves: { maxReceives: integer(env, "CANOPY_MAX_RECEIVES") },
    aggregator: {
      memoryMb: integer(env, "CANOPY_AGGREGATOR_MEMORY_MB"),
      timeoutSeconds: integer(env, "CANOPY_AGGREGATOR_TIMEOUT_SECONDS"),
      retries: integer(env, "CANOPY_AGGREGATOR_RETRIES"),
    },
    sweeper: { schedule, stallMinutes: integer(env, "CANOPY_STALL_MINUTES") },
  };
}
