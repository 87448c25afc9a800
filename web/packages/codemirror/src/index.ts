/**
 * `@duet/codemirror`: CodeMirror 6 in a Duet room through `@duet/client`.
 *
 * `duetCollab(client)` returns the extensions that keep an editor and a client in step: each
 * local change becomes a `TextOperation` given to `client.applyLocal`, each `remoteChange` is
 * dispatched as a transaction annotated with `remoteEdit` (so it is not sent back), the local
 * selection goes to `client.setSelection`, and the others' cursors and selections are drawn as
 * decorations in a colour per client id, with a label holding their name.
 *
 * The rules live in `CollabSync`, which needs an editor's state and a way to dispatch to it,
 * not a DOM, so they are tested with a bare `EditorState`; the view plugin only hands it each
 * update.
 *
 * Positions are UTF-16 code units on both sides. The editor's line separator is fixed to "\n" so
 * that a "\r" in the room's text stays one character of a line rather than being normalised
 * away, and offsets in the editor are offsets in the room's text.
 */

import {
  Annotation,
  type ChangeSet,
  type ChangeSpec,
  EditorState,
  type Extension,
  type Range,
  StateEffect,
  StateField,
  type Text,
  Transaction,
  type TransactionSpec,
} from "@codemirror/state";
import {
  Decoration,
  type DecorationSet,
  EditorView,
  layer,
  type LayerMarker,
  ViewPlugin,
  type ViewUpdate,
} from "@codemirror/view";
import { diff, type DuetEvents, type Participant, type Selection, TextOperation } from "@duet/client";

/** The part of `DuetClient` the binding uses (a fake one fits in tests). */
export interface CollabClient {
  readonly text: string;
  readonly participants: ReadonlyMap<string, Participant>;
  applyLocal(operation: TextOperation, selection?: Selection): void;
  setSelection(selection: Selection): void;
  on<K extends keyof DuetEvents>(event: K, handler: (payload: DuetEvents[K]) => void): () => void;
}

/** What `CollabSync` needs of an editor: an `EditorView` is one. */
export interface EditorHandle {
  readonly state: EditorState;
  dispatch(spec: TransactionSpec): void;
}

export interface DuetCollabOptions {
  /** The colour of a participant's cursor; `colorFor` by default. */
  color?: (clientId: string) => string;
}

/** Marks a transaction that came from the room (or a resynchronisation), not from the user. */
export const remoteEdit = Annotation.define<boolean>();

/** A colour for a client id: the same id always gets the same hue. */
export function colorFor(clientId: string): string {
  let hash = 2166136261;
  for (let index = 0; index < clientId.length; index++) {
    hash ^= clientId.charCodeAt(index);
    hash = Math.imul(hash, 16777619) >>> 0;
  }
  return `hsl(${hash % 360}, 70%, 42%)`;
}

/** The operation that does what a CodeMirror change set does, over the whole document. */
export function changesToOperation(changes: ChangeSet): TextOperation {
  const operation = new TextOperation();
  let position = 0;
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted: Text) => {
    operation.retain(fromA - position);
    operation.delete(toA - fromA);
    operation.insert(inserted.sliceString(0, inserted.length, "\n"));
    position = toA;
  }, false);
  operation.retain(changes.length - position);
  return operation;
}

/** The CodeMirror changes that do what `operation` does (positions in the document before it). */
export function operationToChanges(operation: TextOperation): ChangeSpec[] {
  const changes: ChangeSpec[] = [];
  let position = 0;
  for (const component of operation.ops) {
    if (typeof component === "string") {
      changes.push({ from: position, insert: component });
    } else if (component > 0) {
      position += component;
    } else {
      changes.push({ from: position, to: position - component });
      position -= component;
    }
  }
  return changes;
}

/**
 * What a transaction means for the room: the operation to send for a local edit, or undefined
 * for a transaction that changes nothing or came from the room (annotated with `remoteEdit`).
 */
export function localOperation(transaction: Transaction): TextOperation | undefined {
  if (!transaction.docChanged || transaction.annotation(remoteEdit)) {
    return undefined;
  }
  return changesToOperation(transaction.changes);
}

/** Someone else's selection, as the editor holds it (held to the document). */
export interface RemoteSelection {
  clientId: string;
  name: string;
  anchor: number;
  head: number;
}

/** The others, as the client has them, for the decorations to draw. */
const setParticipants = StateEffect.define<Participant[]>();

function toRemotes(participants: Participant[], length: number): RemoteSelection[] {
  const remotes: RemoteSelection[] = [];
  for (const participant of participants) {
    if (participant.selection === undefined) {
      continue;
    }
    remotes.push({
      clientId: participant.clientId,
      name: participant.name || "anonymous",
      anchor: Math.max(0, Math.min(participant.selection.anchor, length)),
      head: Math.max(0, Math.min(participant.selection.head, length)),
    });
  }
  return remotes;
}

/**
 * The others' selections: replaced by each `setParticipants`, moved through the document's
 * changes in between (so a cursor stays on its character while the client's own update is on
 * its way).
 */
const remoteSelectionsField = StateField.define<RemoteSelection[]>({
  create: () => [],
  update(value, transaction) {
    for (const effect of transaction.effects) {
      if (effect.is(setParticipants)) {
        return toRemotes(effect.value, transaction.state.doc.length);
      }
    }
    if (!transaction.docChanged) {
      return value;
    }
    return value.map((remote) => ({
      ...remote,
      anchor: transaction.changes.mapPos(remote.anchor, 1),
      head: transaction.changes.mapPos(remote.head, 1),
    }));
  },
});

/** The others' selections in an editor state set up with `duetCollab` (none otherwise). */
export function remoteSelections(state: EditorState): readonly RemoteSelection[] {
  return state.field(remoteSelectionsField, false) ?? [];
}

/**
 * Keeps an editor and a client in step: the rules of the binding, without a view.
 *
 * - A transaction the user made (not annotated `remoteEdit`) goes to `client.applyLocal` with
 *   the selection after it; a selection change alone goes to `client.setSelection`.
 * - A `remoteChange` is dispatched annotated `remoteEdit` and kept out of the undo history, so
 *   it is never sent back and undo takes back only the user's own edits.
 * - A `welcome`, an operation that does not fit the editor's document, a change the client
 *   refuses (before the first welcome, after it closed) and a change to a read-only editor make
 *   the editor hold the client's text again, by the smallest change.
 *
 * Work that follows an update is queued as a microtask, since an editor may not be dispatched
 * to while it is updating.
 */
export class CollabSync {
  private readonly unsubscribe: (() => void)[] = [];
  private refreshQueued = false;
  private destroyed = false;

  constructor(
    private readonly client: CollabClient,
    private readonly editor: EditorHandle,
  ) {
    const refresh = () => this.refreshCursors();
    this.unsubscribe.push(
      client.on("remoteChange", ({ operation }) => this.applyRemote(operation)),
      client.on("welcome", () => this.resync()),
      client.on("presence", refresh),
      client.on("joined", refresh),
      client.on("left", refresh),
    );
    if (editor.state.doc.toString() !== client.text) {
      this.queue(() => this.resync());
    } else {
      this.refreshCursors();
    }
  }

  /** The editor applied `transactions` (a view update's). */
  update(transactions: readonly Transaction[]): void {
    let sent = false;
    for (const transaction of transactions) {
      const operation = localOperation(transaction);
      if (operation === undefined) {
        continue;
      }
      if (transaction.startState.readOnly) {
        // Nothing typed reaches a read-only editor; a programmatic change is taken back.
        this.queue(() => this.resync());
        return;
      }
      const { anchor, head } = transaction.state.selection.main;
      try {
        this.client.applyLocal(operation, { anchor, head });
        sent = true;
      } catch {
        // Before the first welcome, or after the client closed: the client's text wins.
        this.queue(() => this.resync());
        return;
      }
    }
    if (sent) {
      this.refreshCursors();
    } else if (transactions.some((transaction) => transaction.selection !== undefined && !transaction.annotation(remoteEdit))) {
      const { anchor, head } = this.editor.state.selection.main;
      this.client.setSelection({ anchor, head });
    }
  }

  destroy(): void {
    this.destroyed = true;
    for (const off of this.unsubscribe) {
      off();
    }
  }

  private queue(task: () => void): void {
    queueMicrotask(() => {
      if (!this.destroyed) {
        task();
      }
    });
  }

  private applyRemote(operation: TextOperation): void {
    if (operation.baseLength !== this.editor.state.doc.length) {
      this.resync();
      return;
    }
    this.editor.dispatch({
      changes: operationToChanges(operation),
      annotations: [remoteEdit.of(true), Transaction.addToHistory.of(false)],
      effects: setParticipants.of([...this.client.participants.values()]),
    });
  }

  /** Makes the editor hold the client's text, by the smallest change. */
  private resync(): void {
    const current = this.editor.state.doc.toString();
    const change = current === this.client.text ? undefined : diff(current, this.client.text);
    this.editor.dispatch({
      ...(change === undefined ? {} : { changes: operationToChanges(change) }),
      annotations: [remoteEdit.of(true), Transaction.addToHistory.of(false)],
      effects: setParticipants.of([...this.client.participants.values()]),
    });
  }

  /** Redraws the others' cursors from the client's participants, once per burst of events. */
  private refreshCursors(): void {
    if (this.refreshQueued) {
      return;
    }
    this.refreshQueued = true;
    this.queue(() => {
      this.refreshQueued = false;
      this.editor.dispatch({ effects: setParticipants.of([...this.client.participants.values()]) });
    });
  }
}

/**
 * A remote cursor with its name, drawn in a layer beside the content (not inside its lines, so
 * that the lines' text stays the document's text).
 */
class CursorMarker implements LayerMarker {
  constructor(
    readonly left: number,
    readonly top: number,
    readonly height: number,
    readonly name: string,
    readonly color: string,
  ) {}

  draw(): HTMLElement {
    const cursor = document.createElement("div");
    cursor.className = "duet-cursor";
    cursor.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = "duet-cursor-label";
    cursor.appendChild(label);
    this.adjust(cursor);
    return cursor;
  }

  update(dom: HTMLElement, previous: LayerMarker): boolean {
    if (!(previous instanceof CursorMarker)) {
      return false;
    }
    this.adjust(dom);
    return true;
  }

  eq(other: LayerMarker): boolean {
    return (
      other instanceof CursorMarker &&
      other.left === this.left &&
      other.top === this.top &&
      other.height === this.height &&
      other.name === this.name &&
      other.color === this.color
    );
  }

  private adjust(cursor: HTMLElement): void {
    cursor.style.left = `${this.left}px`;
    cursor.style.top = `${this.top}px`;
    cursor.style.height = `${this.height}px`;
    cursor.style.borderLeftColor = this.color;
    const label = cursor.firstChild as HTMLElement;
    label.style.backgroundColor = this.color;
    if (label.textContent !== this.name) {
      label.textContent = this.name;
    }
  }
}

function selectionMarks(remotes: readonly RemoteSelection[], color: (id: string) => string): DecorationSet {
  const ranges: Range<Decoration>[] = [];
  for (const remote of remotes) {
    if (remote.anchor !== remote.head) {
      ranges.push(
        Decoration.mark({
          class: "duet-selection",
          attributes: { style: `background-color: color-mix(in srgb, ${color(remote.clientId)} 25%, transparent)` },
        }).range(Math.min(remote.anchor, remote.head), Math.max(remote.anchor, remote.head)),
      );
    }
  }
  return Decoration.set(ranges, true);
}

const baseTheme = EditorView.baseTheme({
  ".duet-cursors": {
    pointerEvents: "none",
  },
  ".duet-cursor": {
    position: "absolute",
    borderLeft: "2px solid",
    marginLeft: "-1px",
  },
  ".duet-cursor-label": {
    position: "absolute",
    left: "-2px",
    bottom: "100%",
    padding: "0 4px",
    borderRadius: "3px 3px 3px 0",
    color: "#fff",
    fontSize: "11px",
    lineHeight: "1.4",
    fontFamily: "system-ui, sans-serif",
    whiteSpace: "nowrap",
    zIndex: "10",
    userSelect: "none",
  },
});

/** The extensions that bind an editor to a Duet client. The editor should start with `client.text`. */
export function duetCollab(client: CollabClient, options: DuetCollabOptions = {}): Extension {
  const color = options.color ?? colorFor;

  const marks = EditorView.decorations.compute([remoteSelectionsField], (state) =>
    selectionMarks(state.field(remoteSelectionsField), color),
  );

  const cursors = layer({
    above: true,
    class: "duet-cursors",
    markers(view) {
      const rect = view.scrollDOM.getBoundingClientRect();
      const left = rect.left - view.scrollDOM.scrollLeft * view.scaleX;
      const top = rect.top - view.scrollDOM.scrollTop * view.scaleY;
      const markers: LayerMarker[] = [];
      for (const remote of view.state.field(remoteSelectionsField)) {
        const coords = view.coordsAtPos(remote.head, 1) ?? view.coordsAtPos(remote.head, -1);
        if (coords === null) {
          continue;
        }
        markers.push(
          new CursorMarker(
            (coords.left - left) / view.scaleX,
            (coords.top - top) / view.scaleY,
            (coords.bottom - coords.top) / view.scaleY,
            remote.name,
            color(remote.clientId),
          ),
        );
      }
      return markers;
    },
    update(update) {
      return (
        update.docChanged ||
        update.viewportChanged ||
        update.geometryChanged ||
        update.startState.field(remoteSelectionsField) !== update.state.field(remoteSelectionsField)
      );
    },
  });

  const plugin = ViewPlugin.fromClass(
    class {
      private readonly sync: CollabSync;

      constructor(view: EditorView) {
        this.sync = new CollabSync(client, view);
      }

      update(update: ViewUpdate): void {
        this.sync.update(update.transactions);
      }

      destroy(): void {
        this.sync.destroy();
      }
    },
  );

  return [EditorState.lineSeparator.of("\n"), remoteSelectionsField, marks, cursors, plugin, baseTheme];
}
