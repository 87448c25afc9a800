/**
 * The small pure helpers: room ids from links and paths, a token's claimed role, revision
 * errors, a language's grammar, the editor preferences kept in storage.
 */

import { describe, expect, it, vi } from "vitest";
import { HttpError } from "../src/api";
import { revisionError } from "../src/History";
import { loadLanguage } from "../src/languages";
import { storedSuggestWhileTyping, storeSuggestWhileTyping } from "../src/preferences";
import { roomIdFrom, roomIdOfPath, roomPath, tokenFrom, withoutToken } from "../src/router";
import { roomOfToken, tokenClaims, tokenFor, tokensFrom } from "../src/session";

const ROOM = "6f1c2a3b-0000-4000-8000-000000000001";

describe("room ids", () => {
  it("reads a room id from a pasted link or an id on its own", () => {
    expect(roomIdFrom(`https://duet.example/r/${ROOM}`)).toBe(ROOM);
    expect(roomIdFrom(`  http://127.0.0.1:8000/r/${ROOM}?token=abc#x `)).toBe(ROOM);
    expect(roomIdFrom(ROOM)).toBe(ROOM);
    expect(roomIdFrom("not a room")).toBeUndefined();
    expect(roomIdFrom("")).toBeUndefined();
  });

  it("routes /r/{id} to the room and anything else to the start page", () => {
    expect(roomIdOfPath(roomPath(ROOM))).toBe(ROOM);
    expect(roomIdOfPath(`/r/${ROOM}/`)).toBe(ROOM);
    expect(roomIdOfPath("/")).toBeUndefined();
    expect(roomIdOfPath(`/r/${ROOM}/more`)).toBeUndefined();
    expect(roomIdOfPath("/r/%E0%A4%A")).toBeUndefined();
  });
});

describe("tokens", () => {
  const encode = (claims: object) => {
    const bytes = new TextEncoder().encode(JSON.stringify(claims));
    const base64 = btoa(String.fromCharCode(...bytes));
    return `e30.${base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}.signature`;
  };

  it("reads the role and name a token claims, and nothing from what is not a token", () => {
    expect(tokenClaims(encode({ sub: "link:r", role: "viewer", name: "Gäst 😀" }))).toEqual({ role: "viewer", name: "Gäst 😀" });
    expect(tokenClaims(encode({ sub: "you", role: "owner", name: "" }))).toEqual({ role: "owner" });
    expect(tokenClaims(encode({ sub: "you", role: 3 }))).toEqual({});
    expect(tokenClaims("not-a-token")).toEqual({});
    expect(tokenClaims("a.%%%.c")).toEqual({});
    expect(tokenClaims(undefined)).toEqual({});
  });

  it("keeps each token for the room it names, and a token for every room for the rest", () => {
    const viewer = encode({ sub: "link:a", role: "viewer", room: ROOM });
    const everywhere = encode({ sub: "you", role: "owner", room: "*" });
    const roomless = encode({ sub: "old", role: "editor" });
    expect([roomOfToken(viewer), roomOfToken(everywhere), roomOfToken(roomless)]).toEqual([ROOM, "*", "*"]);
    const kept = new Map([
      [ROOM, viewer],
      ["*", everywhere],
    ]);
    expect(tokenFor(kept, ROOM)).toBe(viewer);
    expect(tokenFor(kept, "another-room")).toBe(everywhere);
    expect(tokenFor(kept)).toBe(everywhere);
    expect(tokenFor(new Map([[ROOM, viewer]]), "another-room")).toBeUndefined();
    expect(tokenFor(new Map([[ROOM, viewer]]))).toBeUndefined();
  });

  it("reads back only well-formed stored tokens, whatever the room ids", () => {
    const stored = JSON.parse(JSON.stringify([[ROOM, "t1"], ["__proto__", "t2"], ["x", ""], [1, "t3"], "junk", ["y"]]));
    expect([...tokensFrom(stored)]).toEqual([
      [ROOM, "t1"],
      ["__proto__", "t2"],
    ]);
    expect(tokensFrom({ [ROOM]: "t1" }).size).toBe(0);
    expect(tokensFrom(null).size).toBe(0);
  });

  it("takes the token out of a pasted share link", () => {
    expect(tokenFrom(`https://duet.example/r/${ROOM}?token=abc.def.ghi`)).toBe("abc.def.ghi");
    expect(tokenFrom(` http://127.0.0.1:8000/r/${ROOM}?readonly=1&token=t#x `)).toBe("t");
    expect(tokenFrom(`https://duet.example/r/${ROOM}`)).toBeUndefined();
    expect(tokenFrom(`https://duet.example/r/${ROOM}?token=`)).toBeUndefined();
    expect(tokenFrom(ROOM)).toBeUndefined();
    // In the fragment, which never reaches the server, first.
    expect(tokenFrom(`https://duet.example/r/${ROOM}#token=frag`)).toBe("frag");
    expect(tokenFrom(`https://duet.example/r/${ROOM}?token=query#token=frag`)).toBe("frag");
  });

  it("takes the token out of an address and leaves the rest", () => {
    expect(withoutToken(`https://duet.example/r/${ROOM}?token=t`)).toBe(`/r/${ROOM}`);
    expect(withoutToken(`https://duet.example/r/${ROOM}#token=t`)).toBe(`/r/${ROOM}`);
    expect(withoutToken(`https://duet.example/r/${ROOM}?readonly=1&token=t#token=u&x=1`)).toBe(
      `/r/${ROOM}?readonly=1#x=1`,
    );
    expect(withoutToken(`https://duet.example/r/${ROOM}#section`)).toBe(`/r/${ROOM}#section`);
  });
});

describe("revision errors", () => {
  it("tells a revision that never existed from one no longer kept", () => {
    expect(revisionError(9, new HttpError(404, "revision_not_found", ""))).toBe("Revision 9 never existed in this room.");
    expect(revisionError(2, new HttpError(410, "revision_gone", ""))).toBe("Revision 2 is older than the server keeps.");
    expect(revisionError(2, new HttpError(404, "room_not_found", "room r does not exist"))).toBe(
      "Could not load revision 2: room r does not exist",
    );
    expect(revisionError(2, new Error("Failed to fetch"))).toBe("Could not load revision 2: Failed to fetch");
  });

  it("asks to try again when the server is busy rebuilding", () => {
    expect(revisionError(4, new HttpError(503, "busy", "the server is rebuilding"))).toBe(
      "The server is busy rebuilding old revisions: move the slider again in a moment to see revision 4.",
    );
    expect(revisionError(4, new HttpError(503, "unavailable", "the service cannot answer right now"))).toBe(
      "Could not load revision 4: the service cannot answer right now",
    );
  });
});

describe("languages", () => {
  it("loads no grammar for a name that is only one of Object's properties", async () => {
    for (const name of ["constructor", "toString", "__proto__", "no-such-language"]) {
      await expect(loadLanguage(name)).resolves.toEqual([]);
    }
  });
});

describe("preferences", () => {
  it("suggests while typing unless this browser turned it off, and keeps the choice", () => {
    const kept = new Map<string, string>();
    const storage = {
      getItem: (key: string) => kept.get(key) ?? null,
      setItem: (key: string, value: string) => void kept.set(key, value),
    };
    vi.stubGlobal("window", { localStorage: storage });
    try {
      expect(storedSuggestWhileTyping()).toBe(true);
      storeSuggestWhileTyping(false);
      expect(storedSuggestWhileTyping()).toBe(false);
      storeSuggestWhileTyping(true);
      expect(storedSuggestWhileTyping()).toBe(true);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("suggests while typing when storage is off, and forgets the choice without failing", () => {
    const refusing = {
      getItem: () => {
        throw new Error("storage is off");
      },
      setItem: () => {
        throw new Error("storage is off");
      },
    };
    vi.stubGlobal("window", { localStorage: refusing });
    try {
      expect(() => storeSuggestWhileTyping(false)).not.toThrow();
      expect(storedSuggestWhileTyping()).toBe(true);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
