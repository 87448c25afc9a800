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
import { languageSupport } from "./languages";

export interface RoomEditor {
  view: EditorView;
  setLanguage(language: string): void;
  setReadOnly(readOnly: boolean): void;
}

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

export function createRoomEditor(
  parent: HTMLElement,
  client: DuetClient,
  options: { language: string; readOnly: boolean },
): RoomEditor {
  const language = new Compartment();
  const readOnly = new Compartment();
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
        autocompletion({
          override: [completionSource(client)],
          activateOnTyping: true,
          activateOnTypingDelay: 600,
        }),
        Prec.highest(keymap.of([{ key: "Tab", run: acceptCompletion }])),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap]),
        EditorView.contentAttributes.of({ "aria-label": "Code" }),
        language.of(languageSupport(options.language)),
        readOnly.of(readOnlyExtensions(options.readOnly)),
        duetCollab(client),
      ],
    }),
  });
  return {
    view,
    setLanguage: (id) => view.dispatch({ effects: language.reconfigure(languageSupport(id)) }),
    setReadOnly: (on) => view.dispatch({ effects: readOnly.reconfigure(readOnlyExtensions(on)) }),
  };
}
