export { java } from "@codemirror/lang-java";
