import { InvalidArgumentError, Option, type Command } from "commander";
import { parseInteger } from "./args.ts";

/** The flags of a partitioned run, shared by train and publish (the engine behind them is loaded when a command runs). */
export interface PartitionFlags {
  partitionBy?: string;
  minPartitionRows?: number;
  fallback?: "global";
}

function parseMinRows(text: string): number {
  const n = parseInteger(text);
  if (n < 1) throw new InvalidArgumentError("Expected an integer >= 1.");
  return n;
}

/** --partition-by, --min-partition-rows, --fallback. */
export function addPartitionOptions(command: Command): Command {
  return command
    .option("--partition-by <column>", "one model per distinct value of this column (not a feature), all trained in one fan-out; the result is a partitioned model")
    .option("--min-partition-rows <n>", "with --partition-by: partitions with fewer rows are skipped and listed (default 30)", parseMinRows)
    .addOption(new Option("--fallback <model>", "with --partition-by: also train a model on every row (the partition column dropped) that serves values without a model of their own").choices(["global"]));
}
