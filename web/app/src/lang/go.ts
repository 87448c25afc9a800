export { go } from "@codemirror/lang-go";
