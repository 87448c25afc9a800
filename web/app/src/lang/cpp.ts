// C and C++ share one grammar.
export { cpp } from "@codemirror/lang-cpp";
