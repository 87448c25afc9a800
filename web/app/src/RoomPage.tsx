import { connect, type DuetClient } from "@duet/client";
import { colorFor } from "@duet/codemirror";
import { useEffect, useRef, useState } from "react";
import { useDispatch, useSelector, useStore } from "react-redux";
import { LANGUAGES, pageToken } from "./api";
import { createRoomEditor, type RoomEditor } from "./editor";
import { History, type RevisionCache } from "./History";
import { NameField, useDisplayName } from "./NameField";
import { navigate } from "./router";
import {
  type AppDispatch,
  connectionLabel,
  connectionSlice,
  participantsSlice,
  roomSlice,
  type RootState,
} from "./store";

const CACHE_LIMIT = 2_000;

export function RoomPage({ roomId }: { roomId: string }) {
  const dispatch = useDispatch<AppDispatch>();
  const store = useStore<RootState>();
  const [name] = useDisplayName();
  const editorParent = useRef<HTMLDivElement>(null);
  const clientRef = useRef<DuetClient | null>(null);
  const editorRef = useRef<RoomEditor | null>(null);
  const cacheRef = useRef<RevisionCache>(new Map());
  const [ready, setReady] = useState(false);
  const [copied, setCopied] = useState("");

  const connection = useSelector((state: RootState) => state.connection);
  const room = useSelector((state: RootState) => state.room);
  const participants = useSelector((state: RootState) => state.participants);

  useEffect(() => {
    const params = new URLSearchParams(window.location.search);
    const readOnly = ["1", "true", "yes"].includes(params.get("readonly") ?? "");
    const token = pageToken();
    dispatch(roomSlice.actions.opened({ roomId, readOnly }));
    dispatch(participantsSlice.actions.cleared());
    const cache = cacheRef.current;
    cache.clear();
    const client = connect({
      url: window.location.origin,
      roomId,
      name,
      ...(token ? { token } : {}),
    });
    clientRef.current = client;

    const remember = () => {
      if (client.isSynchronized && client.revision !== undefined) {
        cache.set(client.revision, client.text);
        if (cache.size > CACHE_LIMIT) {
          cache.delete(cache.keys().next().value!);
        }
      }
    };

    const offs = [
      client.on("status", (status) => dispatch(connectionSlice.actions.statusChanged(status))),
      client.on("welcome", (welcome) => {
        dispatch(
          participantsSlice.actions.welcomed({
            self: { clientId: welcome.clientId, name },
            others: welcome.participants.map(({ clientId, name }) => ({ clientId, name })),
          }),
        );
        dispatch(roomSlice.actions.languageChanged(welcome.language));
        dispatch(roomSlice.actions.revisionReset(welcome.revision));
        if (editorRef.current === null && editorParent.current !== null) {
          editorRef.current = createRoomEditor(editorParent.current, client, {
            language: welcome.language,
            readOnly: store.getState().room.readOnly,
          });
          setReady(true);
        }
        remember();
      }),
      client.on("ack", (ack) => {
        dispatch(connectionSlice.actions.pendingChanged(ack.pendingEdits));
        dispatch(roomSlice.actions.revisionChanged(ack.revision));
        remember();
      }),
      client.on("remoteChange", (change) => {
        dispatch(roomSlice.actions.revisionChanged(change.revision));
        remember();
      }),
      client.on("joined", ({ clientId, name }) => dispatch(participantsSlice.actions.joined({ clientId, name }))),
      client.on("presence", ({ clientId, name }) => {
        if (store.getState().participants.byId[clientId]?.name !== name) {
          dispatch(participantsSlice.actions.joined({ clientId, name }));
        }
      }),
      client.on("left", ({ clientId }) => dispatch(participantsSlice.actions.left({ clientId }))),
      client.on("language", ({ language }) => dispatch(roomSlice.actions.languageChanged(language))),
      client.on("error", (error) => {
        if (error.code === "forbidden") {
          dispatch(roomSlice.actions.madeReadOnly("You can view this room but not edit it."));
        }
      }),
    ];
    return () => {
      for (const off of offs) {
        off();
      }
      editorRef.current?.view.destroy();
      editorRef.current = null;
      clientRef.current = null;
      client.close();
      setReady(false);
    };
    // The name is read once, when the room opens.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [roomId, dispatch, store]);

  useEffect(() => {
    editorRef.current?.setLanguage(room.language);
  }, [room.language, ready]);

  useEffect(() => {
    editorRef.current?.setReadOnly(room.readOnly);
  }, [room.readOnly, ready]);

  const copyLink = async () => {
    const link = `${window.location.origin}${window.location.pathname}${window.location.search}`;
    try {
      await navigator.clipboard.writeText(link);
      setCopied("Link copied");
    } catch {
      setCopied(link);
    }
  };

  const label = connectionLabel(connection);

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
        <span className="room-id" title="Room id">
          {roomId}
        </span>
        <select
            aria-label="Language"
            value={room.language}
            disabled={room.readOnly || connection.state !== "connected"}
            onChange={(event) => clientRef.current?.setLanguage(event.target.value)}
          >
            {LANGUAGES.map((language) => (
              <option key={language.id} value={language.id}>
                {language.id}
              </option>
            ))}
          </select>
        <button type="button" onClick={copyLink}>
          Copy link
        </button>
        <span className="copied" role="status">
          {copied}
        </span>
        <span
          className={`connection connection-${connection.state}`}
          data-testid="connection-state"
          role="status"
          title={connection.reason || undefined}
        >
          {label}
        </span>
      </header>
      {room.readOnly && <p className="notice">{room.message || "Read-only view: your changes are not sent."}</p>}
      {connection.state === "closed" && connection.reason && (
        <p className="notice error" role="alert">
          The connection closed: {connection.reason}
        </p>
      )}
      <div className="room-body">
        <section className="editor-pane">
          {!ready && <p className="loading">Loading the room…</p>}
          <div className="editor" ref={editorParent} />
        </section>
        <aside className="sidebar">
          <section>
            <h2 id="people-heading">People</h2>
            <ul className="people">
              {participants.ids.map((id) => {
                const person = participants.byId[id]!;
                return (
                  <li key={id}>
                    <span className="swatch" style={{ backgroundColor: colorFor(id) }} aria-hidden="true" />
                    {person.name || "anonymous"}
                    {person.self && <span className="you"> (you)</span>}
                  </li>
                );
              })}
            </ul>
            <NameField />
            <p className="hint">A new name shows the next time you open a room.</p>
          </section>
          <History roomId={roomId} revision={room.revision} cache={cacheRef.current} />
        </aside>
      </div>
    </div>
  );
}
