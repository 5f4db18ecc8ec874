/**
 * The one reader of the app's CANOPY_* settings: the SST app validates them at deploy (stacks/settings.ts) and
 * the functions read the ones handed to them (the sweeper's stall limit) with the same rules, so a value the
 * deploy accepts is one the function accepts. Light (`@canopy/runtime-aws/settings`): no SDK, no pipeline.
 */
import { AwsSetupError } from "./errors.ts";

/** An integer setting: default and accepted range, inclusive. */
export interface IntegerRule {
  default: number;
  min: number;
  max: number;
}

/** A quantity in `unit`: any number above `above`, at most `max`. */
export interface QuantityRule {
  default: number;
  above: number;
  max: number;
  unit: string;
}

/** Environment variable → default and accepted range. */
export const SETTINGS_ENV = {
  CANOPY_TRAINER_MEMORY_MB: { default: 1769, min: 128, max: 10_240 },
  CANOPY_TRAINER_TIMEOUT_SECONDS: { default: 120, min: 1, max: 900 },
  CANOPY_TRAINER_BATCH_SIZE: { default: 1, min: 1, max: 10 },
  // The seed pipelines throttled at 1,000; a lower default leaves most of the account's default regional
  // concurrency (1,000, shared by every function) to everything else while still training 1,000 trees at once.
  CANOPY_TRAINER_MAX_CONCURRENCY: { default: 100, min: 2, max: 1_000 },
  // Provisioned mode of the trainer's SQS mapping, off unless one of the two is set (Lambda's ranges for SQS; its
  // defaults, 2 and 200, fill in the other): event pollers kept ready, and the most it scales to (10 invocations each).
  CANOPY_TRAINER_MIN_POLLERS: { default: 2, min: 2, max: 200 },
  CANOPY_TRAINER_MAX_POLLERS: { default: 200, min: 2, max: 2_000 },
  CANOPY_MAX_RECEIVES: { default: 3, min: 1, max: 1_000 },
  CANOPY_AGGREGATOR_MEMORY_MB: { default: 3008, min: 128, max: 10_240 },
  CANOPY_AGGREGATOR_TIMEOUT_SECONDS: { default: 300, min: 1, max: 900 },
  CANOPY_AGGREGATOR_RETRIES: { default: 2, min: 0, max: 10_000 },
  // Minutes need not be whole (a short limit is handy on an emulator); at most a week. The default outlives a
  // grove's retries with the default trainer settings (120 s × 6 × 3 receives = 36 minutes): see settingsConflict.
  CANOPY_STALL_MINUTES: { default: 45, above: 0, max: 7 * 24 * 60, unit: "minutes" },
  // How long a finished build's ledger counter (and each grove's entry) is kept before DynamoDB's TTL deletes it.
  // At least a week, so an entry never expires under a build that is still running. Models and reports stay in S3.
  CANOPY_LEDGER_RETENTION_DAYS: { default: 90, min: 7, max: 3650 },
} as const satisfies Record<string, IntegerRule | QuantityRule>;

export type SettingName = keyof typeof SETTINGS_ENV;

type Env = Record<string, string | undefined>;

/** The raw value, or undefined when unset or blank (blank counts as unset). */
function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value;
}

/** An integer variable within its rule; a bad value throws one line naming the variable. */
export function integerSetting(env: Env, name: string, rule: IntegerRule): number {
  const text = raw(env, name);
  if (text === undefined) return rule.default;
  const value = Number(text);
  if (!Number.isInteger(value) || value < rule.min || value > rule.max)
    throw new AwsSetupError(`${name} must be an integer from ${rule.min} to ${rule.max}; got "${text}"`);
  return value;
}

function quantitySetting(env: Env, name: string, rule: QuantityRule): number {
  const text = raw(env, name);
  if (text === undefined) return rule.default;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= rule.above) throw new AwsSetupError(`${name} must be a number of ${rule.unit} > ${rule.above}; got "${text}"`);
  if (value > rule.max) throw new AwsSetupError(`${name} must be at most ${rule.max} ${rule.unit}; got "${text}"`);
  return value;
}

/** Whether a setting is given (not unset, not blank). */
export function isSettingSet(env: Env, name: SettingName): boolean {
  return raw(env, name) !== undefined;
}

/** One of the app's settings, by its rule in SETTINGS_ENV. */
export function readSetting(env: Env, name: SettingName): number {
  const rule: IntegerRule | QuantityRule = SETTINGS_ENV[name];
  return "unit" in rule ? quantitySetting(env, name, rule) : integerSetting(env, name, rule);
}

/**
 * CANOPY_STALL_MINUTES as milliseconds: how long a build with groves outstanding may make no progress, while no task
 * waits in the grove queue, before the sweeper queues its groves again (and after three times, fails it).
 */
export function stallLimitMs(env: Env = process.env): number {
  return readSetting(env, "CANOPY_STALL_MINUTES") * 60_000;
}

/** How far past the aggregator's time limit its claim is still presumed alive. */
export const LEASE_MARGIN_SECONDS = 60;

/** How long an aggregation claim lives: the aggregator's time limit (Lambda ends it there) plus a margin. */
export function aggregationLeaseMs(env: Env = process.env): number {
  return (readSetting(env, "CANOPY_AGGREGATOR_TIMEOUT_SECONDS") + LEASE_MARGIN_SECONDS) * 1000;
}

/** The settings that decide how long things may take, as the deploy checks them against each other. */
export interface TimingSettings {
  stallMinutes: number;
  /** The grove queue's visibility timeout: how long a received task stays hidden before it is delivered again. */
  visibilityTimeoutSeconds: number;
  maxReceives: number;
  aggregatorTimeoutSeconds: number;
}

/**
 * The first pair of settings that contradict each other, as one line, or undefined. A build's groves may legitimately
 * take visibility timeout × max receives to reach the dead-letter queue (where a failing grove gets its real error),
 * and an aggregation its time limit: a stall limit shorter than either would judge healthy work stalled.
 */
export function settingsConflict(s: TimingSettings): string | undefined {
  const stallSeconds = s.stallMinutes * 60;
  const retries = s.visibilityTimeoutSeconds * s.maxReceives;
  if (stallSeconds <= retries)
    return (
      `CANOPY_STALL_MINUTES (${s.stallMinutes}) must be longer than a failing grove takes to reach the dead-letter queue: ` +
      `a visibility timeout of ${s.visibilityTimeoutSeconds} s × CANOPY_MAX_RECEIVES ${s.maxReceives} = ${minutes(retries)} minutes; ` +
      `raise it, or lower CANOPY_TRAINER_TIMEOUT_SECONDS or CANOPY_MAX_RECEIVES`
    );
  const lease = s.aggregatorTimeoutSeconds + LEASE_MARGIN_SECONDS;
  if (stallSeconds <= lease)
    return (
      `CANOPY_STALL_MINUTES (${s.stallMinutes}) must be longer than an aggregation may take: CANOPY_AGGREGATOR_TIMEOUT_SECONDS ` +
      `${s.aggregatorTimeoutSeconds} + ${LEASE_MARGIN_SECONDS} s = ${minutes(lease)} minutes`
    );
  return undefined;
}

const minutes = (seconds: number) => String(Math.round((seconds / 60) * 100) / 100);
