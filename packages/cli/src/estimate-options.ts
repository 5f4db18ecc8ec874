/**
 * The options of the estimate (`canopy estimate`, `canopy publish --dry-run`) and the settings they resolve to.
 * Light: defining the commands loads neither the engine nor the SDK.
 */
import { Option, type Command } from "commander";
import { integerSetting, readSetting, SETTINGS_ENV } from "@canopy/runtime-aws/settings";
import { parseInteger, parseNumber } from "./args.ts";
import { UsageError } from "./errors.ts";

/**
 * Lambda vCPU seconds per second of this machine's core for the same single-threaded work. 1 holds for a server
 * core of the class Lambda runs x86 functions on (Intel Xeon, AMD EPYC; the machine the benchmarks ran on is an AMD
 * EPYC), where a function of 1,769 MB has one vCPU. A desktop or laptop core is often faster single-threaded, which
 * makes the estimate optimistic there: calibrate with one real build (see the README).
 */
export const DEFAULT_CPU_FACTOR = 1;

export interface EstimateFlags {
  memory?: number;
  aggregatorMemory?: number;
  concurrency?: number;
  minPollers?: number;
  maxPollers?: number;
  cpuFactor?: number;
}

/** The estimate's options, shared by `canopy estimate` and `canopy publish` (for --dry-run). */
export function addEstimateOptions(command: Command): Command {
  const setting = (name: keyof typeof SETTINGS_ENV) => `$${name}, else ${SETTINGS_ENV[name].default}`;
  return command
    .option("--memory <mb>", `trainer memory in MB (default ${setting("CANOPY_TRAINER_MEMORY_MB")})`, parseInteger)
    .option("--aggregator-memory <mb>", `aggregator memory in MB (default ${setting("CANOPY_AGGREGATOR_MEMORY_MB")})`, parseInteger)
    .option("--concurrency <n>", `trainers at once in the mapping's default mode (default ${setting("CANOPY_TRAINER_MAX_CONCURRENCY")})`, parseInteger)
    .option("--min-pollers <n>", `provisioned mode: pollers kept ready (default ${setting("CANOPY_TRAINER_MIN_POLLERS")})`, parseInteger)
    .option("--max-pollers <n>", `provisioned mode: the most pollers (default ${setting("CANOPY_TRAINER_MAX_POLLERS")})`, parseInteger)
    .addOption(
      new Option("--cpu-factor <f>", "Lambda vCPU seconds per second of this machine's core for the same work (default 1: a server core)").argParser(parseNumber),
    );
}

/** The app's settings the estimate uses: the flags, else the deploy's CANOPY_* variables, else their defaults. */
export interface EstimateSettings {
  trainerMemoryMb: number;
  aggregatorMemoryMb: number;
  maxConcurrency: number;
  minPollers: number;
  maxPollers: number;
  timeoutS: number;
  cpuFactor: number;
}

export function estimateSettings(flags: EstimateFlags, env: Record<string, string | undefined> = process.env): EstimateSettings {
  // A flag is checked by the same rule as the variable it stands for, and named in the message.
  const flag = (value: number | undefined, option: string, name: keyof typeof SETTINGS_ENV): number => {
    if (value === undefined) return readSetting(env, name);
    const rule = SETTINGS_ENV[name] as { default: number; min: number; max: number };
    try {
      return integerSetting({ [option]: String(value) }, option, rule);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const settings: EstimateSettings = {
    trainerMemoryMb: flag(flags.memory, "--memory", "CANOPY_TRAINER_MEMORY_MB"),
    aggregatorMemoryMb: flag(flags.aggregatorMemory, "--aggregator-memory", "CANOPY_AGGREGATOR_MEMORY_MB"),
    maxConcurrency: flag(flags.concurrency, "--concurrency", "CANOPY_TRAINER_MAX_CONCURRENCY"),
    minPollers: flag(flags.minPollers, "--min-pollers", "CANOPY_TRAINER_MIN_POLLERS"),
    maxPollers: flag(flags.maxPollers, "--max-pollers", "CANOPY_TRAINER_MAX_POLLERS"),
    timeoutS: readSetting(env, "CANOPY_TRAINER_TIMEOUT_SECONDS"),
    cpuFactor: flags.cpuFactor ?? DEFAULT_CPU_FACTOR,
  };
  if (!(settings.cpuFactor > 0 && settings.cpuFactor <= 100)) throw new UsageError(`--cpu-factor must be a number above 0 and at most 100; got ${settings.cpuFactor}`);
  if (settings.minPollers > settings.maxPollers)
    throw new UsageError(`--min-pollers (${settings.minPollers}) must not exceed --max-pollers (${settings.maxPollers})`);
  return settings;
}

