// vitest's globalSetup: compiles what tests start under plain Node (the CLI, the trainer thread) from the sources
// as they are now, so no test runs an out-of-date build.
import { build } from "./build.ts";

export default async function setup(): Promise<void> {
  await build();
}
