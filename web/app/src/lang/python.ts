// Each language's highlighting is its own chunk, loaded when a room uses it.
export { python } from "@codemirror/lang-python";
