import { Option, type Command } from "commander";
import { collectColumns, collectTag, parseCountOrFraction, parseInteger, parseMaxFeatures, parseNumber } from "./args.ts";

/**
 * The build spec's options (`SpecFlags`), declared once for every command that starts a build: `canopy train`
 * and `canopy publish` take the same data and forest options, with the same parsers and help.
 */
export function addSpecOptions(command: Command): Command {
  return command
    .option("--label <column>", "label column (default: the last column)")
    .option("--categorical <columns>", "read these columns as categories (comma-separated; repeatable)", collectColumns)
    .option("--numeric <columns>", "read these columns as numbers; a cell that is not one is an error (comma-separated; repeatable)", collectColumns)
    .option("--drop <columns>", "leave these columns out (comma-separated; repeatable)", collectColumns)
    .option("--weight-column <column>", "per-row sample weights (numbers >= 0; scikit-learn's sample_weight), not a feature")
    .option("--max-bins <n>", "bins per numeric feature, 2-65535 (default 255; above 255 a feature's bins take 16 bits)", parseInteger)
    .option("--min-category-rows <n>", "group categories seen in fewer rows as (other) (default 1: none)", parseInteger)
    .addOption(new Option("--task <task>", "default: detected from the label column").choices(["classification", "regression", "auto"]))
    .option("--trees <n>", "number of trees, n_estimators (default 100)", parseInteger)
    .option("--grove-size <g>", "trees per grove, one task each (default 10; at most --trees)", parseInteger)
    .option("--seed <s>", "random seed, an integer >= 0 (default 0)", parseInteger)
    .option("--max-depth <d>", "maximum tree depth (default: unlimited)", parseInteger)
    .option(
      "--max-features <f>",
      "features tried per split: sqrt (classification default), log2, all (regression default), " +
        "an integer count (1 means ONE feature) or a fraction in (0, 1) such as 0.5",
      parseMaxFeatures,
    )
    .option("--min-samples-leaf <n>", "minimum rows per leaf: an integer >= 1 or a fraction in (0, 1) (default 1)", parseCountOrFraction)
    .option("--min-samples-split <n>", "minimum rows to split a node: an integer >= 2 or a fraction in (0, 1) (default 2)", parseCountOrFraction)
    .addOption(new Option("--class-weight <weight>", "weight classes inversely to their frequency").choices(["balanced"]))
    .addOption(
      new Option("--criterion <c>", "split quality: gini (default) or entropy; squared_error for regression").choices([
        "gini",
        "entropy",
        "squared_error",
      ]),
    )
    .option("--no-bootstrap", "train every tree on all training rows instead of a bootstrap sample")
    .option("--max-samples <x>", "rows drawn per bootstrap sample: an integer count or a fraction in (0, 1) (default: all)", parseCountOrFraction)
    .option("--oob-score", "score each training row with the trees that did not draw it (scikit-learn's oob_score_; needs the bootstrap)")
    .option("--test-fraction <f>", "fraction of rows held out for evaluation, in [0, 1) (default 0.25)", parseNumber)
    .option("--tolerate-failures <k>", "groves allowed to fail, at most half of them; the model then has fewer trees (default 0)", parseInteger)
    .option("--tag <key=value>", "tag the build; repeatable", collectTag);
}
