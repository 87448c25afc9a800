import { describe, expect, it } from "vitest";
import { connectionLabel, connectionSlice, makeStore, participantsSlice, roomSlice } from "../src/store";

describe("connection", () => {
  it("says connected only when it is", () => {
    const store = makeStore();
    const { statusChanged } = connectionSlice.actions;
    const label = () => connectionLabel(store.getState().connection);
    store.dispatch(statusChanged({ state: "connecting" }));
    expect(label()).not.toMatch(/connected/i);
    store.dispatch(statusChanged({ state: "connected" }));
    expect(label()).toBe("connected");
    store.dispatch(statusChanged({ state: "reconnecting", attempt: 1, delayMs: 500, pendingEdits: 3 }));
    expect(label()).toBe("reconnecting (3 pending)");
    store.dispatch(statusChanged({ state: "offline", pendingEdits: 0 }));
    expect(label()).toBe("offline");
    store.dispatch(statusChanged({ state: "closed", code: 4404, reason: "the room was deleted", pendingEdits: 0 }));
    expect(label()).toBe("closed");
    expect(label()).not.toMatch(/connected/i);
    expect(store.getState().connection.reason).toBe("the room was deleted");
  });
});

describe("participants", () => {
  it("keeps the room's people from welcome, joins and leaves", () => {
    const store = makeStore();
    const { welcomed, joined, left } = participantsSlice.actions;
    store.dispatch(welcomed({ self: { clientId: "me", name: "Ada" }, others: [{ clientId: "b", name: "Bob" }] }));
    expect(store.getState().participants.ids).toEqual(["me", "b"]);
    expect(store.getState().participants.byId["me"]?.self).toBe(true);
    store.dispatch(joined({ clientId: "c", name: "Cy" }));
    store.dispatch(joined({ clientId: "b", name: "Bobby" }));
    expect(store.getState().participants.ids).toEqual(["me", "b", "c"]);
    expect(store.getState().participants.byId["b"]?.name).toBe("Bobby");
    store.dispatch(left({ clientId: "b" }));
    store.dispatch(left({ clientId: "me" }));
    expect(store.getState().participants.ids).toEqual(["me", "c"]);
  });
});

describe("room", () => {
  it("becomes read-only and never goes back on its own", () => {
    const store = makeStore();
    store.dispatch(roomSlice.actions.opened({ roomId: "r1", readOnly: false }));
    store.dispatch(roomSlice.actions.revisionChanged(5));
    store.dispatch(roomSlice.actions.revisionChanged(3));
    expect(store.getState().room.revision).toBe(5);
    store.dispatch(roomSlice.actions.madeReadOnly("view only"));
    expect(store.getState().room.readOnly).toBe(true);
  });
});
