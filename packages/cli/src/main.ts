import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { parseHttpUrl, parseTrainerThreads, parseWorkers } from "./args.ts";
import { addDevCommand } from "./commands/dev.ts";
import { addEstimateCommand } from "./commands/estimate.ts";
import { addPublishCommand } from "./commands/publish.ts";
import { addResumeCommand } from "./commands/resume.ts";
import { addReportCommand } from "./commands/report.ts";
import { addStatusCommand } from "./commands/status.ts";
import { addSubscribeCommand } from "./commands/subscribe.ts";
import { addWatchCommand } from "./commands/watch.ts";
import { addModelsCommand } from "./commands/models.ts";
import { addPromoteCommand } from "./commands/promote.ts";
import { addServeCommand } from "./commands/serve.ts";
import { EXIT_OK, EXIT_USAGE, exitCodeFor, InterruptedExit, oneLine, systemError, UsageError } from "./errors.ts";
import { addSpecOptions } from "./spec-options.ts";
import { addStudyOptions } from "./study-options.ts";
import { addPartitionOptions } from "./partition-options.ts";

const DEFAULT_ROOT = ".canopy";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function fail(message: string): void {
  process.stderr.write(`canopy: error: ${message}\n`);
}

/** Most characters of an error line (core's MAX_ERROR_LINE, which is not loaded at startup): input is echoed only in short. */
const MAX_LINE = 1_000;

function cut(line: string): string {
  const keep = MAX_LINE - 40;
  return line.length <= MAX_LINE ? line : `${line.slice(0, keep)} … (${line.length - keep} more characters)`;
}

/** Commander's own errors ("error: unknown option '--x'\n(Did you mean --y?)") as one `canopy: error:` line. */
function commanderLine(text: string): string {
  return `canopy: ${cut(text.split("\n").map((l) => l.trim()).filter(Boolean).join(" "))}\n`;
}

const rootOption = () => new Option("--root <dir>", "local store of packs, builds and the ledger").default(DEFAULT_ROOT);

/** The command tree. Command modules (and the engine behind them) are imported only when their command runs. */
export function program(): Command {
  const canopy = new Command("canopy")
    .description("Random forests, trained the serverless way: groves of trees in parallel, merged into one forest.")
    .version(version(), "-V, --version")
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (text, write) => write(commanderLine(text)) });

  const train = canopy
    .command("train")
    .summary("train a forest on a CSV file")
    .description(
      "Train a random forest on a CSV (header row; the label is the last column unless --label says otherwise). " +
        "The build is cut into groves of trees trained in parallel on worker threads, then merged and evaluated " +
        "on a held-out split. Same data, options and seed give a byte-identical model whatever --workers and --grove-size.",
    )
    .argument("[data.csv]", "training data (not needed with --resume or --extend)");
  // The spec options are shared with canopy publish; train adds how and where this machine runs the build.
  addPartitionOptions(addSpecOptions(train))
    .option("--workers <w>", "trainer threads (default: number of CPU cores; at most 4 per core)", parseTrainerThreads)
    .option(
      "--out <dir>",
      "also put model.canopy, report.json and the groves in this directory (with --partition-by: model.json and partitions/<00000>.canopy) (new, empty, or an earlier export, which is replaced)",
    )
    .addOption(rootOption())
    .option("--notify-url <url>", "POST the build notification as JSON to this http:// or https:// URL", parseHttpUrl)
    .option("--resume <id>", "finish an interrupted build (or partitioned run, p-…): only what had not landed is trained")
    .option(
      "--extend <build-id>",
      "more trees for a finished build: with --trees N, trains only the new trees (same options and seed) into the model a fresh N-tree build would give",
    )
    .option(
      "--refit",
      "after the held-out metrics are measured, train the shipped model on every row (a second build, test fraction 0, whose report carries the first one's metrics)",
    )
    .option("--json", "print only the final report, as JSON, on stdout")
    .action(async (data: string | undefined, options: Record<string, unknown>, command: Command) => {
      const { train } = await import("./commands/train.ts");
      await train(data, options, command);
    });

  const tune = canopy
    .command("tune")
    .summary("search forest options by cross-validation (a study)")
    .description(
      "A study, as scikit-learn 1.9.1's GridSearchCV / RandomizedSearchCV: every candidate of the search space is scored " +
        "by K-fold cross-validation on the training rows (StratifiedKFold for classification, KFold for regression, " +
        "the same folds for every candidate); the candidates are ranked by their mean fold score (rank_test_score, " +
        "best_params_). Every candidate x fold is an ordinary build over one shared pack, all their groves on one queue. " +
        "The train options are fixed across candidates.",
    )
    .argument("[data.csv]", "training data (not needed with --resume)");
  addPartitionOptions(addStudyOptions(addSpecOptions(tune)))
    .option("--shared-params", "with --partition-by: one candidate for every partition (the best mean score over the partitions) instead of each partition's own best")
    .option("--refit", "(the default) build the best parameters over the training rows and evaluate that final model once on the held-out rows")
    .option("--out <dir>", "also put the final model's model.canopy, report.json and groves in this directory (as train --out; with --partition-by the partitioned model, as train --partition-by --out)")
    .option("--workers <w>", "trainer threads (default: number of CPU cores; at most 4 per core)", parseTrainerThreads)
    .addOption(rootOption())
    .option("--notify-url <url>", "POST the study notification (and each build's) as JSON to this http:// or https:// URL", parseHttpUrl)
    .option("--resume <id>", "finish an interrupted study (or tuned partitioned run, p-…): only what had not finished is trained")
    .option("--json", "print only the study's report (every candidate, fold scores and builds), as JSON, on stdout")
    .action(async (data: string | undefined, options: Record<string, unknown>) => {
      const { tune } = await import("./commands/tune.ts");
      await tune(data, options);
    });

  canopy
    .command("predict")
    .summary("predict with a model; CSV on stdout")
    .description(
      "Predict the rows of a CSV. Feature columns are matched by name, so column order does not matter and extra " +
        "columns (such as the label) are ignored. Prints CSV: one column named after the label, or with --proba " +
        "one probability column per class. A partitioned model routes each row by its partition column; a value with " +
        "no model (and no fallback) fails the run naming it, unless --skip-unknown. With --remote, the rows go to a predict endpoint (the deployed function " +
        "or canopy serve) in requests under its limits, signed with SigV4 when AWS credentials are available.",
    )
    .argument("<data.csv>", "rows to predict")
    .option(
      "--model <file|build-id>",
      "a model file, a train --out directory, an exported partitioned model's directory, the id of a local build or partitioned run (p-…), or a local alias (with --remote: a build id)",
    )
    .option("--remote <url|alias>", "predict through an endpoint: its URL, or an alias served by CANOPY_PREDICT_URL / the app's predictUrl output")
    .option("--chunk-rows <n>", "with --remote: most rows per request (default: the endpoint's limit)", parseWorkers)
    .option("--proba", "class probabilities instead of labels (classification)")
    .option("--skip-unknown", "a partitioned model: rows whose partition value has no model get an empty prediction (and a warning) instead of failing")
    .addOption(rootOption())
    .action(async (data: string, options: { model?: string; remote?: string; chunkRows?: number; proba?: boolean; skipUnknown?: boolean; root: string }) => {
      if (options.remote !== undefined) {
        const { remotePredict } = await import("./commands/remote.ts");
        await remotePredict(data, { ...options, remote: options.remote });
        return;
      }
      if (options.model === undefined) throw new UsageError("required option '--model <file|build-id>' not specified");
      const { predict } = await import("./commands/predict.ts");
      await predict(data, { ...options, model: options.model });
    });

  canopy
    .command("inspect")
    .summary("describe a model: trees, classes, params, metrics, importances (a partitioned model: its partitions)")
    .argument("<model>", "a model file, a train --out directory, the id of a local build or partitioned run (p-…), or a local alias")
    .option("--json", "print the summary as JSON")
    .addOption(rootOption())
    .action(async (model: string, options: { json?: boolean; root: string }) => {
      const { inspect } = await import("./commands/inspect.ts");
      await inspect(model, options);
    });

  canopy
    .command("export")
    .summary("convert a model to another library's format")
    .description(
      "Write the model as JSON for ml-random-forest (RandomForestClassifier.load / RandomForestRegression.load). The export " +
        "is checked first: its predictions on the build's held-out rows (read from the store) must be the model's, or it is " +
        "refused with the numbers (ml-random-forest sends missing values right and takes a majority vote of the trees); " +
        "--force exports it anyway.",
    )
    .argument("<model>", "a model file, a train --out directory, or the id of a local build")
    .addOption(new Option("--format <format>", "target format").choices(["ml-random-forest"]).makeOptionMandatory())
    .option("--out <file>", "write here instead of stdout")
    .option("--force", "export even if the export predicts differently from the model on the build's held-out rows, or cannot be checked")
    .addOption(rootOption())
    .action(async (model: string, options: { format: "ml-random-forest"; out?: string; root: string; force?: boolean }) => {
      const { exportModel } = await import("./commands/export.ts");
      const written = await exportModel(model, options);
      if (written !== undefined) process.stderr.write(`canopy: wrote ${written}\n`);
    });

  addDevCommand(canopy);
  addPublishCommand(canopy);
  addEstimateCommand(canopy);
  addResumeCommand(canopy);
  addStatusCommand(canopy);
  addSubscribeCommand(canopy);
  addWatchCommand(canopy);
  addServeCommand(canopy);
  addPromoteCommand(canopy);
  addModelsCommand(canopy);
  addReportCommand(canopy);

  return canopy;
}

/** Runs the CLI; resolves to the exit code (0 ok, 1 failed, 2 bad usage or input). */
export async function main(argv: string[]): Promise<number> {
  const canopy = program();
  try {
    await canopy.parseAsync(argv, { from: "user" });
    return EXIT_OK;
  } catch (thrown) {
    // A path the user chose that the system refused (permissions, a file for a directory): theirs to fix, in one line.
    const err = systemError(thrown) ?? thrown;
    if (err instanceof CommanderError) {
      // Help and --version end here too; commander already printed what it had to say.
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return EXIT_OK;
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    const { printable } = await import("@canopy/forest");
    // Messages quote names and cells from the input: no control character of theirs reaches the terminal.
    if (err instanceof InterruptedExit) process.stderr.write(`canopy: ${printable(err.message)}\n`);
    else fail(cut(printable(oneLine(err))));
    if (process.env.CANOPY_DEBUG && thrown instanceof Error && !(thrown instanceof UsageError)) process.stderr.write(`${thrown.stack}\n`);
    const { policyOf } = await import("@canopy/core");
    return exitCodeFor(err, policyOf(err));
  }
}
