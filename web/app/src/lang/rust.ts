export { rust } from "@codemirror/lang-rust";
