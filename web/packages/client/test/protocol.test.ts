/** The duet.v1 messages: client frames byte for byte as the server writes them, server frames read as strictly. */

import { describe, expect, it } from "vitest";

import { encodeClientMessage, ProtocolError, readFrame, TextOperation } from "../src/index.js";

describe("client messages", () => {
  it("are written byte for byte as the server's ClientMessage::encode writes them", () => {
    const op = (...components: (number | string)[]) => TextOperation.fromJSON(components);
    const cases: [Parameters<typeof encodeClientMessage>[0], string][] = [
      [{ type: "op", revision: 0, seq: 1, ops: op(1, "X", 1) }, '{"type":"op","revision":0,"seq":1,"ops":[1,"X",1]}'],
      [{ type: "op", revision: 0, seq: 1, ops: op(1, "😀", 1) }, '{"type":"op","revision":0,"seq":1,"ops":[1,"😀",1]}'],
      [
        { type: "op", revision: 4, seq: 2, ops: op(2, -1), selection: { anchor: 2, head: 2 } },
        '{"type":"op","revision":4,"seq":2,"ops":[2,-1],"selection":{"anchor":2,"head":2}}',
      ],
      [{ type: "code", revision: 3, seq: 4, code: 'a "b"\n' }, '{"type":"code","revision":3,"seq":4,"code":"a \\"b\\"\\n"}'],
      [
        { type: "presence", revision: 2, selection: { anchor: 1, head: 2 } },
        '{"type":"presence","revision":2,"selection":{"anchor":1,"head":2}}',
      ],
      [{ type: "language", language: "rust" }, '{"type":"language","language":"rust"}'],
      [
        { type: "autocomplete", id: 7, revision: 2, cursorPosition: 3 },
        '{"type":"autocomplete","id":7,"revision":2,"cursorPosition":3}',
      ],
    ];
    for (const [message, wire] of cases) {
      expect(encodeClientMessage(message)).toBe(wire);
    }
  });
});

describe("server frames", () => {
  it("read the protocol's examples", () => {
    const [welcome] = readFrame(
      '{"type":"welcome","clientId":"alice","resumeToken":"9f3c","revision":0,"language":"python","code":"ab","participants":[]}',
    );
    expect(welcome).toEqual({
      type: "welcome",
      clientId: "alice",
      resumeToken: "9f3c",
      revision: 0,
      language: "python",
      code: "ab",
      participants: [],
    });
    const [op] = readFrame('{"type":"op","revision":2,"clientId":"bob","ops":[4,"!"]}');
    expect(op?.type === "op" && [op.revision, op.clientId, op.ops.toJSON()]).toEqual([2, "bob", [4, "!"]]);
    expect(readFrame('{"type":"presence","clientId":"bob","name":"Bob","selection":{"anchor":0,"head":1}}')).toEqual([
      { type: "presence", clientId: "bob", name: "Bob", selection: { anchor: 0, head: 1 } },
    ]);
    expect(readFrame('{"type":"error","code":"resync_required","message":"too old","seq":3}')).toEqual([
      { type: "error", code: "resync_required", message: "too old", seq: 3 },
    ]);
    expect(readFrame('{"type":"suggestion","id":1,"suggestion":"nt","alternatives":[]}')).toEqual([
      { type: "suggestion", id: 1, suggestion: "nt", alternatives: [] },
    ]);
  });

  it("read a batched frame's messages in order", () => {
    const messages = readFrame(
      '[{"type":"op","revision":5,"clientId":"b","ops":["x"]},{"type":"ack","seq":2,"revision":6},{"type":"left","clientId":"c"}]',
    );
    expect(messages.map((message) => message.type)).toEqual(["op", "ack", "left"]);
  });

  it("read a welcome that resumes", () => {
    const [welcome] = readFrame(
      '{"type":"welcome","clientId":"a","resumeToken":"t","revision":3,"language":"rust","ops":[{"revision":3,"clientId":"b","ops":[1,"x"]}],"participants":[{"clientId":"b","name":"B","selection":{"anchor":1,"head":1}}]}',
    );
    expect(welcome?.type === "welcome" && welcome.ops?.map((op) => [op.revision, op.clientId, op.ops.toJSON()])).toEqual([
      [3, "b", [1, "x"]],
    ]);
  });

  it("ignore unknown fields and message types, and refuse missing or mistyped fields", () => {
    expect(readFrame('{"type":"ack","seq":1,"revision":2,"later":true}')).toEqual([{ type: "ack", seq: 1, revision: 2 }]);
    expect(readFrame('[{"type":"hello"},{"type":"ack","seq":1,"revision":2}]')).toHaveLength(1);
    const refused = [
      "not json",
      '{"seq":1}',
      '{"type":"ack","seq":1}',
      '{"type":"ack","seq":-1,"revision":2}',
      '{"type":"ack","seq":1.5,"revision":2}',
      '{"type":"ack","seq":9007199254740992,"revision":2}',
      '{"type":"op","revision":1,"clientId":"b","ops":[0]}',
      '{"type":"op","revision":1,"clientId":"b"}',
      '{"type":"welcome","clientId":"a","resumeToken":"t","revision":0,"language":"c"}',
      '{"type":"suggestion","suggestion":"x","alternatives":[]}',
      '{"type":"suggestion","id":1,"suggestion":"x","alternatives":[1]}',
      "[1]",
    ];
    for (const frame of refused) {
      expect(() => readFrame(frame), frame).toThrow(ProtocolError);
    }
  });
});
