// The root vitest config does not include bench/; run these with `npx vitest run --config bench/vitest.config.ts`.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: new URL("..", import.meta.url).pathname,
    include: ["bench/test/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
