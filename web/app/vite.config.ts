/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` serves the app and sends the API and the WebSocket to a local duet-server.
const server = "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // The build is committed and checked against a fresh one: names come from content only
    // (Rolldown's hashes), and nothing in it depends on the time or the machine.
    rolldownOptions: {
      output: {
        codeSplitting: {
          groups: [
            {
              // The editor's core, shared by the room page and every language's grammar.
              name: "codemirror",
              test: /node_modules[\\/](@codemirror[\\/](state|view|language|commands|autocomplete)|@lezer[\\/](common|highlight|lr)|style-mod|w3c-keyname|crelt|@marijn)[\\/]/,
            },
          ],
        },
      },
    },
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
