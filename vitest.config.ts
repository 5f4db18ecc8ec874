import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "bench/test/**/*.test.ts"],
    // SST's platform and the Python tools (moto, numpy), set up once when missing: see test/setup/tools.ts;
    // and the compiled CLI and trainer thread, rebuilt from the sources (scripts/build.ts).
    globalSetup: ["test/setup/global.ts", "scripts/build-before-tests.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
