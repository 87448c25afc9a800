import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The interop test starts a real server; everything else runs in memory on fake timers.
    testTimeout: 20_000,
  },
});
