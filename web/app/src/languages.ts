/**
 * Highlighting for a room's language id, loaded on demand: each grammar is a chunk of its own
 * (`src/lang/*.ts` name them), so a room downloads only the one it shows. `plaintext`, and any
 * id this app does not know, has none.
 */

import type { Extension } from "@codemirror/state";

const loaders: Record<string, () => Promise<Extension>> = {
  python: () => import("./lang/python").then(({ python }) => python()),
  javascript: () => import("./lang/javascript").then(({ javascript }) => javascript({ jsx: true })),
  typescript: () => import("./lang/javascript").then(({ javascript }) => javascript({ typescript: true })),
  rust: () => import("./lang/rust").then(({ rust }) => rust()),
  go: () => import("./lang/go").then(({ go }) => go()),
  java: () => import("./lang/java").then(({ java }) => java()),
  c: () => import("./lang/cpp").then(({ cpp }) => cpp()),
  cpp: () => import("./lang/cpp").then(({ cpp }) => cpp()),
};

/** The highlighting for `language`; none when it has no grammar or the grammar failed to load. */
export function loadLanguage(language: string): Promise<Extension> {
  // The name comes from the server: only the table's own entries, never Object's properties.
  const load = Object.hasOwn(loaders, language) ? loaders[language] : undefined;
  return load === undefined ? Promise.resolve([]) : load().catch(() => []);
}
