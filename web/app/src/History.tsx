import { useEffect, useRef, useState } from "react";
import { fetchRoom, HttpError } from "./api";

/** Texts of revisions seen while synchronised, so that stepping through history is instant. */
export type RevisionCache = Map<number, string>;

const DEBOUNCE_MS = 150;

export function History({ roomId, revision, cache }: { roomId: string; revision: number; cache: RevisionCache }) {
  /** The revision looked at, or null for live. */
  const [selected, setSelected] = useState<number | null>(null);
  const [code, setCode] = useState<string | null>(null);
  const [message, setMessage] = useState("");
  const [copied, setCopied] = useState("");
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const wanted = useRef<number | null>(null);

  useEffect(() => () => clearTimeout(timer.current), []);

  const show = (value: number) => {
    clearTimeout(timer.current);
    setCopied("");
    if (value >= revision) {
      wanted.current = null;
      setSelected(null);
      setCode(null);
      setMessage("");
      return;
    }
    wanted.current = value;
    setSelected(value);
    const known = cache.get(value);
    if (known !== undefined) {
      setCode(known);
      setMessage("");
      return;
    }
    timer.current = setTimeout(() => {
      fetchRoom(roomId, value).then(
        (view) => {
          cache.set(value, view.code);
          if (wanted.current === value) {
            setCode(view.code);
            setMessage("");
          }
        },
        (error: unknown) => {
          if (wanted.current !== value) {
            return;
          }
          setCode(null);
          if (error instanceof HttpError && (error.status === 404 || error.status === 410)) {
            setMessage(`Revision ${value} is no longer kept.`);
          } else {
            setMessage(`Could not load revision ${value}: ${(error as Error).message}`);
          }
        },
      );
    }, DEBOUNCE_MS);
  };

  const copy = async () => {
    if (code === null) {
      return;
    }
    try {
      await navigator.clipboard.writeText(code);
      setCopied("Copied");
    } catch {
      setCopied("Could not copy");
    }
  };

  const value = selected ?? revision;

  return (
    <section className="history">
      <h2 id="history-heading">History</h2>
      <input
        type="range"
        aria-label="History"
        min={0}
        max={revision}
        step={1}
        value={value}
        aria-valuetext={selected === null ? `revision ${revision}, live` : `revision ${value} of ${revision}`}
        onChange={(event) => show(Number(event.target.value))}
      />
      <p className="history-state">{selected === null ? `Live (revision ${revision})` : `Revision ${value} of ${revision}`}</p>
      {selected !== null && (
        <>
          {message && (
            <p className="error" role="alert">
              {message}
            </p>
          )}
          {code !== null && (
            <pre className="history-code" data-testid="history-code" tabIndex={0}>
              {code}
            </pre>
          )}
          <div className="history-actions">
            <button type="button" onClick={copy} disabled={code === null}>
              Copy this version
            </button>
            <button type="button" onClick={() => show(revision)}>
              Back to live
            </button>
            <span role="status">{copied}</span>
          </div>
        </>
      )}
    </section>
  );
}
