/**
 * Three editors bound to real `DuetClient`s, typing at random into one room of the client
 * library's in-memory server (its test double, with random delays, batched frames and dropped
 * connections): every editor ends with the server's text, and nothing a client reported was
 * sent back as an edit of its own.
 */

import { DuetClient } from "@duet/client";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
// The client library's in-memory duet.v1 server, shared rather than copied.
import { FakeServer } from "../../client/test/fake-server.js";
import { randomChanges, seeded, StateEditor } from "./helpers.js";

beforeEach(() => {
  // Timers only: the binding's follow-ups are microtasks, which run as they do in a browser.
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
});

afterEach(() => {
  vi.useRealTimers();
});

it("converges through random edits, delays, batches and drops, with no echo", async () => {
  let drops = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const random = seeded(seed);
    const server = new FakeServer({
      code: "def main():\n    print(\"😀\")\n",
      maxDelayMs: 1 + Math.floor(random() * 30),
      batchWindowMs: Math.floor(random() * 10),
      random,
    });
    /** How often each client was handed an edit. */
    const calls = new Map<string, number>();
    const people = ["ada", "bob", "cy"].map((clientId) => {
      const client = new DuetClient({
        url: "ws://duet.test",
        roomId: "room-1",
        clientId,
        name: clientId,
        WebSocket: server.WebSocket,
        fetch: null,
        network: null,
        random,
      });
      const applyLocal = client.applyLocal.bind(client);
      client.applyLocal = (operation, selection) => {
        calls.set(clientId, (calls.get(clientId) ?? 0) + 1);
        applyLocal(operation, selection);
      };
      const editor = new StateEditor(client, "");
      client.connect();
      return { clientId, client, editor };
    });
    await vi.advanceTimersByTimeAsync(200);
    for (let step = 0; step < 80; step++) {
      const person = people[Math.floor(random() * people.length)]!;
      const action = random();
      if (action < 0.6 && person.client.revision !== undefined) {
        const changes = randomChanges(random, person.editor.text);
        person.editor.dispatch({ changes, userEvent: "input.type" });
      } else if (action < 0.75) {
        const position = Math.floor(random() * (person.editor.text.length + 1));
        person.editor.dispatch({ selection: { anchor: position } });
      } else if (action < 0.78 && person.client.status.state === "connected") {
        const socket = [...server.sockets].reverse().find((candidate) => candidate.member?.clientId === person.clientId);
        socket?.drop();
        drops++;
      }
      await vi.advanceTimersByTimeAsync(Math.floor(random() * 12));
    }
    await vi.advanceTimersByTimeAsync(60_000);
    const where = `seed ${seed}`;
    for (const { clientId, client, editor } of people) {
      expect(client.status.state, where).toBe("connected");
      expect(client.isSynchronized, where).toBe(true);
      expect(editor.text, where).toBe(server.text);
      // The client was handed the editor's own edits and nothing else.
      expect(calls.get(clientId) ?? 0, where).toBe(editor.localEdits);
    }
  }
  expect(drops).toBeGreaterThan(5);
});
