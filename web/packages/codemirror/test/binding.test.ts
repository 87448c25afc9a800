import { EditorState } from "@codemirror/state";
import { TextOperation } from "@duet/client";
import { describe, expect, it } from "vitest";
import { changesToOperation, colorFor, localOperation, operationToChanges, remoteEdit } from "../src/index.js";

describe("changes to operations", () => {
  it("turns an insertion into retain, insert, retain", () => {
    const state = EditorState.create({ doc: "hello world" });
    const transaction = state.update({ changes: { from: 5, insert: "," } });
    const operation = changesToOperation(transaction.changes);
    expect(operation.toJSON()).toEqual([5, ",", 6]);
    expect(operation.apply("hello world")).toBe(transaction.state.doc.toString());
  });

  it("turns several changes at once into one operation over the whole document", () => {
    const doc = "a😀b\nsecond line\nthird";
    const state = EditorState.create({ doc, extensions: EditorState.lineSeparator.of("\n") });
    const transaction = state.update({
      changes: [
        { from: 1, to: 3, insert: "🎉" },
        { from: 5, insert: "\nnew" },
        { from: 12, to: 17 },
      ],
    });
    const operation = changesToOperation(transaction.changes);
    expect(operation.baseLength).toBe(doc.length);
    expect(operation.apply(doc)).toBe(transaction.state.doc.toString());
  });

  it("applies an operation back as the same changes", () => {
    const doc = "x = 1\ny = 2";
    const operation = new TextOperation().retain(4).delete(1).insert("42").retain(6).insert("\nz = 3");
    const state = EditorState.create({ doc });
    const next = state.update({ changes: operationToChanges(operation) }).state;
    expect(next.doc.toString()).toBe(operation.apply(doc));
  });
});

describe("echo", () => {
  it("sends a local edit and not a remote one", () => {
    const state = EditorState.create({ doc: "abc" });
    const local = state.update({ changes: { from: 3, insert: "d" } });
    expect(localOperation(local)?.toJSON()).toEqual([3, "d"]);
    const remote = state.update({ changes: { from: 0, insert: "z" }, annotations: remoteEdit.of(true) });
    expect(localOperation(remote)).toBeUndefined();
    const selectionOnly = state.update({ selection: { anchor: 1 } });
    expect(localOperation(selectionOnly)).toBeUndefined();
  });

  it("keeps one colour per client id", () => {
    expect(colorFor("a1")).toBe(colorFor("a1"));
    expect(colorFor("a1")).not.toBe(colorFor("b2"));
  });
});
