/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const server = "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
  },
  server: {
    proxy: {
      "/rooms": server,
      "/languages": server,
      "/autocomplete": server,
      "/ws": { target: server, ws: true },
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
  },
});
