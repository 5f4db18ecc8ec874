// `npm test` runs this first: the SST app's type-check needs .sst/platform before vitest's own setup would make it.
import { ensureTestTools, SetupError } from "./tools.ts";

try {
  ensureTestTools();
} catch (err) {
  process.stderr.write(`${err instanceof SetupError ? err.message : String(err)}\n`);
  process.exit(1);
}
