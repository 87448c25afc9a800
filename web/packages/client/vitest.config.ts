import { defineConfig } from "vitest/config";

// The interop test runs the real server, so it is included only when DUET_SERVER_BIN names one
// (scripts/web-test.sh builds it and sets it); everything else runs in memory on fake timers.
const interop = process.env["DUET_SERVER_BIN"] ? ["test/**/*.interop.ts"] : [];

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", ...interop],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
