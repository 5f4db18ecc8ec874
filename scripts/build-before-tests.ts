// vitest's globalSetup: compiles what tests start under plain Node (the CLI, the trainer thread) from the sources
// as they are now — before a run, and before each rerun in watch mode — so no test runs an out-of-date build.
import type { TestProject } from "vitest/node";
import { build } from "./build.ts";

export default async function setup(project: TestProject): Promise<void> {
  await build();
  project.onTestsRerun(async () => {
    await build();
  });
}
