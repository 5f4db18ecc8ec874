// Child process for Canopy's engine runs (run by bench/compare.ts): one case, one measurement, in a process that loaded
// only the engine, as scikit-learn gets a fresh Python for each. The bench's own process has imported every section
// (the AWS SDK among them) through tsx's loader, and there V8's typed-array code checks for detached buffers on every
// access: FM 60k's 10-tree fit took 3.8-4.0 s there against 3.2-3.3 s here (the CLI and the Lambda bundles, plain
// Node, do not pay it either). argv: <caseDir> <RunOptions as JSON>; prints one JSON line (an EngineResult).
import { readCase } from "./data.ts";
import { runCanopy, type RunOptions } from "./engine.ts";

const [caseDir, optionsArg] = process.argv.slice(2);
const result = runCanopy(readCase(caseDir), JSON.parse(optionsArg) as RunOptions);
process.stdout.write(`${JSON.stringify(result)}\n`);
