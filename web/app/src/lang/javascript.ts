// JavaScript and TypeScript (one grammar, two dialects), loaded when a room uses them.
export { javascript } from "@codemirror/lang-javascript";
