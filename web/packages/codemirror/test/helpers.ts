/**
 * What the binding's tests share: seeded randomness, random edits at character boundaries, and
 * an editor made of a bare `EditorState` that the binding drives as it drives an `EditorView`.
 */

import { EditorState, type Extension, type TransactionSpec } from "@codemirror/state";
import { type CollabClient, CollabSync, duetCollab, type EditorHandle, remoteEdit } from "../src/index.js";

/** mulberry32, so that a failing case can be replayed from its seed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ["a", "b", "\n", "é", "😀", "中", "\r"];

export function randomText(random: () => number, maxPieces: number): string {
  let text = "";
  for (let count = Math.floor(random() * (maxPieces + 1)); count > 0; count--) {
    text += PIECES[Math.floor(random() * PIECES.length)];
  }
  return text;
}

/** Offsets in `text` that do not cut a surrogate pair, as an editor's positions never do. */
function boundaries(text: string): number[] {
  const result = [0];
  let offset = 0;
  for (const character of text) {
    offset += character.length;
    result.push(offset);
  }
  return result;
}

/** Up to three non-overlapping changes at character boundaries: insertions, deletions, replacements. */
export function randomChanges(random: () => number, text: string): { from: number; to: number; insert: string }[] {
  const points = boundaries(text);
  const picked = new Set<number>();
  for (let count = 1 + Math.floor(random() * 6); count > 0; count--) {
    picked.add(points[Math.floor(random() * points.length)]!);
  }
  const sorted = [...picked].sort((a, b) => a - b);
  const changes = [];
  for (let index = 0; index < sorted.length; index += 2) {
    const from = sorted[index]!;
    const to = random() < 0.5 ? (sorted[index + 1] ?? from) : from;
    changes.push({ from, to, insert: randomText(random, 3) });
  }
  return changes;
}

/**
 * An editor as `EditorView` behaves for the binding: a state, transactions applied one at a
 * time, the binding told of each, and no dispatching while an update is under way.
 */
export class StateEditor implements EditorHandle {
  state: EditorState;
  readonly sync: CollabSync;
  /** How many transactions changed the document without coming from the room: the user's edits. */
  localEdits = 0;
  private updating = false;

  constructor(client: CollabClient, doc: string, extensions: Extension[] = []) {
    this.state = EditorState.create({ doc, extensions: [duetCollab(client), extensions] });
    this.sync = new CollabSync(client, this);
  }

  dispatch(spec: TransactionSpec): void {
    if (this.updating) {
      throw new Error("an editor cannot be dispatched to while it updates");
    }
    const transaction = this.state.update(spec);
    this.state = transaction.state;
    if (transaction.docChanged && !transaction.annotation(remoteEdit)) {
      this.localEdits++;
    }
    this.updating = true;
    try {
      this.sync.update([transaction]);
    } finally {
      this.updating = false;
    }
  }

  get text(): string {
    return this.state.doc.toString();
  }
}

