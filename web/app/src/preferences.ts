/**
 * What a person chose for their own editor, kept in localStorage so that it holds in every
 * room and after a reload: for now, whether completions are offered after a pause in typing
 * (`duet.suggestWhileTyping`, on unless turned off; Ctrl-Space asks either way).
 */

const SUGGEST_KEY = "duet.suggestWhileTyping";

/** Whether completions come after a pause in typing: on unless this browser turned them off. */
export function storedSuggestWhileTyping(): boolean {
  try {
    return window.localStorage.getItem(SUGGEST_KEY) !== "off";
  } catch {
    return true;
  }
}

/** Keeps the choice; when storage is off it lasts as long as the page. */
export function storeSuggestWhileTyping(on: boolean): void {
  try {
    window.localStorage.setItem(SUGGEST_KEY, on ? "on" : "off");
  } catch {
    // Storage may be off or full: the choice still holds on this page.
  }
}
