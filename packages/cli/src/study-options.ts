import { Option, type Command } from "commander";
import { parseInteger } from "./args.ts";
import type { SpecFlags } from "./spec.ts";

/** The search flags of a study (canopy tune, canopy publish --tune), beside the train options (fixed across candidates). */
export interface StudyFlags extends SpecFlags {
  grid?: string[];
  random?: number;
  param?: string[];
  scoring?: string;
  cv?: number;
  halving?: boolean;
  factor?: number;
  minTrees?: number;
  oob?: boolean;
  /** --no-refit: false; the final model is built unless it is. */
  refit?: boolean;
}

const collect = (v: string, previous: string[] = []) => [...previous, v];

/** Declared once for canopy tune and canopy publish --tune (the names are core's SCORINGS; this loads no engine at startup). */
export function addStudyOptions(command: Command): Command {
  return command
    .option("--grid <name=values>", "search these values of a forest option, e.g. max_depth=8,16,none (repeatable; every combination)", collect)
    .option("--random <n>", "draw n candidates (RandomizedSearchCV) from --param distributions and --grid lists", parseInteger)
    .option("--param <name=dist>", "a distribution for --random: int:LO..HI, float:LO..HI or v1,v2,... (repeatable)", collect)
    .addOption(new Option("--scoring <name>", "scikit-learn scorer (default: accuracy, or r2 for regression)").choices(["accuracy", "f1_macro", "neg_log_loss", "r2", "neg_mean_squared_error"]))
    .option("--cv <k>", "folds per candidate, 2-20 (default 5, as sklearn)", parseInteger)
    .option("--no-refit", "rank only: no final model (by default the best parameters are built over the training rows and evaluated once on the held-out rows)")
    .option("--oob", "score each candidate out of bag instead of by folds: one build over the training rows with --oob-score (sklearn's oob_score_; not with --cv)")
    .option("--halving", "successive halving over trees (HalvingGridSearchCV, resource n_estimators up to --trees): the best 1/--factor of each round get more trees, nothing retrained")
    .option("--factor <n>", "with --halving: keep the best 1/n of the candidates each round, n times the trees (default 3)", parseInteger)
    .option("--min-trees <n>", "with --halving: trees of the first round (default: sklearn's exhaust, --trees / factor^(rounds-1))", parseInteger);
}

