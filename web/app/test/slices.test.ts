/**
 * The store's slices as the room page drives them: the connection's states and what the page
 * says of each, the people in the room, the room's revision and read-only state, and the
 * history slider's choice.
 */

import { describe, expect, it } from "vitest";
import {
  closedReason,
  connectionLabel,
  connectionSlice,
  historySlice,
  makeStore,
  participantsSlice,
  roomSlice,
} from "../src/store";

describe("connection", () => {
  const { statusChanged, pendingChanged } = connectionSlice.actions;

  it("goes through the client's states and says connected only when it is", () => {
    const store = makeStore();
    const label = () => connectionLabel(store.getState().connection);
    expect(label()).toBe("not started");
    store.dispatch(statusChanged({ state: "connecting" }));
    expect(label()).toBe("connecting…");
    store.dispatch(statusChanged({ state: "connected" }));
    expect(label()).toBe("connected");
    store.dispatch(statusChanged({ state: "reconnecting", attempt: 1, delayMs: 500, pendingEdits: 3 }));
    expect(label()).toBe("reconnecting, 3 edits pending");
    store.dispatch(pendingChanged(4));
    expect(label()).toBe("reconnecting, 4 edits pending");
    store.dispatch(statusChanged({ state: "offline", pendingEdits: 1 }));
    expect(label()).toBe("offline, 1 edit pending");
    store.dispatch(statusChanged({ state: "offline", pendingEdits: 0 }));
    expect(label()).toBe("offline");
    store.dispatch(statusChanged({ state: "connected" }));
    expect(label()).toBe("connected");
    store.dispatch(statusChanged({ state: "closed", code: 4404, reason: "the room was deleted", pendingEdits: 0 }));
    expect(label()).toBe("closed: the room was deleted");
    expect(store.getState().connection).toMatchObject({ state: "closed", code: 4404 });
  });

  it("never says connected in any other state", () => {
    const states = [
      { state: "idle" as const, pendingEdits: 0, code: 0, reason: "" },
      { state: "connecting" as const, pendingEdits: 0, code: 0, reason: "" },
      { state: "reconnecting" as const, pendingEdits: 2, code: 0, reason: "" },
      { state: "offline" as const, pendingEdits: 2, code: 0, reason: "" },
      { state: "closed" as const, pendingEdits: 0, code: 1000, reason: "closed by the client" },
      { state: "closed" as const, pendingEdits: 0, code: 4409, reason: "replaced by a newer connection" },
      { state: "closed" as const, pendingEdits: 0, code: 401, reason: "unauthorized" },
    ];
    for (const connection of states) {
      expect(connectionLabel(connection)).not.toMatch(/connected/i);
    }
  });

  it("keeps the pending count across a reconnection until an acknowledgement says otherwise", () => {
    const store = makeStore();
    store.dispatch(statusChanged({ state: "reconnecting", attempt: 2, delayMs: 1000, pendingEdits: 5 }));
    store.dispatch(statusChanged({ state: "connected" }));
    expect(store.getState().connection.pendingEdits).toBe(5);
    store.dispatch(pendingChanged(0));
    expect(store.getState().connection.pendingEdits).toBe(0);
  });

  it("explains why a connection closed for good", () => {
    expect(closedReason(404, "room_not_found")).toBe("there is no such room");
    expect(closedReason(401, "unauthorized")).toMatch(/token/);
    expect(closedReason(4404, "")).toBe("the room was deleted");
    expect(closedReason(4409, "replaced by a newer connection")).toMatch(/another tab/);
    expect(closedReason(1008, "too many bad messages")).toBe("too many bad messages");
    expect(closedReason(1003, "")).toBe("code 1003");
  });
});

describe("participants", () => {
  const { welcomed, joined, left, cleared } = participantsSlice.actions;

  it("keeps the room's people from a welcome, joins and leaves, this page first", () => {
    const store = makeStore();
    const people = () => store.getState().participants;
    store.dispatch(welcomed({ self: { clientId: "me", name: "Ada" }, others: [{ clientId: "b", name: "Bob" }] }));
    expect(people().ids).toEqual(["me", "b"]);
    expect(people().byId["me"]).toEqual({ clientId: "me", name: "Ada", self: true });
    store.dispatch(joined({ clientId: "c", name: "Cy" }));
    store.dispatch(joined({ clientId: "b", name: "Bobby" }));
    expect(people().ids).toEqual(["me", "b", "c"]);
    expect(people().byId["b"]?.name).toBe("Bobby");
    store.dispatch(left({ clientId: "b" }));
    expect(people().ids).toEqual(["me", "c"]);
  });

  it("never drops or renames this page from others' messages", () => {
    const store = makeStore();
    store.dispatch(welcomed({ self: { clientId: "me", name: "Ada" }, others: [] }));
    store.dispatch(joined({ clientId: "me", name: "Impostor" }));
    store.dispatch(left({ clientId: "me" }));
    expect(store.getState().participants.byId["me"]).toEqual({ clientId: "me", name: "Ada", self: true });
  });

  it("starts again at each welcome (a reconnection that could not resume) and when cleared", () => {
    const store = makeStore();
    store.dispatch(welcomed({ self: { clientId: "me", name: "Ada" }, others: [{ clientId: "b", name: "Bob" }] }));
    store.dispatch(welcomed({ self: { clientId: "me2", name: "Ada" }, others: [{ clientId: "c", name: "Cy" }] }));
    expect(store.getState().participants.ids).toEqual(["me2", "c"]);
    store.dispatch(cleared());
    expect(store.getState().participants.ids).toEqual([]);
  });

  it("keeps people whose ids are the names of Object's own properties, and changes no object", () => {
    const store = makeStore();
    const people = () => store.getState().participants;
    const names = ["__proto__", "constructor", "toString", "hasOwnProperty"];
    store.dispatch(
      welcomed({ self: { clientId: "me", name: "Ada" }, others: [{ clientId: "__proto__", name: "Proto" }] }),
    );
    for (const clientId of names.slice(1)) {
      store.dispatch(joined({ clientId, name: `Named ${clientId}` }));
    }
    store.dispatch(joined({ clientId: "__proto__", name: "Renamed" }));
    expect(people().ids).toEqual(["me", ...names]);
    expect(people().byId["__proto__"]).toEqual({ clientId: "__proto__", name: "Renamed", self: false });
    expect(people().byId["constructor"]?.name).toBe("Named constructor");
    expect(({} as { name?: unknown }).name).toBeUndefined();
    for (const clientId of names) {
      store.dispatch(left({ clientId }));
    }
    expect(people().ids).toEqual(["me"]);
    expect(people().byId["constructor"]).toBeUndefined();
    expect(people().byId["__proto__"]).toBeUndefined();
  });

  it("lists someone once even when a welcome names them twice", () => {
    const store = makeStore();
    store.dispatch(welcomed({ self: { clientId: "me", name: "Ada" }, others: [{ clientId: "me", name: "Ada" }] }));
    expect(store.getState().participants.ids).toEqual(["me"]);
    expect(store.getState().participants.byId["me"]?.self).toBe(true);
  });
});

describe("room", () => {
  it("moves its revision forward only, but takes a welcome's as it is", () => {
    const store = makeStore();
    store.dispatch(roomSlice.actions.opened({ roomId: "r1", readOnly: false }));
    store.dispatch(roomSlice.actions.welcomed({ revision: 4, language: "rust" }));
    store.dispatch(roomSlice.actions.revisionSeen(6));
    store.dispatch(roomSlice.actions.revisionSeen(5));
    expect(store.getState().room).toMatchObject({ revision: 6, language: "rust" });
    store.dispatch(roomSlice.actions.welcomed({ revision: 2, language: "go" }));
    expect(store.getState().room).toMatchObject({ revision: 2, language: "go" });
  });

  it("becomes read-only and stays so until another room opens", () => {
    const store = makeStore();
    store.dispatch(roomSlice.actions.opened({ roomId: "r1", readOnly: false }));
    store.dispatch(roomSlice.actions.madeReadOnly("view only"));
    store.dispatch(roomSlice.actions.languageChanged("python"));
    expect(store.getState().room).toMatchObject({ readOnly: true, message: "view only" });
    store.dispatch(roomSlice.actions.opened({ roomId: "r2", readOnly: false }));
    expect(store.getState().room).toMatchObject({ roomId: "r2", readOnly: false, message: "", revision: 0 });
  });
});

describe("history", () => {
  const { looked, loaded, failed, live } = historySlice.actions;

  it("shows the text of the revision looked at, and ignores answers for others", () => {
    const store = makeStore();
    const history = () => store.getState().history;
    store.dispatch(looked(3));
    expect(history()).toMatchObject({ selected: 3, status: "loading" });
    store.dispatch(looked(4));
    store.dispatch(loaded({ revision: 3, code: "old" }));
    expect(history()).toMatchObject({ selected: 4, status: "loading", code: "" });
    store.dispatch(loaded({ revision: 4, code: "four", clientId: "b", committedAt: "2026-11-26T19:00:00Z" }));
    expect(history()).toMatchObject({ selected: 4, status: "ready", code: "four", clientId: "b" });
    store.dispatch(failed({ revision: 3, message: "late" }));
    expect(history().status).toBe("ready");
    store.dispatch(looked(1));
    store.dispatch(failed({ revision: 1, message: "Revision 1 is older than the server keeps." }));
    expect(history()).toMatchObject({ selected: 1, status: "failed", code: "" });
    store.dispatch(live());
    expect(history()).toMatchObject({ selected: null, status: "idle" });
  });

  it("keeps what it shows when the same revision is looked at again", () => {
    const store = makeStore();
    store.dispatch(looked(2));
    store.dispatch(loaded({ revision: 2, code: "two" }));
    store.dispatch(looked(2));
    expect(store.getState().history).toMatchObject({ status: "ready", code: "two" });
  });
});
