/**
 * DuetClient against FakeServer on fake timers: connecting, editing, many clients converging,
 * resuming and resynchronising, batched frames, reconnection and close codes, refusals,
 * presence, completions.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import {
  type ConnectionStatus,
  DuetClient,
  type DuetClientOptions,
  type DuetEvents,
  type Participant,
  type Selection,
  serverUrl,
  TextOperation,
} from "../src/index.js";
import { FakeServer, type FakeSocket } from "./fake-server.js";
import { randomEdit, randomInt, seeded } from "./random.js";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/**
 * An editor as a binding drives one: it holds its own text, changed only by the user's edits
 * (handed to the client) and by what the client reports. It must always hold the client's text.
 */
class Editor {
  text = "";
  readonly events: { [K in keyof DuetEvents]?: DuetEvents[K][] } = {};

  constructor(readonly client: DuetClient) {
    for (const event of [
      "status",
      "welcome",
      "remoteChange",
      "presence",
      "joined",
      "left",
      "language",
      "error",
      "suggestion",
      "ack",
    ] as const) {
      client.on(event, (payload) => {
        ((this.events[event] ??= []) as unknown[]).push(payload);
      });
    }
    client.on("welcome", (welcome) => {
      if (welcome.change !== undefined) {
        this.text = welcome.change.apply(this.text);
      } else if (!welcome.resumed) {
        this.text = welcome.text;
      }
      expect(this.text).toBe(welcome.text);
    });
    client.on("remoteChange", (change) => {
      this.text = change.operation.apply(this.text);
    });
  }

  /** The user typed: the editor changes, then tells the client. */
  edit(operation: TextOperation, selection?: Selection): void {
    this.text = operation.apply(this.text);
    this.client.applyLocal(operation, selection);
  }

  type(position: number, text: string): void {
    this.edit(TextOperation.replace(this.text.length, position, 0, text));
  }

  get statuses(): ConnectionStatus["state"][] {
    return (this.events.status ?? []).map((status) => status.state);
  }

  get lastStatus(): ConnectionStatus | undefined {
    return this.events.status?.at(-1);
  }
}

function join(server: FakeServer, options: Partial<DuetClientOptions> = {}): Editor {
  const client = new DuetClient({
    url: "ws://duet.test",
    roomId: "room-1",
    WebSocket: server.WebSocket,
    fetch: null,
    network: null,
    random: () => 0,
    ...options,
  });
  const editor = new Editor(client);
  client.connect();
  return editor;
}

/** The socket a client is connected through now. */
function socketOf(server: FakeServer, editor: Editor): FakeSocket {
  const socket = [...server.sockets].reverse().find((candidate) => candidate.member?.clientId === editor.client.clientId);
  if (socket === undefined) {
    throw new Error(`no socket for ${editor.client.clientId}`);
  }
  return socket;
}

/** Lets every timer due in the next `ms` fire (messages, retries, presence). */
function wait(ms = 1_000): void {
  vi.advanceTimersByTime(ms);
}

describe("connecting", () => {
  it("asks for duet.v1 with the query the server reads, and reports the welcome", () => {
    const server = new FakeServer({ code: "a😀b", language: "rust" });
    const alice = join(server, { name: "Ada Lovelace", clientId: "ada", token: "t0k/en" });
    expect(alice.client.status.state).toBe("connecting");
    wait();
    const socket = server.sockets[0]!;
    expect(socket.url).toBe("ws://duet.test/ws/room-1?name=Ada+Lovelace&clientId=ada&batch=1&token=t0k%2Fen");
    expect(socket.protocols).toEqual(["duet.v1"]);
    expect(alice.statuses).toEqual(["connecting", "connected"]);
    expect(alice.events.welcome).toEqual([
      { clientId: "ada", revision: 0, language: "rust", text: "a😀b", participants: [], resumed: false },
    ]);
    expect(alice.client.text).toBe("a😀b");
    expect(alice.client.text.length).toBe(4);
  });

  it("can leave batching off, and the server then sends one message a frame", () => {
    const server = new FakeServer();
    const alice = join(server, { batch: false });
    wait();
    expect(server.sockets[0]!.url).not.toContain("batch");
    server.together(() => {
      server.commitFromOutside("plain", TextOperation.fromJSON(["x"]));
      server.commitFromOutside("plain", TextOperation.fromJSON([1, "y"]));
    });
    wait();
    expect(server.sockets[0]!.frames.slice(1).every((frame) => frame.startsWith("{"))).toBe(true);
    expect(alice.text).toBe("xy");
  });

  it("takes the server as ws, wss, http or https, keeping a path prefix", () => {
    expect(serverUrl("http://127.0.0.1:8000/", "ws")).toBe("ws://127.0.0.1:8000");
    expect(serverUrl("https://example.com/duet", "ws")).toBe("wss://example.com/duet");
    expect(serverUrl("wss://example.com", "http")).toBe("https://example.com");
    expect(serverUrl("WS://example.com", "ws")).toBe("ws://example.com");
    expect(() => serverUrl("example.com", "ws")).toThrow();
  });

  it("reconnects with the latest token", () => {
    const server = new FakeServer();
    const alice = join(server, { token: "first" });
    wait();
    alice.client.setToken("second");
    socketOf(server, alice).drop();
    wait();
    expect(server.sockets.map((socket) => new URL(socket.url).searchParams.get("token"))).toEqual(["first", "second"]);
  });

  it("refuses edits before the first welcome", () => {
    const server = new FakeServer();
    const alice = join(server);
    expect(() => alice.client.applyLocal(TextOperation.fromJSON(["x"]))).toThrow(/before the first welcome/);
  });
});

describe("editing", () => {
  it("keeps one op in flight and composes the edits made meanwhile into the next", () => {
    const server = new FakeServer({ code: "ab", maxDelayMs: 10, random: () => 0.5 });
    const alice = join(server, { clientId: "alice" });
    wait();
    alice.type(1, "X");
    alice.type(2, "Y");
    alice.type(3, "Z");
    expect(alice.client.pendingEdits).toBe(3);
    wait();
    expect(server.received.map((entry) => entry.text)).toEqual([
      '{"type":"op","revision":0,"seq":1,"ops":[1,"X",1]}',
      '{"type":"op","revision":1,"seq":2,"ops":[2,"YZ",1]}',
    ]);
    expect(server.text).toBe("aXYZb");
    expect(alice.client.isSynchronized).toBe(true);
    expect(alice.events.ack?.map((ack) => [ack.seq, ack.revision, ack.pendingEdits])).toEqual([
      [1, 1, 2],
      [2, 2, 0],
    ]);
  });

  it("plays docs/PROTOCOL.md's exchange: concurrent edits meet as the server orders them", () => {
    const server = new FakeServer({ code: "ab", maxDelayMs: 10, random: () => 0.5 });
    const alice = join(server, { clientId: "alice", name: "Alice" });
    const bob = join(server, { clientId: "bob", name: "Bob" });
    wait();
    alice.type(1, "😀");
    bob.type(2, "!");
    wait();
    expect(server.text).toBe("a😀b!");
    expect([alice.text, bob.text, alice.client.text, bob.client.text]).toEqual(["a😀b!", "a😀b!", "a😀b!", "a😀b!"]);
    expect(alice.events.remoteChange?.map((change) => [change.clientId, change.revision, change.operation.toJSON()])).toEqual([
      ["bob", 2, [4, "!"]],
    ]);
    expect(alice.events.joined).toEqual([{ clientId: "bob", name: "Bob" }]);
  });

  it("refuses an edit that does not fit the text, or that inserts what a room cannot hold", () => {
    const server = new FakeServer({ code: "a😀b" });
    const alice = join(server);
    wait();
    expect(() => alice.client.applyLocal(TextOperation.fromJSON([3]))).toThrow(/4/);
    expect(() => alice.client.applyLocal(TextOperation.fromJSON([2, "x", 2]))).toThrow(/surrogate pair/);
    expect(() => alice.client.applyLocal(TextOperation.fromJSON(["\ud83d", 4]))).toThrow(/half a surrogate pair/);
    expect(() => alice.client.applyLocal(TextOperation.fromJSON(["\0", 4]))).toThrow(/NUL/);
    expect(alice.client.text).toBe("a😀b");
    expect(alice.client.pendingEdits).toBe(0);
  });
});

describe("many clients", () => {
  it("converge on the server's text with random delays, drops, batches and resyncs", () => {
    // What the runs went through, to be sure they exercise what they claim to.
    let drops = 0;
    let batchedFrames = 0;
    let resets = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const random = seeded(seed);
      const server = new FakeServer({
        code: "fn main() {\n    println!(\"😀\");\n}\n",
        maxDelayMs: 1 + randomInt(random, 40),
        batchWindowMs: randomInt(random, 20),
        random,
        // Some rooms keep so little history that reconnecting clients must start again from the text.
        historyLimit: seed % 3 === 0 ? 3 : 1000,
      });
      const editors = ["a", "b", "c"].map((name, index) =>
        join(server, { name, clientId: name, batch: index !== 1, random }),
      );
      wait(100);
      for (let step = 0; step < 120; step++) {
        const editor = editors[randomInt(random, editors.length)]!;
        const action = random();
        if (action < 0.45 && editor.client.revision !== undefined) {
          editor.edit(randomEdit(random, editor.text));
        } else if (action < 0.55) {
          const position = randomInt(random, editor.text.length + 1);
          editor.client.setSelection({ anchor: position, head: position });
        } else if (action < 0.58 && editor.client.status.state === "connected") {
          socketOf(server, editor).drop();
          drops++;
        }
        vi.advanceTimersByTime(randomInt(random, 15));
      }
      wait(60_000);
      const where = `seed ${seed}`;
      batchedFrames += server.sockets.reduce((sum, socket) => sum + socket.frames.filter((frame) => frame.startsWith("[")).length, 0);
      resets += editors.reduce((sum, editor) => sum + (editor.events.welcome ?? []).filter((welcome) => welcome.change).length, 0);
      for (const editor of editors) {
        expect(editor.client.status.state, where).toBe("connected");
        expect(editor.client.isSynchronized, where).toBe(true);
        expect(editor.client.text, where).toBe(server.text);
        expect(editor.text, where).toBe(server.text);
        for (const participant of editor.client.participants.values()) {
          if (participant.selection !== undefined) {
            expect(participant.selection.head, where).toBeLessThanOrEqual(server.text.length);
          }
        }
        // In rooms that keep little history an edit may arrive after its base was forgotten:
        // the client then starts again from the text, and that is the only refusal.
        for (const error of editor.events.error ?? []) {
          expect(error.code, where).toBe("resync_required");
        }
      }
    }
    expect(drops).toBeGreaterThan(50);
    expect(batchedFrames).toBeGreaterThan(100);
    expect(resets).toBeGreaterThan(10);
  });
});

describe("resuming", () => {
  /** Alice and Bob in a room holding "ab", messages taking 5 ms each way. */
  function room(historyLimit = 1000) {
    const server = new FakeServer({ code: "ab", maxDelayMs: 10, random: () => 0.5, historyLimit });
    const alice = join(server, { clientId: "alice" });
    const bob = join(server, { clientId: "bob" });
    wait();
    return { server, alice, bob };
  }

  it("resends the op in flight with the same seq and base after a drop, and gets it in once", () => {
    const { server, alice, bob } = room();
    alice.type(1, "X");
    // The connection drops before the op arrives; Bob edits meanwhile.
    socketOf(server, alice).drop();
    bob.type(2, "!");
    wait();
    expect(alice.lastStatus).toEqual({ state: "connected" });
    const reconnect = server.sockets.at(-1)!;
    expect(reconnect.url).toMatch(/clientId=alice&resumeToken=token-alice-\d+&since=0&batch=1/);
    expect(alice.events.status?.map((status) => status.state)).toContain("reconnecting");
    expect(alice.events.status?.find((status) => status.state === "reconnecting")).toEqual({
      state: "reconnecting",
      attempt: 1,
      delayMs: 500,
      pendingEdits: 1,
    });
    // The resend is the same message; the server moved it past Bob's edit.
    expect(server.sentBy("alice")).toEqual([{ type: "op", revision: 0, seq: 1, ops: [1, "X", 1] }]);
    expect(server.text).toBe("aXb!");
    expect([alice.text, bob.text]).toEqual(["aXb!", "aXb!"]);
    const welcome = alice.events.welcome?.at(-1);
    expect(welcome?.resumed).toBe(true);
  });

  it("takes its own op in the welcome as the ack it missed, and sends nothing twice", () => {
    const { server, alice, bob } = room();
    alice.type(1, "X");
    // The op arrives and is committed (at 5 ms), but the connection drops before the ack comes back.
    vi.advanceTimersByTime(7);
    expect(server.text).toBe("aXb");
    socketOf(server, alice).drop();
    alice.type(2, "Y");
    wait();
    expect(server.sentBy("alice").map((frame) => [frame["seq"], frame["revision"], frame["ops"]])).toEqual([
      [1, 0, [1, "X", 1]],
      [2, 1, [2, "Y", 1]],
    ]);
    expect([server.text, alice.text, bob.text]).toEqual(["aXYb", "aXYb", "aXYb"]);
    expect(alice.events.ack?.map((ack) => ack.seq)).toEqual([1, 2]);
  });

  it("takes its own edits under the id it had as its own when a resume gives it a new id", () => {
    const { server, alice, bob } = room(2);
    const before = alice.client.clientId!;
    const socket = socketOf(server, alice);
    socket.lag = 5_000; // the ack of her edit is on its way when the connection drops
    alice.type(1, "X");
    vi.advanceTimersByTime(5_100); // the edit reached the server and was committed
    expect(server.text).toBe("aXb");
    server.forgetResumeToken(before);
    socket.drop();
    bob.type(3, "!");
    wait(5_000);
    // A new id, with the operations missed since her revision: her own edit among them.
    expect(alice.client.clientId).not.toBe(before);
    expect(alice.events.welcome?.at(-1)?.resumed).toBe(true);
    expect(server.text).toBe("aXb!");
    expect([alice.text, alice.client.text, bob.text]).toEqual(["aXb!", "aXb!", "aXb!"]);
    expect(alice.client.pendingEdits).toBe(0);
  });

  it("takes a second ack of an edit (a resend that crossed its ack) in its stride", () => {
    const { server, alice } = room();
    alice.type(1, "X");
    vi.advanceTimersByTime(7);
    // The same op again, as a resend: the server answers with an ack of its first revision.
    const socket = socketOf(server, alice);
    socket.send('{"type":"op","revision":0,"seq":1,"ops":[1,"X",1]}');
    wait();
    const acks = socket.frames.filter((frame) => frame.includes('"ack"'));
    expect(acks).toEqual(['{"type":"ack","seq":1,"revision":1}', '{"type":"ack","seq":1,"revision":1}']);
    expect([server.text, alice.text]).toEqual(["aXb", "aXb"]);
    expect(alice.events.error ?? []).toEqual([]);
    expect(alice.statuses).toEqual(["connecting", "connected"]);
  });

  it("takes its own edit, committed through a connection it replaced, as the ack", () => {
    const { server, alice, bob } = room();
    socketOf(server, alice).uplinkLag = 100;
    alice.type(1, "X");
    server.receiveFromGone("alice", '{"type":"op","revision":0,"seq":1,"ops":[1,"X",1]}');
    wait();
    expect([server.text, alice.text, bob.text]).toEqual(["aXb", "aXb", "aXb"]);
    expect(alice.events.remoteChange ?? []).toEqual([]);
    expect(alice.events.ack?.map((ack) => [ack.seq, ack.revision])).toEqual([[1, 1]]);
    expect(alice.events.error ?? []).toEqual([]);
  });

  describe("when the server no longer holds what was missed", () => {
    /** Alice offline while Bob makes more edits than the server keeps. */
    function missTooMuch(server: FakeServer, alice: Editor, bob: Editor) {
      for (let index = 0; index < 5; index++) {
        bob.type(bob.text.length, String(index));
        wait(20);
      }
      expect(server.oldestRevision).toBeGreaterThan(alice.client.revision!);
    }

    it("merges local edits made offline into the server's text and sends them as a code message", () => {
      const { server, alice, bob } = room(2);
      const socket = socketOf(server, alice);
      socket.lag = 10_000; // Alice's network is gone; she does not know yet.
      missTooMuch(server, alice, bob);
      socket.drop();
      alice.type(0, "hello ");
      wait(5_000);
      expect(server.text).toBe("hello ab01234");
      expect([alice.text, bob.text, alice.client.text]).toEqual([server.text, server.text, server.text]);
      const welcome = alice.events.welcome?.at(-1);
      expect(welcome?.resumed).toBe(false);
      expect(welcome?.text).toBe("hello ab01234");
      expect(welcome?.change?.toJSON()).toEqual([8, "01234"]);
      // Seq 1 went to the edit while it waited offline; the server never saw it.
      expect(server.sentBy("alice")).toEqual([{ type: "code", revision: 5, seq: 2, code: "hello ab01234" }]);
      expect(server.history.at(-1)?.ops.toJSON()).toEqual(["hello ", 7]);
    });

    it("sends them as an op when the server's diff of the text could differ from the client's", () => {
      const { server, alice, bob } = room(2);
      const socket = socketOf(server, alice);
      socket.lag = 10_000;
      missTooMuch(server, alice, bob);
      socket.drop();
      alice.type(0, "<");
      alice.type(3, ">");
      wait(5_000);
      // Alice's ">" and Bob's digits went at the same place: hers first, as the server orders
      // an edit it receives later.
      expect([server.text, alice.text, bob.text]).toEqual(["<ab>01234", "<ab>01234", "<ab>01234"]);
      expect(server.sentBy("alice")).toEqual([{ type: "op", revision: 5, seq: 2, ops: ["<", 2, ">", 5] }]);
    });

    it("learns that its op in flight was committed (its resend is acknowledged) and does not apply it twice", () => {
      const { server, alice, bob } = room(2);
      alice.edit(TextOperation.fromJSON([1, "X", 1]), { anchor: 2, head: 2 });
      const socket = socketOf(server, alice);
      socket.lag = 10_000; // the op is on its way; anything after it will be lost
      vi.advanceTimersByTime(7);
      expect(server.text).toBe("aXb");
      missTooMuch(server, alice, bob);
      socket.drop();
      alice.type(0, "<");
      wait(5_000);
      const sent = server.sentBy("alice");
      const first = '{"type":"op","revision":0,"seq":1,"ops":[1,"X",1],"selection":{"anchor":2,"head":2}}';
      const alices = server.received.filter((entry) => entry.clientId === "alice").map((entry) => entry.text);
      expect(alices.slice(0, 2)).toEqual([first, first]);
      expect(sent[2]).toEqual({ type: "code", revision: 6, seq: 2, code: "<aXb01234" });
      expect([server.text, alice.text, bob.text]).toEqual(["<aXb01234", "<aXb01234", "<aXb01234"]);
      expect(alice.events.error ?? []).toEqual([]);
    });

    it("takes its op in flight, committed only as it is sent again, as an edit the welcome lacks", () => {
      const { server, alice, bob } = room(2);
      const socket = socketOf(server, alice);
      socket.uplinkLag = 10_000; // Alice's op is on its way when she has to start again
      alice.type(1, "X");
      bob.type(2, "!");
      wait(100);
      // A message that does not fit Alice's state: she starts again from the server's text,
      // and asks about her op by sending it again; the server commits it only then.
      socket.deliver(JSON.stringify({ type: "op", revision: 99, clientId: "zed", ops: [3] }));
      wait(15_000);
      expect(server.text).toBe("aXb!");
      expect([alice.text, alice.client.text, bob.text]).toEqual(["aXb!", "aXb!", "aXb!"]);
      expect(alice.client.revision).toBe(server.revision);
      // Later edits still land where she sees them.
      alice.type(4, "?");
      wait(1_000);
      expect([server.text, alice.text, bob.text]).toEqual(["aXb!?", "aXb!?", "aXb!?"]);
    });

    it("learns that its op in flight was not committed (its resend is refused) and merges it", () => {
      const { server, alice, bob } = room(2);
      alice.type(1, "X");
      socketOf(server, alice).drop(); // the op never arrives
      const reconnecting = alice.client;
      expect(reconnecting.status.state).toBe("reconnecting");
      server.down = true;
      missTooMuch(server, alice, bob);
      server.down = false;
      wait(30_000);
      const sent = server.sentBy("alice");
      expect(sent[0]).toEqual({ type: "op", revision: 0, seq: 1, ops: [1, "X", 1] });
      expect(sent[1]).toEqual({ type: "code", revision: 5, seq: 2, code: "aXb01234" });
      expect([server.text, alice.text, bob.text]).toEqual(["aXb01234", "aXb01234", "aXb01234"]);
    });

    it("starts again from the server's text when an op's base fell out of the history", () => {
      const { server, alice, bob } = room(2);
      socketOf(server, alice).uplinkLag = 200; // Alice's op arrives late
      alice.type(2, "?");
      for (let index = 0; index < 4; index++) {
        bob.type(0, String(index));
        vi.advanceTimersByTime(20);
      }
      wait(5_000);
      expect(alice.events.error?.map((error) => [error.code, error.seq])).toEqual([["resync_required", 1]]);
      const reconnect = server.sockets.at(-1)!;
      expect(reconnect.url).not.toContain("since");
      expect(server.text).toBe("3210ab?");
      expect([alice.text, bob.text]).toEqual([server.text, server.text]);
    });
  });
});

describe("batched frames", () => {
  it("are read in order, whatever they gather", () => {
    const server = new FakeServer({ code: "" });
    const alice = join(server, { clientId: "alice" });
    const bob = join(server, { clientId: "bob", name: "Bob" });
    wait();
    server.together(() => {
      server.commitFromOutside("carol", TextOperation.fromJSON(["abc"]));
      server.commitFromOutside("carol", TextOperation.fromJSON([3, "d"]));
      server.left(socketOf(server, bob).member!);
    });
    wait();
    const frame = socketOf(server, alice).frames.at(-1)!;
    expect(JSON.parse(frame).map((message: { type: string }) => message.type)).toEqual(["op", "op", "left"]);
    expect(alice.text).toBe("abcd");
    expect(alice.events.left).toEqual([{ clientId: "bob" }]);
    expect(alice.client.revision).toBe(2);
  });
});

describe("reconnecting", () => {
  it("backs off exponentially up to a cap, and starts again after a success", () => {
    const server = new FakeServer();
    server.down = true;
    const alice = join(server, { random: () => 0 });
    const delays: number[] = [];
    alice.client.on("status", (status) => {
      if (status.state === "reconnecting") {
        delays.push(status.delayMs);
      }
    });
    // The first attempt fails 1 ms in (a fake timer made while ticking waits 1 ms).
    vi.advanceTimersByTime(1);
    expect(alice.lastStatus).toEqual({ state: "reconnecting", attempt: 1, delayMs: 500, pendingEdits: 0 });
    vi.advanceTimersByTime(499);
    expect(server.sockets).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(server.sockets).toHaveLength(2);
    vi.advanceTimersByTime(60_000);
    expect(delays.slice(0, 7)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 15_000, 15_000]);
    server.down = false;
    vi.advanceTimersByTime(15_000);
    expect(alice.client.status.state).toBe("connected");
    socketOf(server, alice).drop();
    expect(alice.lastStatus).toEqual({ state: "reconnecting", attempt: 1, delayMs: 500, pendingEdits: 0 });
  });

  it("spreads its attempts with jitter", () => {
    const server = new FakeServer();
    server.down = true;
    const random = seeded(9);
    const alice = join(server, { random, reconnect: { initialDelayMs: 1_000, maxDelayMs: 8_000, jitter: 0.5 } });
    vi.advanceTimersByTime(120_000);
    const delays = (alice.events.status ?? []).flatMap((status) => (status.state === "reconnecting" ? [status.delayMs] : []));
    const ceilings = [1_000, 2_000, 4_000, 8_000, 8_000, 8_000];
    ceilings.forEach((ceiling, index) => {
      expect(delays[index]).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delays[index]).toBeLessThanOrEqual(ceiling);
    });
    expect(new Set(delays.slice(3)).size).toBeGreaterThan(1);
  });

  it("reconnects after 1001, 1006, 1011 and 1013, and stops for good after 4404, 4409, 1008, 1003 and 1009", () => {
    for (const [code, reconnects] of [
      [1001, true],
      [1006, true],
      [1011, true],
      [1013, true],
      [4404, false],
      [4409, false],
      [1008, false],
      [1003, false],
      [1009, false],
    ] as const) {
      const server = new FakeServer({ code: "x" });
      const alice = join(server);
      wait();
      alice.type(1, "y");
      server.closeAll(code, code === 4404 ? "" : "because");
      wait(60_000);
      if (reconnects) {
        expect(alice.client.status.state, String(code)).toBe("connected");
        expect(server.sockets, String(code)).toHaveLength(2);
      } else {
        expect(alice.lastStatus, String(code)).toMatchObject({ state: "closed", code });
        expect(server.sockets, String(code)).toHaveLength(1);
      }
    }
    const server = new FakeServer();
    const alice = join(server);
    wait();
    server.closeAll(4404);
    wait();
    expect(alice.lastStatus).toEqual({ state: "closed", code: 4404, reason: "the room was deleted", pendingEdits: 0 });
  });

  it("stops for good when the upgrade is refused with 400, 401, 403 or 404, and retries after 429 or 503", () => {
    for (const [status, retries] of [
      [401, false],
      [403, false],
      [404, false],
      [400, false],
      [429, true],
      [503, true],
    ] as const) {
      const server = new FakeServer();
      server.refuseWith = status;
      const alice = join(server);
      wait(10_000);
      if (retries) {
        expect(alice.client.status.state, String(status)).toBe("reconnecting");
        expect(server.sockets.length, String(status)).toBeGreaterThan(2);
      } else {
        expect(alice.lastStatus, String(status)).toMatchObject({ state: "closed", code: status });
        expect(server.sockets, String(status)).toHaveLength(1);
      }
    }
  });

  it("tries again when the question why an upgrade failed goes unanswered", async () => {
    const server = new FakeServer();
    server.down = true;
    let asked = 0;
    const alice = join(server, {
      whyRefusedTimeoutMs: 2_000,
      fetch: () => {
        asked += 1;
        return new Promise(() => undefined); // a stalled network: never answered
      },
    });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(asked).toBeGreaterThan(3);
    expect(server.sockets.length).toBe(asked);
    expect(alice.lastStatus?.state).toBe("reconnecting");
    // Once the server is back, the next attempt gets in.
    server.down = false;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(alice.lastStatus?.state).toBe("connected");
  });

  it("asks the server over HTTP why an upgrade failed when the WebSocket does not say (browsers)", async () => {
    const server = new FakeServer();
    server.down = true;
    const answers = [
      { status: 503, body: { error: { code: "unavailable" } } },
      { status: 401, body: { error: { code: "unauthorized" } } },
    ];
    const asked: { url: string; headers: Record<string, string> }[] = [];
    const alice = join(server, {
      url: "wss://duet.example/base/",
      token: "secret",
      fetch: async (url, init) => {
        asked.push({ url, headers: init.headers });
        const answer = answers.shift()!;
        return { status: answer.status, json: async () => answer.body };
      },
    });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(asked).toEqual([
      { url: "https://duet.example/base/rooms/room-1", headers: { authorization: "Bearer secret" } },
      { url: "https://duet.example/base/rooms/room-1", headers: { authorization: "Bearer secret" } },
    ]);
    expect(alice.lastStatus).toEqual({ state: "closed", code: 401, reason: "unauthorized", pendingEdits: 0 });
  });

  it("waits for the network when the device is offline", () => {
    const server = new FakeServer();
    let online = true;
    let back: (() => void) | undefined;
    const alice = join(server, {
      network: {
        isOnline: () => online,
        whenOnline: (callback) => {
          back = callback;
          return () => (back = undefined);
        },
      },
    });
    wait();
    online = false;
    alice.type(0, "offline edit");
    socketOf(server, alice).drop();
    expect(alice.lastStatus).toEqual({ state: "offline", pendingEdits: 1 });
    wait(60_000);
    expect(server.sockets).toHaveLength(1);
    online = true;
    back!();
    wait();
    expect(alice.client.status.state).toBe("connected");
    expect(server.text).toBe("offline edit");
  });

  it("close() ends it for good", () => {
    const server = new FakeServer();
    const alice = join(server);
    wait();
    alice.client.close();
    wait(60_000);
    expect(alice.lastStatus).toEqual({ state: "closed", code: 1000, reason: "closed by the client", pendingEdits: 0 });
    expect(server.sockets).toHaveLength(1);
    expect(server.members.size).toBe(0);
    expect(() => alice.client.applyLocal(TextOperation.fromJSON([]))).toThrow(/closed/);
  });
});

describe("refusals", () => {
  it("sends an edit again, same seq, after the server could not store it", () => {
    const server = new FakeServer({ code: "ab" });
    const alice = join(server, { clientId: "alice" });
    wait();
    server.failNextEdits.push("unavailable");
    alice.type(0, "X");
    vi.advanceTimersByTime(999);
    expect(server.sentBy("alice")).toHaveLength(1);
    vi.advanceTimersByTime(10);
    expect(server.sentBy("alice").map((frame) => frame["seq"])).toEqual([1, 1]);
    expect(server.text).toBe("Xab");
    expect(alice.events.error?.map((error) => [error.code, error.seq])).toEqual([["unavailable", 1]]);
  });

  it("takes back a viewer's edit, keeping what was typed after it", () => {
    const server = new FakeServer({ code: "ab", maxDelayMs: 10, random: () => 0.5 });
    server.tokens.set("view", "viewer");
    const viewer = join(server, { clientId: "viewer", token: "view" });
    wait();
    viewer.type(0, "X");
    viewer.type(3, "Y");
    wait();
    expect(viewer.events.error?.map((error) => [error.code, error.seq])).toEqual([
      ["forbidden", 1],
      ["forbidden", 2],
    ]);
    expect(viewer.events.remoteChange?.map((change) => change.reverted)).toEqual([true, true]);
    expect([viewer.text, viewer.client.text, server.text]).toEqual(["ab", "ab", "ab"]);
    expect(viewer.client.isSynchronized).toBe(true);
  });
});

describe("presence", () => {
  it("shows others' selections in the local text, moved past unacknowledged edits", () => {
    const server = new FakeServer({ code: "abcd", maxDelayMs: 10, random: () => 0.5 });
    const alice = join(server, { clientId: "alice" });
    const bob = join(server, { clientId: "bob", name: "Bob" });
    wait();
    socketOf(server, alice).uplinkLag = 100; // Alice's edit stays unacknowledged for a while
    alice.type(0, "😀");
    bob.client.setSelection({ anchor: 1, head: 3 });
    vi.advanceTimersByTime(40);
    expect(alice.client.isSynchronized).toBe(false);
    const seen: Participant = { clientId: "bob", name: "Bob", selection: { anchor: 3, head: 5 } };
    expect(alice.events.presence).toEqual([seen]);
    expect(alice.client.participants.get("bob")).toEqual(seen);
    // Later changes move it: Bob types at its start.
    bob.type(1, "xy");
    wait();
    expect(alice.text).toBe("😀axybcd");
    expect(alice.client.participants.get("bob")?.selection).toEqual({ anchor: 5, head: 7 });
  });

  it("coalesces selections and sends them on the client's revision once its edits are acknowledged", () => {
    const server = new FakeServer({ code: "abcdef", maxDelayMs: 10, random: () => 0.5 });
    const alice = join(server, { clientId: "alice", presenceIntervalMs: 50 });
    wait();
    const presence = () => server.sentBy("alice").filter((frame) => frame["type"] === "presence");
    for (let position = 0; position < 5; position++) {
      alice.client.setSelection({ anchor: position, head: position });
      vi.advanceTimersByTime(10);
    }
    wait(100);
    expect(presence().map((frame) => frame["selection"])).toEqual([
      { anchor: 0, head: 0 },
      { anchor: 4, head: 4 },
    ]);
    // While an edit is in flight the selection waits for its ack.
    alice.edit(TextOperation.replace(6, 0, 0, "Z"));
    alice.client.setSelection({ anchor: 1, head: 1 });
    vi.advanceTimersByTime(8);
    expect(presence()).toHaveLength(2);
    wait(100);
    expect(presence().at(-1)).toEqual({ type: "presence", revision: 1, selection: { anchor: 1, head: 1 } });
    // A selection the others already infer is not sent again.
    alice.client.setSelection({ anchor: 1, head: 1 });
    wait(100);
    expect(presence()).toHaveLength(3);
  });

  it("sends a selection given with an edit along with it", () => {
    const server = new FakeServer({ code: "ab" });
    const alice = join(server, { clientId: "alice" });
    wait();
    alice.client.applyLocal(TextOperation.fromJSON([1, "X", 1]), { anchor: 2, head: 2 });
    wait();
    expect(server.sentBy("alice")[0]).toEqual({
      type: "op",
      revision: 0,
      seq: 1,
      ops: [1, "X", 1],
      selection: { anchor: 2, head: 2 },
    });
  });
});

describe("the rest of the protocol", () => {
  it("asks for completions by id, at the cursor as the server has the text, with a timeout", async () => {
    const server = new FakeServer({ code: "pri", maxDelayMs: 10, random: () => 0.5 });
    const alice = join(server, { clientId: "alice", completionTimeoutMs: 2_000 });
    wait();
    socketOf(server, alice).uplinkLag = 20;
    alice.type(0, "# ");
    const first = alice.client.requestCompletion(5);
    await vi.advanceTimersByTimeAsync(100);
    await expect(first).resolves.toEqual({ suggestion: "nt", alternatives: [] });
    const sent = server.sentBy("alice").filter((frame) => frame["type"] === "autocomplete");
    // The "# " was not acknowledged when the request went: the cursor is sent on revision 0.
    expect(sent).toEqual([{ type: "autocomplete", id: 1, revision: 0, cursorPosition: 3 }]);
    server.answerCompletions = false;
    const second = alice.client.requestCompletion(5);
    const failed = expect(second).rejects.toThrow(/no completion within 2000 ms/);
    await vi.advanceTimersByTimeAsync(2_000);
    await failed;
  });

  it("changes the language for everyone", () => {
    const server = new FakeServer();
    const alice = join(server);
    const bob = join(server);
    wait();
    alice.client.setLanguage("rust");
    wait();
    expect(alice.events.language).toEqual([{ language: "rust" }]);
    expect(bob.events.language).toEqual([{ language: "rust" }]);
    expect(bob.client.language).toBe("rust");
  });
});
