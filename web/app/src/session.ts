/**
 * The page's tokens: a share link's `#token=` (or `?token=`) is taken out of the address (so
 * that it is not copied, bookmarked or shown along with it) and kept in sessionStorage, for this
 * tab only, so that a reload still has it. Each is kept for the room it names (its `room` claim; `*`, every
 * room, for a token that names none), so that a tab opened on one room's link can go on to
 * another with that room's own token, or with none. A room's token goes to its WebSocket and,
 * as a bearer token, to the HTTP calls about it; the every-room token to the rest.
 */

import { tokenFrom, withoutToken } from "./router";

const KEY = "duet.tokens";
/** The key of a token for every room, as the server writes it in the `room` claim. */
const EVERY_ROOM = "*";

/** Room (or `*`) to token. A Map: room ids come from links, so never an object's key. */
let tokens = new Map<string, string>();

function load(): Map<string, string> {
  try {
    const stored: unknown = JSON.parse(window.sessionStorage.getItem(KEY) ?? "[]");
    return tokensFrom(stored);
  } catch {
    return new Map();
  }
}

function save(): void {
  try {
    window.sessionStorage.setItem(KEY, JSON.stringify([...tokens]));
  } catch {
    // Storage may be off: the tokens then last as long as the page.
  }
}

/** The stored pairs, keeping only well-formed ones. */
export function tokensFrom(stored: unknown): Map<string, string> {
  const found = new Map<string, string>();
  if (Array.isArray(stored)) {
    for (const entry of stored) {
      if (Array.isArray(entry) && typeof entry[0] === "string" && typeof entry[1] === "string" && entry[1] !== "") {
        found.set(entry[0], entry[1]);
      }
    }
  }
  return found;
}

/** Where `token` is kept: the room it names, or every room. */
export function roomOfToken(token: string): string {
  return tokenClaims(token).room ?? EVERY_ROOM;
}

/** The token for `roomId` (its own, else one for every room); the every-room one without it. */
export function tokenFor(kept: ReadonlyMap<string, string>, roomId?: string): string | undefined {
  return (roomId === undefined ? undefined : kept.get(roomId)) ?? kept.get(EVERY_ROOM);
}

/** Keeps `token` for the room it names, in place of the one kept there before. */
export function adoptToken(token: string): void {
  tokens.set(roomOfToken(token), token);
  save();
}

/** Moves a `#token=` or `?token=` from the address into the session. Call once, before anything renders. */
export function adoptTokenFromAddress(): void {
  tokens = load();
  const fromAddress = tokenFrom(window.location.href);
  if (fromAddress !== undefined) {
    adoptToken(fromAddress);
    window.history.replaceState(window.history.state, "", withoutToken(window.location.href));
  }
}

/** The token for the calls about `roomId`, or, without one, for the rest. */
export function currentToken(roomId?: string): string | undefined {
  return tokenFor(tokens, roomId);
}

/**
 * What a token claims of its holder (`role`: `viewer`, `editor`, `owner`; `name`: the name the
 * server shows others; `room`: the room it is for, or `*`), read without checking its signature:
 * only so that a viewer gets a read-only editor from the start, the page names its user as
 * others see them, and the token is kept for its room. The server decides what is allowed.
 */
export function tokenClaims(jwt: string | undefined): { role?: string; name?: string; room?: string } {
  const payload = jwt?.split(".")[1];
  if (payload === undefined) {
    return {};
  }
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as { role?: unknown; name?: unknown; room?: unknown };
    return {
      ...(typeof claims.role === "string" ? { role: claims.role } : {}),
      ...(typeof claims.room === "string" && claims.room !== "" ? { room: claims.room } : {}),
      ...(typeof claims.name === "string" && claims.name !== "" ? { name: claims.name } : {}),
    };
  } catch {
    return {};
  }
}
