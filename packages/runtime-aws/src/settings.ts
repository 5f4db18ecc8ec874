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
  // Minutes need not be whole (a short limit is handy on an emulator); at most a week.
  CANOPY_STALL_MINUTES: { default: 30, above: 0, max: 7 * 24 * 60, unit: "minutes" },
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

/** CANOPY_STALL_MINUTES as milliseconds: how long a build may make no progress before the sweeper fails it. */
export function stallLimitMs(env: Env = process.env): number {
  return readSetting(env, "CANOPY_STALL_MINUTES") * 60_000;
}
