/**
 * The texts behind the history slider: kept ones served at once, short gaps replayed from the
 * history route page by page, long ones and failed replays asked of the server, and memory held
 * to a budget.
 */

import { TextOperation } from "@duet/client";
import { describe, expect, it } from "vitest";
import { HttpError, type HistoryPage, type RoomView } from "../src/api";
import { REPLAY_COPY_LIMIT, REPLAY_LIMIT, type RevisionSource, RevisionTexts } from "../src/revisions";

/** A room whose revision r holds "0 1 2 … r" (each operation appends " r"), served as the server would. */
class FakeRoom implements RevisionSource {
  readonly calls: string[] = [];
  pageSize = 3;
  historyMissing = false;

  constructor(readonly newest: number) {}

  text(revision: number): string {
    return Array.from({ length: revision + 1 }, (_, index) => String(index)).join(" ");
  }

  async room(revision: number): Promise<RoomView> {
    this.calls.push(`room ${revision}`);
    if (revision > this.newest) {
      throw new HttpError(404, "revision_not_found", `revision ${revision} does not exist`);
    }
    return { roomId: "r", language: "python", code: this.text(revision), revision, updatedAt: `t${revision}` };
  }

  async history(from: number, to: number): Promise<HistoryPage> {
    this.calls.push(`history ${from}..${to}`);
    if (this.historyMissing) {
      throw new HttpError(404, "not_found", "no such route");
    }
    const last = Math.min(to, from + this.pageSize);
    const operations = [];
    for (let revision = from + 1; revision <= last; revision++) {
      const before = this.text(revision - 1);
      operations.push({
        revision,
        clientId: `c${revision}`,
        ops: new TextOperation().retain(before.length).insert(` ${revision}`).toJSON(),
        committedAt: `t${revision}`,
      });
    }
    return { operations, nextFrom: last < to ? last : null };
  }
}

describe("revision texts", () => {
  it("asks for a large text rather than replay many operations over it", async () => {
    const room = new FakeRoom(10);
    const texts = new RevisionTexts(room);
    const large = "x".repeat(REPLAY_COPY_LIMIT / 5);
    texts.remember({ revision: 2, code: large });
    await texts.load(8); // six operations over the large text would copy too much
    expect(room.calls).toEqual(["room 8"]);
    room.calls.length = 0;
    texts.remember({ revision: 6, code: room.text(6) });
    await texts.load(7); // one operation over a small text: replayed
    expect(room.calls).toEqual(["history 6..7"]);
  });

  it("serves a kept revision without asking the server", async () => {
    const room = new FakeRoom(10);
    const texts = new RevisionTexts(room);
    texts.remember({ revision: 4, code: room.text(4) });
    expect(await texts.load(4)).toEqual({ revision: 4, code: "0 1 2 3 4" });
    expect(room.calls).toEqual([]);
  });

  it("replays the operations after the nearest kept revision, page by page", async () => {
    const room = new FakeRoom(20);
    const texts = new RevisionTexts(room);
    texts.remember({ revision: 2, code: room.text(2) });
    texts.remember({ revision: 15, code: room.text(15) });
    const loaded = await texts.load(9);
    expect(loaded).toEqual({ revision: 9, code: room.text(9), clientId: "c9", committedAt: "t9" });
    expect(room.calls).toEqual(["history 2..9", "history 5..9", "history 8..9"]);
    // Every revision on the way is kept now.
    room.calls.length = 0;
    expect((await texts.load(6)).code).toBe(room.text(6));
    expect(room.calls).toEqual([]);
  });

  it("asks for the text itself when nothing kept is near enough before it", async () => {
    const room = new FakeRoom(REPLAY_LIMIT + 50);
    const texts = new RevisionTexts(room);
    texts.remember({ revision: 0, code: room.text(0) });
    const far = REPLAY_LIMIT + 10;
    expect((await texts.load(far)).code).toBe(room.text(far));
    expect(room.calls).toEqual([`room ${far}`]);
    room.calls.length = 0;
    // Nothing kept before it at all.
    const fresh = new RevisionTexts(room);
    expect(await fresh.load(3)).toEqual({ revision: 3, code: room.text(3), committedAt: "t3" });
    expect(room.calls).toEqual(["room 3"]);
  });

  it("falls back to the text when the history cannot be replayed", async () => {
    const room = new FakeRoom(10);
    room.historyMissing = true;
    const texts = new RevisionTexts(room);
    texts.remember({ revision: 1, code: room.text(1) });
    expect((await texts.load(5)).code).toBe(room.text(5));
    expect(room.calls).toEqual(["history 1..5", "room 5"]);
  });

  it("falls back to the text when a kept text does not fit the operations", async () => {
    const room = new FakeRoom(10);
    const texts = new RevisionTexts(room);
    texts.remember({ revision: 1, code: "something else entirely" });
    expect((await texts.load(3)).code).toBe(room.text(3));
    expect(room.calls.at(-1)).toBe("room 3");
  });

  it("passes on the server's refusal", async () => {
    const room = new FakeRoom(3);
    const texts = new RevisionTexts(room);
    await expect(texts.load(7)).rejects.toMatchObject({ status: 404, code: "revision_not_found" });
  });

  it("keeps no more text than its budget, dropping the least recently used", () => {
    const texts = new RevisionTexts(new FakeRoom(0), 10);
    texts.remember({ revision: 1, code: "aaaa" });
    texts.remember({ revision: 2, code: "bbbb" });
    expect(texts.get(1)?.code).toBe("aaaa");
    texts.remember({ revision: 3, code: "cccc" });
    expect(texts.get(2)).toBeUndefined();
    expect(texts.get(1)?.code).toBe("aaaa");
    expect(texts.get(3)?.code).toBe("cccc");
    texts.remember({ revision: 4, code: "far too long for it" });
    expect(texts.get(4)).toBeUndefined();
    texts.clear();
    expect(texts.get(1)).toBeUndefined();
  });
});
