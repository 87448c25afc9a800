/**
 * `/r/{roomId}`: the room. Asks once for the name others see, then connects (`@duet/client`)
 * and shows the editor (CodeMirror through `@duet/codemirror`) once the room's welcome gives its
 * text; the client's events go to the store, which the header, the people list and the history
 * slider show.
 */

import { connect, type DuetClient } from "@duet/client";
import { colorFor } from "@duet/codemirror";
import { type FormEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useDispatch, useSelector, useStore } from "react-redux";
import { fetchHistory, fetchLanguages, fetchRoom, LANGUAGES, type Language } from "./api";
import { createRoomEditor, type RoomEditor } from "./editor";
import { HistorySlider, HistoryView, useHistory } from "./History";
import { NameField } from "./NameField";
import { randomName, storedName, storeName } from "./names";
import { storedSuggestWhileTyping, storeSuggestWhileTyping } from "./preferences";
import { RevisionTexts } from "./revisions";
import { navigate, roomPath } from "./router";
import { currentToken, tokenClaims } from "./session";
import {
  type AppDispatch,
  connectionLabel,
  connectionSlice,
  historySlice,
  participantsSlice,
  roomSlice,
  type RootState,
} from "./store";

export default function RoomPage({ roomId }: { roomId: string }) {
  const [name, setName] = useState(storedName);
  useEffect(() => {
    document.title = "Duet room";
  }, []);
  if (name === null) {
    return <NamePrompt onDone={(chosen) => setName(storeName(chosen))} />;
  }
  return <Room roomId={roomId} name={name} />;
}

/** The first visit's question: the name others will see, a friendly random one to start with. */
function NamePrompt({ onDone }: { onDone: (name: string) => void }) {
  const [name, setName] = useState(randomName);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onDone(name);
  };
  return (
    <main className="start">
      <h1>Duet</h1>
      <form className="card" onSubmit={submit} aria-labelledby="name-heading">
        <h2 id="name-heading">Which name should the others see?</h2>
        <NameField value={name} onChange={setName} autoFocus />
        <button type="submit">Join the room</button>
      </form>
    </main>
  );
}

/** Whether the address asks for a view that sends no edits (`?readonly=1`). */
function readOnlyRequested(): boolean {
  const value = new URLSearchParams(window.location.search).get("readonly");
  return value !== null && ["", "1", "true", "yes"].includes(value.toLowerCase());
}

function Room({ roomId, name }: { roomId: string; name: string }) {
  const dispatch = useDispatch<AppDispatch>();
  const store = useStore<RootState>();
  const editorParent = useRef<HTMLDivElement>(null);
  const clientRef = useRef<DuetClient | null>(null);
  const editorRef = useRef<RoomEditor | null>(null);
  const revisions = useMemo(
    () =>
      new RevisionTexts({
        room: (revision) => fetchRoom(roomId, revision),
        history: (from, to) => fetchHistory(roomId, from, to),
      }),
    [roomId],
  );
  const [ready, setReady] = useState(false);
  const [copied, setCopied] = useState("");
  const [suggestWhileTyping, setSuggestWhileTyping] = useState(storedSuggestWhileTyping);
  const [languages, setLanguages] = useState<Language[]>(LANGUAGES);

  const connection = useSelector((state: RootState) => state.connection);
  const room = useSelector((state: RootState) => state.room);
  const participants = useSelector((state: RootState) => state.participants);
  const looking = useSelector((state: RootState) => state.history.selected !== null);
  const { look, live } = useHistory(revisions);
  // "Back to live" goes away as it is pressed: the focus goes to the editor it brings back,
  // not to the page's top, so that keyboard users carry on where they were.
  const [focusEditor, setFocusEditor] = useState(false);
  const backToLive = useCallback(() => {
    live();
    setFocusEditor(true);
  }, [live]);
  useEffect(() => {
    if (focusEditor && !looking) {
      editorRef.current?.view.focus();
      setFocusEditor(false);
    }
  }, [focusEditor, looking]);

  useEffect(() => {
    let current = true;
    void fetchLanguages().then((list) => current && setLanguages(list));
    return () => {
      current = false;
    };
  }, []);

  useEffect(() => {
    const token = currentToken(roomId);
    const claims = tokenClaims(token);
    // A token's name is the one the server shows the others.
    const shownName = claims.name ?? name;
    if (readOnlyRequested()) {
      dispatch(roomSlice.actions.opened({ roomId, readOnly: true, message: "Read-only view: nothing you do here changes the room." }));
    } else if (claims.role === "viewer") {
      dispatch(roomSlice.actions.opened({ roomId, readOnly: true, message: "Your link lets you watch this room, not edit it." }));
    } else {
      dispatch(roomSlice.actions.opened({ roomId, readOnly: false }));
    }
    dispatch(participantsSlice.actions.cleared());
    dispatch(historySlice.actions.live());
    revisions.clear();

    const client = connect({ url: window.location.origin, roomId, name, ...(token ? { token } : {}) });
    clientRef.current = client;

    /** Keeps the text of the revision the client is at, when it is the server's. */
    const remember = (clientId?: string) => {
      if (client.isSynchronized && client.revision !== undefined) {
        revisions.remember({ revision: client.revision, code: client.text, ...(clientId ? { clientId } : {}) });
      }
    };
    const pending = () => dispatch(connectionSlice.actions.pendingChanged(client.pendingEdits));

    const offs = [
      client.on("status", (status) => dispatch(connectionSlice.actions.statusChanged(status))),
      client.on("welcome", (welcome) => {
        dispatch(
          participantsSlice.actions.welcomed({
            self: { clientId: welcome.clientId, name: shownName },
            others: welcome.participants.map((participant) => ({ clientId: participant.clientId, name: participant.name })),
          }),
        );
        dispatch(roomSlice.actions.welcomed({ revision: welcome.revision, language: welcome.language }));
        if (editorRef.current === null && editorParent.current !== null) {
          editorRef.current = createRoomEditor(editorParent.current, client, {
            language: welcome.language,
            readOnly: store.getState().room.readOnly,
            suggestWhileTyping: storedSuggestWhileTyping(),
            onChange: pending,
          });
          setReady(true);
        }
        pending();
        remember();
      }),
      client.on("ack", (ack) => {
        dispatch(connectionSlice.actions.pendingChanged(ack.pendingEdits));
        dispatch(roomSlice.actions.revisionSeen(ack.revision));
        remember(client.clientId);
      }),
      client.on("remoteChange", (change) => {
        dispatch(roomSlice.actions.revisionSeen(change.revision));
        remember(change.reverted ? undefined : change.clientId);
      }),
      client.on("joined", ({ clientId, name: theirs }) => dispatch(participantsSlice.actions.joined({ clientId, name: theirs }))),
      client.on("presence", ({ clientId, name: theirs }) => {
        if (store.getState().participants.byId[clientId]?.name !== theirs) {
          dispatch(participantsSlice.actions.joined({ clientId, name: theirs }));
        }
      }),
      client.on("left", ({ clientId }) => dispatch(participantsSlice.actions.left({ clientId }))),
      client.on("language", ({ language }) => dispatch(roomSlice.actions.languageChanged(language))),
      client.on("error", (error) => {
        if (error.code === "forbidden") {
          dispatch(roomSlice.actions.madeReadOnly("The server does not take edits from you here: this view is read-only."));
        }
      }),
    ];
    return () => {
      for (const off of offs) {
        off();
      }
      editorRef.current?.destroy();
      editorRef.current = null;
      clientRef.current = null;
      client.close();
      setReady(false);
    };
  }, [roomId, name, dispatch, store, revisions]);

  useEffect(() => {
    editorRef.current?.setLanguage(room.language);
  }, [room.language, ready]);

  useEffect(() => {
    editorRef.current?.setSuggestWhileTyping(suggestWhileTyping);
  }, [suggestWhileTyping, ready]);

  const closed = connection.state === "closed";
  useEffect(() => {
    editorRef.current?.setReadOnly(room.readOnly || closed);
  }, [room.readOnly, closed, ready]);

  const copyLink = async () => {
    // The room's address, without this page's token or options: a share link with a token is
    // minted for the person it is for.
    const link = `${window.location.origin}${roomPath(roomId)}`;
    try {
      await navigator.clipboard.writeText(link);
      setCopied("Link copied");
    } catch {
      setCopied(`Copy this link: ${link}`);
    }
  };

  const nameOf = useCallback(
    (clientId: string) => participants.byId[clientId]?.name,
    [participants],
  );

  const languageOptions = languages.some((language) => language.id === room.language)
    ? languages
    : [...languages, { id: room.language, name: room.language }];

  return (
    <div className="room">
      <header className="room-header">
        <a
          href="/"
          className="brand"
          onClick={(event) => {
            event.preventDefault();
            navigate("/");
          }}
        >
          Duet
        </a>
        <span className="room-id" title={`Room ${roomId}`}>
          {roomId}
        </span>
        <select
          aria-label="Language"
          value={room.language}
          disabled={room.readOnly || connection.state !== "connected"}
          onChange={(event) => clientRef.current?.setLanguage(event.target.value)}
        >
          {languageOptions.map((language) => (
            <option key={language.id} value={language.id}>
              {language.name}
            </option>
          ))}
        </select>
        <button type="button" data-testid="copy-link" onClick={copyLink}>
          Copy link
        </button>
        <span className="muted copied" role="status">
          {copied}
        </span>
        <span
          className={`connection connection-${connection.state}`}
          data-testid="connection-state"
          data-state={connection.state}
          role="status"
        >
          {connectionLabel(connection)}
        </span>
      </header>
      {room.readOnly && <p className="notice">{room.message}</p>}
      <div className="room-body">
        <main className="editor-pane">
          {!ready && !closed && <p className="loading">Connecting to the room…</p>}
          {!ready && closed && (
            <p className="loading error" role="alert">
              Could not open the room: {connectionLabel(connection).replace(/^closed: /, "")}.
            </p>
          )}
          <HistoryView live={backToLive} nameOf={nameOf} />
          <div className="editor" ref={editorParent} hidden={looking} />
        </main>
        <aside className="sidebar" aria-label="Room">
          <section aria-labelledby="people-heading">
            <h2 id="people-heading">People ({participants.ids.length})</h2>
            <ul className="people">
              {participants.ids.map((id) => {
                const person = participants.byId[id]!;
                return (
                  <li key={id} data-testid="participant" data-client-id={id}>
                    <span className="swatch" style={{ backgroundColor: colorFor(id) }} aria-hidden="true" />
                    <span className="person-name">{person.name || "anonymous"}</span>
                    {person.self && <span className="muted"> (you)</span>}
                  </li>
                );
              })}
            </ul>
          </section>
          {!room.readOnly && (
            <section aria-labelledby="completions-heading">
              <h2 id="completions-heading">Completions</h2>
              <label className="check">
                <input
                  type="checkbox"
                  checked={suggestWhileTyping}
                  onChange={(event) => {
                    setSuggestWhileTyping(event.target.checked);
                    storeSuggestWhileTyping(event.target.checked);
                  }}
                />
                Suggest when I pause
              </label>
              <p className="muted hint">Ctrl-Space asks at any time.</p>
            </section>
          )}
          <HistorySlider look={look} live={live} />
        </aside>
      </div>
    </div>
  );
}
