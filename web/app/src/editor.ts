/**
 * The room's editor: CodeMirror bound to the client (`duetCollab`), with the language's
 * highlighting (loaded on demand), completions from the room's engine (after 600 ms without
 * typing unless the person turned that off, or Ctrl-Space; Tab or Enter takes one), and a
 * read-only switch.
 */

import {
  acceptCompletion,
  autocompletion,
  closeBrackets,
  closeBracketsKeymap,
  type CompletionContext,
  type CompletionResult,
  completionKeymap,
} from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { Compartment, EditorState, Prec } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import type { DuetClient } from "@duet/client";
import { duetCollab } from "@duet/codemirror";
import { loadLanguage } from "./languages";

export interface RoomEditor {
  view: EditorView;
  setLanguage(language: string): void;
  setReadOnly(readOnly: boolean): void;
  /** Whether completions are offered after a pause in typing (Ctrl-Space always asks). */
  setSuggestWhileTyping(on: boolean): void;
  destroy(): void;
}

/** How long typing must pause before a completion is asked for. */
const COMPLETION_IDLE_MS = 600;

/** A completion source asking the room's engine through the client. */
function completionSource(client: DuetClient) {
  return async (context: CompletionContext): Promise<CompletionResult | null> => {
    if (context.state.readOnly) {
      return null;
    }
    const word = context.matchBefore(/[\w$]+/);
    if (!context.explicit && (word === null || word.from === word.to)) {
      return null;
    }
    let answer;
    try {
      answer = await client.requestCompletion(context.pos);
    } catch {
      return null;
    }
    if (context.aborted) {
      return null;
    }
    const seen = new Set<string>();
    const options = [answer.suggestion, ...answer.alternatives].filter((option) => {
      if (!option || seen.has(option)) {
        return false;
      }
      seen.add(option);
      return true;
    });
    if (options.length === 0) {
      return null;
    }
    const prefix = word === null ? "" : context.state.sliceDoc(word.from, context.pos);
    return {
      from: context.pos,
      filter: false,
      options: options.map((option, index) => ({
        label: `${prefix}${option}`.split("\n")[0] ?? option,
        apply: option,
        detail: index === 0 ? "suggestion" : "alternative",
        boost: -index,
      })),
    };
  };
}

/** `onChange` is called after every change to the text, the user's or the room's. */
export function createRoomEditor(
  parent: HTMLElement,
  client: DuetClient,
  options: { language: string; readOnly: boolean; suggestWhileTyping: boolean; onChange?: () => void },
): RoomEditor {
  const language = new Compartment();
  const readOnly = new Compartment();
  const completions = new Compartment();
  const completionExtension = (whileTyping: boolean) =>
    autocompletion({
      override: [completionSource(client)],
      activateOnTyping: whileTyping,
      activateOnTypingDelay: COMPLETION_IDLE_MS,
      // CodeMirror ignores Tab and Enter for 75 ms after a completion shows, against keys
      // already on their way; here a completion shows only after a pause (or Ctrl-Space),
      // and a Tab or Enter pressed the moment it is seen must take it, not leave the editor
      // or break the line.
      interactionDelay: 0,
    });
  const readOnlyExtensions = (on: boolean) => [EditorState.readOnly.of(on), EditorView.editable.of(!on)];
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: client.text,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        completions.of(completionExtension(options.suggestWhileTyping)),
        // Tab takes the completion on offer; without one it leaves the editor, as it does
        // everywhere else on the page (the editor does not trap the keyboard).
        Prec.highest(keymap.of([{ key: "Tab", run: acceptCompletion }])),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap]),
        EditorView.contentAttributes.of({ "aria-label": "Code" }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) {
            options.onChange?.();
          }
        }),
        language.of([]),
        readOnly.of(readOnlyExtensions(options.readOnly)),
        duetCollab(client),
      ],
    }),
  });

  // Grammars arrive asynchronously: only the latest language asked for is applied.
  let destroyed = false;
  let wanted = "";
  const setLanguage = (id: string) => {
    if (id === wanted) {
      return;
    }
    wanted = id;
    void loadLanguage(id).then((support) => {
      if (wanted === id && !destroyed) {
        view.dispatch({ effects: language.reconfigure(support) });
      }
    });
  };
  setLanguage(options.language);

  return {
    view,
    setLanguage,
    setReadOnly: (on) => view.dispatch({ effects: readOnly.reconfigure(readOnlyExtensions(on)) }),
    setSuggestWhileTyping: (on) => view.dispatch({ effects: completions.reconfigure(completionExtension(on)) }),
    destroy: () => {
      destroyed = true;
      view.destroy();
    },
  };
}
