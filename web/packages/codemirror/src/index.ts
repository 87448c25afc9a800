/**
 * `@duet/codemirror`: CodeMirror 6 in a Duet room through `@duet/client`.
 *
 * `duetCollab(client)` returns the extensions that keep an editor and a client in step: each
 * local change becomes a `TextOperation` given to `client.applyLocal`, each `remoteChange` is
 * dispatched as a transaction annotated with `remoteEdit` (so it is not sent back), the local
 * selection goes to `client.setSelection`, and the others' cursors and selections are drawn as
 * decorations in a colour per client id, with a label holding their name.
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
} from "@codemirror/state";
import { Decoration, type DecorationSet, EditorView, ViewPlugin, type ViewUpdate, WidgetType } from "@codemirror/view";
import { diff, type DuetEvents, type Participant, type Selection, TextOperation } from "@duet/client";

/** The part of `DuetClient` the binding uses (a fake one fits in tests). */
export interface CollabClient {
  readonly text: string;
  readonly participants: ReadonlyMap<string, Participant>;
  applyLocal(operation: TextOperation, selection?: Selection): void;
  setSelection(selection: Selection): void;
  on<K extends keyof DuetEvents>(event: K, handler: (payload: DuetEvents[K]) => void): () => void;
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

/** The others as the decorations draw them. */
const setParticipants = StateEffect.define<Participant[]>();

class CursorWidget extends WidgetType {
  constructor(
    readonly name: string,
    readonly color: string,
  ) {
    super();
  }

  override eq(other: CursorWidget): boolean {
    return other.name === this.name && other.color === this.color;
  }

  toDOM(): HTMLElement {
    const cursor = document.createElement("span");
    cursor.className = "duet-cursor";
    cursor.style.borderLeftColor = this.color;
    cursor.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = "duet-cursor-label";
    label.style.backgroundColor = this.color;
    label.textContent = this.name;
    cursor.appendChild(label);
    return cursor;
  }

  override ignoreEvent(): boolean {
    return true;
  }
}

function buildDecorations(participants: Participant[], length: number, color: (id: string) => string): DecorationSet {
  const ranges: Range<Decoration>[] = [];
  for (const participant of participants) {
    const selection = participant.selection;
    if (selection === undefined) {
      continue;
    }
    const anchor = Math.max(0, Math.min(selection.anchor, length));
    const head = Math.max(0, Math.min(selection.head, length));
    const hue = color(participant.clientId);
    if (anchor !== head) {
      ranges.push(
        Decoration.mark({
          class: "duet-selection",
          attributes: { style: `background-color: color-mix(in srgb, ${hue} 25%, transparent)` },
        }).range(Math.min(anchor, head), Math.max(anchor, head)),
      );
    }
    ranges.push(
      Decoration.widget({ widget: new CursorWidget(participant.name || "anonymous", hue), side: 1 }).range(head),
    );
  }
  return Decoration.set(ranges, true);
}

const baseTheme = EditorView.baseTheme({
  ".duet-cursor": {
    position: "relative",
    borderLeft: "2px solid",
    marginLeft: "-1px",
    marginRight: "-1px",
    pointerEvents: "none",
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

  const cursors = StateField.define<DecorationSet>({
    create: (state) => buildDecorations([...client.participants.values()], state.doc.length, color),
    update(value, transaction) {
      let next = value.map(transaction.changes);
      for (const effect of transaction.effects) {
        if (effect.is(setParticipants)) {
          next = buildDecorations(effect.value, transaction.state.doc.length, color);
        }
      }
      return next;
    },
    provide: (field) => EditorView.decorations.from(field),
  });

  const plugin = ViewPlugin.fromClass(
    class {
      private readonly unsubscribe: (() => void)[] = [];
      private refreshQueued = false;
      private destroyed = false;

      constructor(private readonly view: EditorView) {
        const refresh = () => this.refreshCursors();
        this.unsubscribe.push(
          client.on("remoteChange", ({ operation }) => this.applyRemote(operation)),
          client.on("welcome", () => this.resync()),
          client.on("presence", refresh),
          client.on("joined", refresh),
          client.on("left", refresh),
        );
        if (view.state.doc.toString() !== client.text) {
          this.queue(() => this.resync());
        }
      }

      update(update: ViewUpdate): void {
        let sent = false;
        for (const transaction of update.transactions) {
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
            client.applyLocal(operation, { anchor, head });
            sent = true;
          } catch {
            // Before the first welcome, or after the client closed: the client's text wins.
            this.queue(() => this.resync());
            return;
          }
        }
        if (sent) {
          this.queue(() => this.refreshCursors());
        } else if (update.selectionSet && update.transactions.some((t) => !t.annotation(remoteEdit))) {
          const { anchor, head } = update.state.selection.main;
          client.setSelection({ anchor, head });
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
        if (operation.baseLength !== this.view.state.doc.length) {
          this.resync();
          return;
        }
        this.view.dispatch({
          changes: operationToChanges(operation),
          annotations: [remoteEdit.of(true), Transaction.addToHistory.of(false)],
          effects: setParticipants.of([...client.participants.values()]),
        });
      }

      /** Makes the editor hold the client's text, by the smallest change. */
      private resync(): void {
        const current = this.view.state.doc.toString();
        const change = current === client.text ? undefined : diff(current, client.text);
        this.view.dispatch({
          ...(change === undefined ? {} : { changes: operationToChanges(change) }),
          annotations: [remoteEdit.of(true), Transaction.addToHistory.of(false)],
          effects: setParticipants.of([...client.participants.values()]),
        });
      }

      private refreshCursors(): void {
        if (this.refreshQueued) {
          return;
        }
        this.refreshQueued = true;
        this.queue(() => {
          this.refreshQueued = false;
          this.view.dispatch({ effects: setParticipants.of([...client.participants.values()]) });
        });
      }
    },
  );

  return [EditorState.lineSeparator.of("\n"), cursors, plugin, baseTheme];
}
