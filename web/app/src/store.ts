/**
 * The app's state, in Redux Toolkit slices: the connection as the client reports it, the people
 * in the room, the room itself (language, revision, whether this page may edit), and the
 * history slider's choice. The editor's text is not here: CodeMirror and the client hold it.
 */

import type { ConnectionStatus } from "@duet/client";
import { configureStore, createSlice, type PayloadAction } from "@reduxjs/toolkit";

export type ConnectionState = ConnectionStatus["state"];

export interface ConnectionSlice {
  state: ConnectionState;
  /** Local edits the server has not acknowledged. */
  pendingEdits: number;
  /** When closed: the close code (or HTTP status) and why. */
  code: number;
  reason: string;
}

const initialConnection: ConnectionSlice = { state: "idle", pendingEdits: 0, code: 0, reason: "" };

export const connectionSlice = createSlice({
  name: "connection",
  initialState: initialConnection,
  reducers: {
    statusChanged(state, action: PayloadAction<ConnectionStatus>): ConnectionSlice {
      const status = action.payload;
      switch (status.state) {
        case "reconnecting":
        case "offline":
          return { state: status.state, pendingEdits: status.pendingEdits, code: 0, reason: "" };
        case "closed":
          return { state: "closed", pendingEdits: status.pendingEdits, code: status.code, reason: status.reason };
        default:
          return { state: status.state, pendingEdits: state.pendingEdits, code: 0, reason: "" };
      }
    },
    pendingChanged(state, action: PayloadAction<number>) {
      state.pendingEdits = action.payload;
    },
  },
});

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

/**
 * What the page shows of the connection. It says "connected" only when it is (and no other
 * state's words contain that one), so that a test or a person can rely on it.
 */
export function connectionLabel(connection: ConnectionSlice): string {
  const pending = connection.pendingEdits > 0 ? `, ${plural(connection.pendingEdits, "edit", "edits")} pending` : "";
  switch (connection.state) {
    case "connected":
      return "connected";
    case "reconnecting":
      return `reconnecting${pending}`;
    case "offline":
      return `offline${pending}`;
    case "closed":
      return `closed: ${closedReason(connection.code, connection.reason)}`;
    case "connecting":
      return "connecting…";
    case "idle":
      return "not started";
  }
}

/** Why the connection closed for good, in words a person can act on. */
export function closedReason(code: number, reason: string): string {
  switch (reason) {
    case "room_not_found":
      return "there is no such room";
    case "unauthorized":
      return "this room needs a valid token (open it from a share link)";
    case "forbidden":
      return "your token does not open this room";
    case "room_full":
      return "the room is full";
    case "client_id_taken":
      return "this session belongs to someone else";
    case "invalid_room_id":
      return "that is not a room id";
  }
  switch (code) {
    case 1000:
      return "you left the room";
    case 4404:
      return "the room was deleted";
    case 4409:
      return "the room was opened again in another tab or window";
  }
  return reason || `code ${code}`;
}

export interface Person {
  clientId: string;
  name: string;
  self: boolean;
}

export interface ParticipantsSlice {
  /** Client ids: this page first, then the others in the order they came. */
  ids: string[];
  byId: Record<string, Person>;
}

/**
 * An empty `byId`. It has no prototype, since client ids come from other people: an id such
 * as `__proto__` or `constructor` must be a key like any other, never Object's own property.
 */
function noOne(): Record<string, Person> {
  return Object.create(null) as Record<string, Person>;
}

const initialParticipants: ParticipantsSlice = { ids: [], byId: noOne() };

export const participantsSlice = createSlice({
  name: "participants",
  initialState: initialParticipants,
  reducers: {
    /** A welcome: this page and whoever is in the room, from scratch. */
    welcomed(
      _state,
      action: PayloadAction<{ self: { clientId: string; name: string }; others: { clientId: string; name: string }[] }>,
    ) {
      const { self, others } = action.payload;
      const next: ParticipantsSlice = { ids: [], byId: noOne() };
      for (const person of [{ ...self, self: true }, ...others.map((other) => ({ ...other, self: false }))]) {
        if (next.byId[person.clientId] === undefined) {
          next.ids.push(person.clientId);
          next.byId[person.clientId] = { clientId: person.clientId, name: person.name, self: person.self };
        }
      }
      return next;
    },
    /** Someone joined, or showed up in presence under a (new) name. */
    joined(state, action: PayloadAction<{ clientId: string; name: string }>) {
      const { clientId, name } = action.payload;
      const known = state.byId[clientId];
      if (known === undefined) {
        state.ids.push(clientId);
        state.byId[clientId] = { clientId, name, self: false };
      } else if (known.name !== name && !known.self) {
        known.name = name;
      }
    },
    left(state, action: PayloadAction<{ clientId: string }>) {
      const { clientId } = action.payload;
      if (state.byId[clientId]?.self) {
        return;
      }
      delete state.byId[clientId];
      state.ids = state.ids.filter((id) => id !== clientId);
    },
    cleared() {
      return { ids: [], byId: noOne() };
    },
  },
});

export interface RoomSlice {
  roomId: string;
  language: string;
  /** The newest revision this page has seen. */
  revision: number;
  /** No edits from this page: `?readonly=1`, a viewer's token, or the server refused one. */
  readOnly: boolean;
  /** Why it is read-only, when that is not the page's own choice. */
  message: string;
}

const initialRoom: RoomSlice = { roomId: "", language: "plaintext", revision: 0, readOnly: false, message: "" };

export const roomSlice = createSlice({
  name: "room",
  initialState: initialRoom,
  reducers: {
    opened(_state, action: PayloadAction<{ roomId: string; readOnly: boolean; message?: string }>) {
      return { ...initialRoom, ...action.payload };
    },
    languageChanged(state, action: PayloadAction<string>) {
      state.language = action.payload;
    },
    /** An acknowledgement or someone's edit: revisions only go forward. */
    revisionSeen(state, action: PayloadAction<number>) {
      state.revision = Math.max(state.revision, action.payload);
    },
    /** A welcome: the revision is the server's, whatever this page saw before. */
    welcomed(state, action: PayloadAction<{ revision: number; language: string }>) {
      state.revision = action.payload.revision;
      state.language = action.payload.language;
    },
    /** Once read-only, a page stays so: the server will not take its edits. */
    madeReadOnly(state, action: PayloadAction<string>) {
      state.readOnly = true;
      state.message = action.payload;
    },
  },
});

export interface HistorySlice {
  /** The revision looked at, or null for the live room. */
  selected: number | null;
  status: "idle" | "loading" | "ready" | "failed";
  code: string;
  clientId: string;
  committedAt: string;
  message: string;
}

const initialHistory: HistorySlice = {
  selected: null,
  status: "idle",
  code: "",
  clientId: "",
  committedAt: "",
  message: "",
};

export const historySlice = createSlice({
  name: "history",
  initialState: initialHistory,
  reducers: {
    /** The slider moved to `revision` (its text is on its way). */
    looked(state, action: PayloadAction<number>) {
      if (state.selected !== action.payload) {
        return { ...initialHistory, selected: action.payload, status: "loading" };
      }
      return state;
    },
    /** A revision's text; ignored unless it is still the one looked at. */
    loaded(state, action: PayloadAction<{ revision: number; code: string; clientId?: string; committedAt?: string }>) {
      const { revision, code, clientId = "", committedAt = "" } = action.payload;
      if (state.selected === revision) {
        return { ...state, status: "ready", code, clientId, committedAt, message: "" };
      }
      return state;
    },
    failed(state, action: PayloadAction<{ revision: number; message: string }>) {
      if (state.selected === action.payload.revision) {
        return { ...state, status: "failed", code: "", message: action.payload.message };
      }
      return state;
    },
    live() {
      return initialHistory;
    },
  },
});

export function makeStore() {
  return configureStore({
    reducer: {
      connection: connectionSlice.reducer,
      participants: participantsSlice.reducer,
      room: roomSlice.reducer,
      history: historySlice.reducer,
    },
  });
}

export type AppStore = ReturnType<typeof makeStore>;
export type RootState = ReturnType<AppStore["getState"]>;
export type AppDispatch = AppStore["dispatch"];
