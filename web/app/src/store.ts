import { configureStore, createSlice, type PayloadAction } from "@reduxjs/toolkit";
import type { ConnectionStatus } from "@duet/client";

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "offline" | "closed";

export interface ConnectionSlice {
  state: ConnectionState;
  pendingEdits: number;
  /** Why the connection closed for good. */
  reason: string;
}

const initialConnection: ConnectionSlice = { state: "idle", pendingEdits: 0, reason: "" };

export const connectionSlice = createSlice({
  name: "connection",
  initialState: initialConnection,
  reducers: {
    statusChanged(_state, action: PayloadAction<ConnectionStatus>): ConnectionSlice {
      const status = action.payload;
      switch (status.state) {
        case "reconnecting":
        case "offline":
          return { state: status.state, pendingEdits: status.pendingEdits, reason: "" };
        case "closed":
          return { state: "closed", pendingEdits: status.pendingEdits, reason: status.reason };
        default:
          return { state: status.state, pendingEdits: 0, reason: "" };
      }
    },
    pendingChanged(state, action: PayloadAction<number>) {
      state.pendingEdits = action.payload;
    },
  },
});

/** What the page shows: never the word "connected" unless it is. */
export function connectionLabel(connection: ConnectionSlice): string {
  const pending = connection.pendingEdits > 0 ? ` (${connection.pendingEdits} pending)` : "";
  switch (connection.state) {
    case "connected":
      return "connected";
    case "reconnecting":
      return `reconnecting${pending}`;
    case "offline":
      return `offline${pending}`;
    case "closed":
      return "closed";
    case "connecting":
      return "connecting…";
    default:
      return "starting…";
  }
}

export interface Person {
  clientId: string;
  name: string;
  self: boolean;
}

export interface ParticipantsSlice {
  /** By client id, in the order they joined. */
  ids: string[];
  byId: Record<string, Person>;
}

const initialParticipants: ParticipantsSlice = { ids: [], byId: {} };

export const participantsSlice = createSlice({
  name: "participants",
  initialState: initialParticipants,
  reducers: {
    welcomed(_state, action: PayloadAction<{ self: { clientId: string; name: string }; others: { clientId: string; name: string }[] }>) {
      const { self, others } = action.payload;
      const next: ParticipantsSlice = { ids: [], byId: {} };
      for (const person of [{ ...self, self: true }, ...others.map((other) => ({ ...other, self: false }))]) {
        if (next.byId[person.clientId] === undefined) {
          next.ids.push(person.clientId);
        }
        next.byId[person.clientId] = { clientId: person.clientId, name: person.name, self: person.self };
      }
      return next;
    },
    joined(state, action: PayloadAction<{ clientId: string; name: string }>) {
      const { clientId, name } = action.payload;
      if (state.byId[clientId] === undefined) {
        state.ids.push(clientId);
      }
      state.byId[clientId] = { clientId, name, self: state.byId[clientId]?.self ?? false };
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
      return initialParticipants;
    },
  },
});

export interface RoomSlice {
  roomId: string;
  language: string;
  revision: number;
  readOnly: boolean;
  message: string;
}

const initialRoom: RoomSlice = { roomId: "", language: "plaintext", revision: 0, readOnly: false, message: "" };

export const roomSlice = createSlice({
  name: "room",
  initialState: initialRoom,
  reducers: {
    opened(_state, action: PayloadAction<{ roomId: string; readOnly: boolean }>) {
      return { ...initialRoom, ...action.payload };
    },
    languageChanged(state, action: PayloadAction<string>) {
      state.language = action.payload;
    },
    revisionChanged(state, action: PayloadAction<number>) {
      state.revision = Math.max(state.revision, action.payload);
    },
    revisionReset(state, action: PayloadAction<number>) {
      state.revision = action.payload;
    },
    madeReadOnly(state, action: PayloadAction<string>) {
      state.readOnly = true;
      state.message = action.payload;
    },
    messageShown(state, action: PayloadAction<string>) {
      state.message = action.payload;
    },
  },
});

export function makeStore() {
  return configureStore({
    reducer: {
      connection: connectionSlice.reducer,
      participants: participantsSlice.reducer,
      room: roomSlice.reducer,
    },
  });
}

export type AppStore = ReturnType<typeof makeStore>;
export type RootState = ReturnType<AppStore["getState"]>;
export type AppDispatch = AppStore["dispatch"];
