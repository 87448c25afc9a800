/**
 * The binding without a DOM: changes to operations and back (table-driven, then on random
 * edits), and `CollabSync` driving a bare `EditorState` against a fake client (what is sent,
 * what is never sent back, resynchronisation, the others' selections).
 */

import { history, undo } from "@codemirror/commands";
import { EditorSelection, EditorState } from "@codemirror/state";
import { type DuetEvents, type Participant, type Selection, TextOperation } from "@duet/client";
import { describe, expect, it } from "vitest";
import {
  changesToOperation,
  type CollabClient,
  colorFor,
  localOperation,
  operationToChanges,
  remoteEdit,
  remoteSelections,
} from "../src/index.js";
import { randomChanges, randomText, seeded, StateEditor } from "./helpers.js";

describe("changes to operations", () => {
  const cases: { name: string; doc: string; changes: { from: number; to?: number; insert?: string }[]; ops: unknown[] }[] = [
    { name: "an insertion", doc: "hello world", changes: [{ from: 5, insert: "," }], ops: [5, ",", 6] },
    { name: "an insertion at the start", doc: "abc", changes: [{ from: 0, insert: "x" }], ops: ["x", 3] },
    { name: "an insertion at the end", doc: "abc", changes: [{ from: 3, insert: "d" }], ops: [3, "d"] },
    { name: "a deletion", doc: "abcdef", changes: [{ from: 1, to: 3 }], ops: [1, -2, 3] },
    { name: "a replacement", doc: "x = 1", changes: [{ from: 4, to: 5, insert: "42" }], ops: [4, "42", -1] },
    { name: "an emoji counted in UTF-16 units", doc: "a😀b", changes: [{ from: 3, insert: "!" }], ops: [3, "!", 1] },
    { name: "a line break", doc: "ab", changes: [{ from: 1, insert: "\n" }], ops: [1, "\n", 1] },
    {
      name: "several changes at once",
      doc: "one two three",
      changes: [
        { from: 0, to: 3, insert: "1" },
        { from: 8, to: 13, insert: "3" },
      ],
      ops: ["1", -3, 5, "3", -5],
    },
  ];

  for (const { name, doc, changes, ops } of cases) {
    it(`turns ${name} into ${JSON.stringify(ops)} and back`, () => {
      const state = EditorState.create({ doc, extensions: EditorState.lineSeparator.of("\n") });
      const transaction = state.update({ changes });
      const operation = changesToOperation(transaction.changes);
      expect(operation.toJSON()).toEqual(ops);
      expect(operation.apply(doc)).toBe(transaction.state.doc.toString());
      const back = state.update({ changes: operationToChanges(operation) }).state;
      expect(back.doc.toString()).toBe(transaction.state.doc.toString());
    });
  }

  it("agrees with CodeMirror on random edits, \\r and surrogate pairs included", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const random = seeded(seed);
      const doc = randomText(random, 12);
      const state = EditorState.create({ doc, extensions: EditorState.lineSeparator.of("\n") });
      const transaction = state.update({ changes: randomChanges(random, doc) });
      const operation = changesToOperation(transaction.changes);
      expect(operation.baseLength, `seed ${seed}`).toBe(doc.length);
      expect(operation.apply(doc), `seed ${seed}`).toBe(transaction.state.doc.toString());
      const back = state.update({ changes: operationToChanges(operation) }).state.doc.toString();
      expect(back, `seed ${seed}`).toBe(transaction.state.doc.toString());
    }
  });
});

describe("which transactions are sent", () => {
  it("sends a local edit and not a remote one or a selection", () => {
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

type Handlers = { [K in keyof DuetEvents]?: ((payload: DuetEvents[K]) => void)[] };

/** A client that takes every edit and records it, with the events a test makes happen. */
class FakeClient implements CollabClient {
  text: string;
  readonly participants = new Map<string, Participant>();
  readonly sent: { operation: TextOperation; selection: Selection | undefined }[] = [];
  readonly selections: Selection[] = [];
  /** Set to make `applyLocal` throw, as a client does before its first welcome. */
  refuse = false;
  private readonly handlers: Handlers = {};

  constructor(text: string) {
    this.text = text;
  }

  applyLocal(operation: TextOperation, selection?: Selection): void {
    if (this.refuse) {
      throw new Error("there is no text to edit before the first welcome");
    }
    // Recorded before it is applied: an echo must show here even though it cannot apply.
    this.sent.push({ operation, selection });
    this.text = operation.apply(this.text);
  }

  setSelection(selection: Selection): void {
    this.selections.push(selection);
  }

  on<K extends keyof DuetEvents>(event: K, handler: (payload: DuetEvents[K]) => void): () => void {
    const list = (this.handlers[event] ??= []) as ((payload: DuetEvents[K]) => void)[];
    list.push(handler);
    return () => list.splice(list.indexOf(handler), 1);
  }

  emit<K extends keyof DuetEvents>(event: K, payload: DuetEvents[K]): void {
    for (const handler of [...((this.handlers[event] ?? []) as ((payload: DuetEvents[K]) => void)[])]) {
      handler(payload);
    }
  }

  /** Someone else's edit, as the client reports it. */
  remote(operation: TextOperation, clientId = "bob"): void {
    this.text = operation.apply(this.text);
    this.emit("remoteChange", { operation, clientId, revision: 1 });
  }
}

/** Lets queued microtasks (the binding's follow-ups) run. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe("CollabSync", () => {
  it("sends a typed change with the selection after it", () => {
    const client = new FakeClient("hello");
    const editor = new StateEditor(client, "hello");
    editor.dispatch({ changes: { from: 5, insert: "!" }, selection: { anchor: 6 } });
    expect(client.sent.map(({ operation, selection }) => [operation.toJSON(), selection])).toEqual([
      [[5, "!"], { anchor: 6, head: 6 }],
    ]);
    expect(client.text).toBe("hello!");
  });

  it("applies a remote change without sending it back", async () => {
    const client = new FakeClient("hello");
    const editor = new StateEditor(client, "hello");
    editor.dispatch({ selection: { anchor: 5 } });
    client.remote(new TextOperation().insert(">> ").retain(5));
    await settle();
    expect(editor.text).toBe(">> hello");
    expect(client.sent).toEqual([]);
    // The local cursor moved with the text, and a remote change is no selection of the user's.
    expect(editor.state.selection.main.head).toBe(8);
    expect(client.selections).toEqual([{ anchor: 5, head: 5 }]);
  });

  it("keeps remote changes out of the undo history", () => {
    const client = new FakeClient("");
    const editor = new StateEditor(client, "", [history()]);
    editor.dispatch({ changes: { from: 0, insert: "mine" }, userEvent: "input.type" });
    client.remote(new TextOperation().retain(4).insert(" theirs"));
    undo({ state: editor.state, dispatch: (transaction) => editor.dispatch(transaction) });
    expect(editor.text).toBe(" theirs");
    expect(client.text).toBe(" theirs");
  });

  it("sends a selection that moved on its own", () => {
    const client = new FakeClient("abc");
    const editor = new StateEditor(client, "abc");
    editor.dispatch({ selection: EditorSelection.single(0, 2) });
    expect(client.selections).toEqual([{ anchor: 0, head: 2 }]);
    expect(client.sent).toEqual([]);
  });

  it("takes back a change to a read-only editor and sends nothing", async () => {
    const client = new FakeClient("keep me");
    const editor = new StateEditor(client, "keep me", [EditorState.readOnly.of(true)]);
    editor.dispatch({ changes: { from: 0, to: 7 } });
    expect(client.sent).toEqual([]);
    await settle();
    expect(editor.text).toBe("keep me");
  });

  it("holds the client's text when the client refuses an edit", async () => {
    const client = new FakeClient("abc");
    client.refuse = true;
    const editor = new StateEditor(client, "abc");
    editor.dispatch({ changes: { from: 0, insert: "x" } });
    await settle();
    expect(editor.text).toBe("abc");
  });

  it("takes the client's text at a welcome and when a remote change does not fit", async () => {
    const client = new FakeClient("");
    const editor = new StateEditor(client, "");
    client.text = "fn main() {}";
    client.emit("welcome", {
      clientId: "me",
      revision: 3,
      language: "rust",
      text: client.text,
      participants: [],
      resumed: false,
    });
    expect(editor.text).toBe("fn main() {}");
    client.text = "something else";
    client.emit("remoteChange", { operation: new TextOperation().retain(99).insert("?"), clientId: "bob", revision: 4 });
    expect(editor.text).toBe("something else");
    expect(client.sent).toEqual([]);
  });

  it("starts from the client's text when the editor was made with another", async () => {
    const client = new FakeClient("the room's text");
    const editor = new StateEditor(client, "stale");
    await settle();
    expect(editor.text).toBe("the room's text");
    expect(client.sent).toEqual([]);
  });

  it("draws the others' selections from the client's participants, held to the text", async () => {
    const client = new FakeClient("abcdef");
    const editor = new StateEditor(client, "abcdef");
    client.participants.set("bob", { clientId: "bob", name: "Bob", selection: { anchor: 1, head: 3 } });
    client.participants.set("cy", { clientId: "cy", name: "", selection: { anchor: 40, head: 40 } });
    client.participants.set("dee", { clientId: "dee", name: "Dee" });
    client.emit("presence", { clientId: "bob", name: "Bob", selection: { anchor: 1, head: 3 } });
    await settle();
    expect(remoteSelections(editor.state)).toEqual([
      { clientId: "bob", name: "Bob", anchor: 1, head: 3 },
      { clientId: "cy", name: "anonymous", anchor: 6, head: 6 },
    ]);
    // A local edit before them moves them at once, before the client says anything.
    editor.dispatch({ changes: { from: 0, insert: "__" } });
    expect(remoteSelections(editor.state)[0]).toMatchObject({ anchor: 3, head: 5 });
    client.participants.delete("bob");
    client.emit("left", { clientId: "bob" });
    await settle();
    expect(remoteSelections(editor.state).map((remote) => remote.clientId)).toEqual(["cy"]);
  });

  it("stops listening when destroyed", async () => {
    const client = new FakeClient("abc");
    const editor = new StateEditor(client, "abc");
    editor.sync.destroy();
    client.remote(new TextOperation().insert("x").retain(3));
    await settle();
    expect(editor.text).toBe("abc");
  });

  it("keeps the editor and the client on the same text through random local and remote edits", async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = seeded(seed);
      const start = randomText(random, 8);
      const client = new FakeClient(start);
      const editor = new StateEditor(client, start);
      for (let step = 0; step < 20; step++) {
        if (random() < 0.5) {
          editor.dispatch({ changes: randomChanges(random, editor.text) });
        } else {
          const before = client.text;
          const changes = EditorState.create({ doc: before, extensions: EditorState.lineSeparator.of("\n") }).update({
            changes: randomChanges(random, before),
          }).changes;
          client.remote(changesToOperation(changes));
        }
        expect(editor.text, `seed ${seed}, step ${step}`).toBe(client.text);
      }
      await settle();
      expect(editor.text, `seed ${seed}`).toBe(client.text);
    }
  });
});
