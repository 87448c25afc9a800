/**
 * The history slider (revision 0 to the newest this page has seen) and the view of the code at
 * the revision chosen, read-only, with "Copy this version" and "Back to live".
 *
 * A revision already kept shows at once; others are loaded once the slider rests for a moment,
 * so dragging across a hundred revisions asks the server for one.
 */

import { useCallback, useEffect, useRef, useState } from "react";
import { useDispatch, useSelector } from "react-redux";
import { HttpError } from "./api";
import type { RevisionTexts } from "./revisions";
import { type AppDispatch, historySlice, type RootState } from "./store";

const DEBOUNCE_MS = 150;

/** Why a revision could not be shown, in words. */
export function revisionError(revision: number, error: unknown): string {
  if (error instanceof HttpError) {
    if (error.code === "revision_not_found" || (error.status === 404 && error.code !== "room_not_found")) {
      return `Revision ${revision} never existed in this room.`;
    }
    if (error.code === "revision_gone" || error.status === 410) {
      return `Revision ${revision} is older than the server keeps.`;
    }
    if (error.code === "busy") {
      return `The server is busy rebuilding old revisions: move the slider again in a moment to see revision ${revision}.`;
    }
  }
  return `Could not load revision ${revision}: ${(error as Error).message}`;
}

/** What moves the slider: `look(revision)` (the newest one is live) and `live()`. */
export function useHistory(revisions: RevisionTexts) {
  const dispatch = useDispatch<AppDispatch>();
  const newest = useSelector((state: RootState) => state.room.revision);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  useEffect(() => () => clearTimeout(timer.current), []);

  const live = useCallback(() => {
    clearTimeout(timer.current);
    dispatch(historySlice.actions.live());
  }, [dispatch]);

  const look = useCallback(
    (revision: number) => {
      clearTimeout(timer.current);
      if (revision >= newest) {
        dispatch(historySlice.actions.live());
        return;
      }
      dispatch(historySlice.actions.looked(revision));
      const kept = revisions.get(revision);
      if (kept !== undefined) {
        dispatch(historySlice.actions.loaded(kept));
        return;
      }
      timer.current = setTimeout(() => {
        revisions.load(revision).then(
          (loaded) => dispatch(historySlice.actions.loaded(loaded)),
          (error: unknown) => dispatch(historySlice.actions.failed({ revision, message: revisionError(revision, error) })),
        );
      }, DEBOUNCE_MS);
    },
    [dispatch, newest, revisions],
  );

  return { look, live };
}

export function HistorySlider({ look, live }: { look: (revision: number) => void; live: () => void }) {
  const newest = useSelector((state: RootState) => state.room.revision);
  const selected = useSelector((state: RootState) => state.history.selected);
  const value = selected ?? newest;
  const description = selected === null ? `Live, revision ${newest}` : `Revision ${selected} of ${newest}`;

  return (
    <section className="history">
      <h2 id="history-heading">History</h2>
      <input
        type="range"
        aria-label="History"
        aria-describedby="history-state"
        aria-valuetext={description}
        data-testid="history-slider"
        min={0}
        max={newest}
        step={1}
        value={value}
        disabled={newest === 0}
        onChange={(event) => look(Number(event.target.value))}
        onKeyDown={(event) => {
          if (event.key === "Escape" && selected !== null) {
            live();
          }
        }}
      />
      <p className="muted" id="history-state">
        {description}
      </p>
    </section>
  );
}

/** The code at the revision looked at, in place of the live editor. */
export function HistoryView({ live, nameOf }: { live: () => void; nameOf: (clientId: string) => string | undefined }) {
  const history = useSelector((state: RootState) => state.history);
  const newest = useSelector((state: RootState) => state.room.revision);
  const [copied, setCopied] = useState("");

  useEffect(() => setCopied(""), [history.selected]);

  if (history.selected === null) {
    return null;
  }

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(history.code);
      setCopied("Copied");
    } catch {
      setCopied("Could not copy: select the code and copy it yourself");
    }
  };

  const author = history.clientId ? nameOf(history.clientId) : undefined;
  const when = history.committedAt ? new Date(history.committedAt) : undefined;

  return (
    <section className="history-view" aria-labelledby="history-view-heading">
      <div className="history-bar">
        <h2 id="history-view-heading">
          Revision {history.selected} of {newest}
        </h2>
        {(author || (when && !Number.isNaN(when.getTime()))) && (
          <span className="muted">
            {author ? `by ${author}` : ""}
            {author && when ? ", " : ""}
            {when && !Number.isNaN(when.getTime()) ? <time dateTime={history.committedAt}>{when.toLocaleString()}</time> : null}
          </span>
        )}
        <span className="history-actions">
          <button type="button" onClick={copy} disabled={history.status !== "ready"}>
            Copy this version
          </button>
          <button type="button" onClick={live}>
            Back to live
          </button>
          <span role="status" className="muted">
            {copied}
          </span>
        </span>
      </div>
      {history.status === "loading" && <p className="loading">Loading revision {history.selected}…</p>}
      {history.status === "failed" && (
        <p className="error" role="alert">
          {history.message}
        </p>
      )}
      {history.status === "ready" && (
        <pre className="history-code" data-testid="history-code" tabIndex={0} aria-label={`Code at revision ${history.selected}`}>
          {history.code}
        </pre>
      )}
    </section>
  );
}
