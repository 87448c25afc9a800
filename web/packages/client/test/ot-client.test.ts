/**
 * OtClient: duet_domain::Client's own cases, and clients converging around an in-memory ordering
 * server whatever the order messages arrive in.
 */

import { describe, expect, it } from "vitest";

import { ClientStateError, OtClient, type Outgoing, TextOperation } from "../src/index.js";
import { randomEdit, randomInt, seeded } from "./random.js";

const insert = (at: number, text: string, length: number) =>
  new TextOperation().retain(at).insert(text).retain(length - at);

describe("OtClient, as duet_domain::Client", () => {
  it("keeps one edit in flight and buffers the rest, sent as one after the ack", () => {
    const client = new OtClient(7, 0);
    const first = client.applyLocal(insert(0, "a", 0));
    expect(first?.seq).toBe(1);
    expect(first?.revision).toBe(7);
    expect(client.applyLocal(insert(1, "b", 1))).toBeUndefined();
    expect(client.applyLocal(insert(2, "c", 2))).toBeUndefined();
    expect(client.buffer?.toJSON()).toEqual([1, "bc"]);
    expect(client.unacknowledgedEdits).toBe(3);
    const second = client.acknowledge(1, 8);
    expect(second?.seq).toBe(2);
    expect(second?.revision).toBe(8);
    expect(second?.operation.toJSON()).toEqual([1, "bc"]);
    expect(client.acknowledge(2, 9)).toBeUndefined();
    expect(client.isSynchronized).toBe(true);
    expect(client.revision).toBe(9);
  });

  it("moves a remote operation past the edit in flight and then the buffer", () => {
    // The server's text is "abc"; locally "X" went before it (in flight) and "Y" after it
    // (buffered); someone deleted the "b".
    const client = new OtClient(0, 3);
    let text = "abc";
    for (const edit of [insert(0, "X", 3), insert(4, "Y", 4)]) {
      text = edit.apply(text);
      client.applyLocal(edit);
    }
    const local = client.applyRemote(1, TextOperation.fromJSON([1, -1, 1]));
    expect(local.apply(text)).toBe("XacY");
    expect(client.acknowledge(1, 2)?.operation.toJSON()).toEqual([3, "Y"]);
    expect(client.resend()?.revision).toBe(2);
  });

  it("refuses what does not fit, changing nothing", () => {
    const cases: [string, () => OtClient, (client: OtClient) => unknown, RegExp][] = [
      ["an ack with nothing in flight", () => new OtClient(3, 2), (c) => c.acknowledge(1, 4), /in flight is none/],
      [
        "an ack of another seq",
        () => awaiting(),
        (c) => c.acknowledge(2, 4),
        /acknowledgement of seq 2, but the operation in flight is 1/,
      ],
      ["an ack skipping a revision", () => awaiting(), (c) => c.acknowledge(1, 5), /revision 5 does not follow revision 3/],
      [
        "an operation from the past",
        () => buffered(),
        (c) => c.applyRemote(3, insert(0, "x", 2)),
        /revision 3 does not follow revision 3/,
      ],
      ["a local edit on another text", () => buffered(), (c) => c.applyLocal(insert(0, "x", 9)), /applies to a text of 9/],
      [
        "a remote operation on another text",
        () => buffered(),
        (c) => c.applyRemote(4, insert(0, "x", 9)),
        /server's text has 2/,
      ],
      [
        "an own operation in a welcome, with nothing in flight",
        () => new OtClient(3, 2),
        (c) => c.catchUp(4, true, new TextOperation()),
        /nothing is in flight/,
      ],
      [
        "no seq left",
        () => new OtClient(3, 2, Number.MAX_SAFE_INTEGER),
        (c) => c.applyLocal(insert(0, "x", 2)),
        /no sequence number is left/,
      ],
    ];
    for (const [what, make, attempt, message] of cases) {
      const client = make();
      const before = JSON.stringify(client);
      expect(() => attempt(client), what).toThrow(message);
      expect(JSON.stringify(client), what).toBe(before);
    }
    expect(() => new OtClient(0, 0).acknowledge(1, 1)).toThrow(ClientStateError);
  });

  it("catches up after a reconnection and resends what is in flight as it was sent", () => {
    const client = new OtClient(0, 0);
    const sent = client.applyLocal(insert(0, "a", 0))!;
    // Someone else's edit was committed meanwhile, and not ours.
    expect(client.catchUp(1, false, insert(0, "x", 0))?.toJSON()).toEqual([1, "x"]);
    expect(client.resend()).toEqual(sent);
    // Another loss: this time ours was committed (as revision 2), with a buffer behind it.
    client.applyLocal(insert(2, "b", 2));
    expect(client.catchUp(2, true, insert(1, "a", 1))).toBeUndefined();
    const resent = client.resend()!;
    expect([resent.seq, resent.revision, resent.operation.toJSON()]).toEqual([2, 2, [2, "b"]]);
  });

  it("resynchronizes on a whole text, says what it dropped, and keeps numbering", () => {
    const client = new OtClient(0, 0);
    client.applyLocal(insert(0, "a", 0));
    expect(client.resynchronize(5, 3)).toBe(true);
    expect(client.isSynchronized).toBe(true);
    const next = client.applyLocal(insert(0, "b", 3))!;
    expect([next.seq, next.revision]).toEqual([2, 5]);
    client.acknowledge(2, 6);
    expect(client.resynchronize(9, 0)).toBe(false);
  });

  it("maps selections and positions between the server's text and the local one", () => {
    const client = new OtClient(0, 4);
    client.applyLocal(insert(0, "XY", 4)); // in flight: "XYabcd"
    client.applyLocal(insert(4, "Z", 6)); // buffered: "XYabZcd"
    expect(client.selectionToLocal({ anchor: 1, head: 3 })).toEqual({ anchor: 3, head: 6 });
    expect(client.positionToServer(6)).toBe(3);
    expect(client.positionToServer(1)).toBe(0);
  });

  it("gives a refused edit a new seq, or drops it and keeps the buffer", () => {
    const client = new OtClient(0, 2);
    client.applyLocal(insert(0, "a", 2)); // "aXY"
    client.applyLocal(insert(3, "b", 3)); // "aXYb"
    expect(client.renumber()?.seq).toBe(2);
    const dropped = client.dropInFlight("XY")!;
    expect(dropped.revert.apply("aXYb")).toBe("XYb");
    expect(dropped.next?.seq).toBe(3);
    expect(dropped.next?.operation.toJSON()).toEqual([2, "b"]);
    expect(client.textLength).toBe(3);
  });
});

function awaiting(): OtClient {
  const client = new OtClient(3, 2);
  client.applyLocal(insert(0, "a", 2));
  return client;
}

function buffered(): OtClient {
  const client = awaiting();
  client.applyLocal(insert(0, "b", 3));
  return client;
}

/**
 * The server's ordering, in memory: each operation is moved past everything committed since its
 * base revision (the incoming one first at a tie), committed, acknowledged and broadcast.
 */
class OrderingServer {
  text: string;
  readonly history: { clientId: string; operation: TextOperation }[] = [];

  constructor(text: string) {
    this.text = text;
  }

  get revision(): number {
    return this.history.length;
  }

  commit(clientId: string, outgoing: Outgoing): number {
    let operation = outgoing.operation;
    for (const committed of this.history.slice(outgoing.revision)) {
      [operation] = TextOperation.transform(operation, committed.operation);
    }
    this.text = operation.apply(this.text);
    this.history.push({ clientId, operation });
    return this.revision;
  }
}

describe("clients around an ordering server", () => {
  it("converge on the server's text, whatever the order things arrive in", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = seeded(seed);
      const server = new OrderingServer("hello 😀 world");
      const clients = ["a", "b", "c"].map((clientId) => ({
        clientId,
        ot: new OtClient(0, server.text.length),
        text: server.text,
        /** What the client sent and the server has not read yet. */
        toServer: [] as Outgoing[],
        /** Revisions the server committed that this client has not read yet (its own as acks). */
        read: 0,
      }));
      const send = (client: (typeof clients)[number], outgoing: Outgoing | undefined) => {
        if (outgoing !== undefined) {
          client.toServer.push(outgoing);
        }
      };
      const deliverToClient = (client: (typeof clients)[number]) => {
        const committed = server.history[client.read]!;
        client.read++;
        if (committed.clientId === client.clientId) {
          send(client, client.ot.acknowledge(client.ot.outstanding!.seq, client.read));
        } else {
          client.text = client.ot.applyRemote(client.read, committed.operation).apply(client.text);
        }
      };
      for (let step = 0; step < 60; step++) {
        const client = clients[randomInt(random, clients.length)]!;
        const action = random();
        if (action < 0.4) {
          const edit = randomEdit(random, client.text);
          client.text = edit.apply(client.text);
          send(client, client.ot.applyLocal(edit));
        } else if (action < 0.7 && client.toServer.length > 0) {
          server.commit(client.clientId, client.toServer.shift()!);
        } else if (client.read < server.revision) {
          deliverToClient(client);
        }
      }
      // Then everything arrives.
      while (clients.some((client) => client.toServer.length > 0 || client.read < server.revision)) {
        for (const client of clients) {
          while (client.toServer.length > 0) {
            server.commit(client.clientId, client.toServer.shift()!);
          }
          while (client.read < server.revision) {
            deliverToClient(client);
          }
        }
      }
      for (const client of clients) {
        expect(client.ot.isSynchronized, `seed ${seed}`).toBe(true);
        expect(client.text, `seed ${seed}, client ${client.clientId}`).toBe(server.text);
      }
    }
  });
});
