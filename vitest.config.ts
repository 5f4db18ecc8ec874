import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "bench/test/**/*.test.ts"],
    globalSetup: ["scripts/build-before-tests.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
