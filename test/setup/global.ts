// vitest globalSetup: runs once before any test file, in the process that then starts the test workers, so the
// PATH it sets (the test venv, when one is needed) is theirs too.
import { ensureTestTools } from "./tools.ts";

export default function setup(): void {
  ensureTestTools();
}
