import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The convergence test runs many seeds of three clients in one test: seconds on a busy
    // machine, past vitest's default of five.
    testTimeout: 30_000,
  },
});
