// Child process for Canopy's engine runs (run by bench/compare.ts): one case, one measurement, in a process that loaded
// only the engine, as scikit-learn gets a fresh Python for each. A process that has imported the AWS SDK's SQS or SNS
// client through tsx (the estimate section does; see bench/README.md) has a detached ArrayBuffer, after which V8's
// typed-array code checks for one on every access: FM 60k's 10-tree fit took 3.8-4.0 s in such a process against
// 3.2-3.3 s here (the CLI and the Lambda bundles, plain Node, do not pay it). argv: <caseDir> <RunOptions as JSON>;
// prints one JSON line (an EngineResult).
import { readCase } from "./data.ts";
import { runCanopy, type RunOptions } from "./engine.ts";

const [caseDir, optionsArg] = process.argv.slice(2);
const result = runCanopy(readCase(caseDir), JSON.parse(optionsArg) as RunOptions);
process.stdout.write(`${JSON.stringify(result)}\n`);
