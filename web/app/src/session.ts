/**
 * The page's token: a share link's `?token=` is taken out of the address (so that it is not
 * copied, bookmarked or shown along with it) and kept in sessionStorage, for this tab only, so
 * that a reload still has it. It goes to the WebSocket and, as a bearer token, to every HTTP
 * call.
 */

const KEY = "duet.token";

let token: string | undefined;

/** Moves a `?token=` from the address into the session. Call once, before anything renders. */
export function adoptTokenFromAddress(): void {
  const url = new URL(window.location.href);
  const fromAddress = url.searchParams.get("token");
  if (fromAddress !== null && fromAddress !== "") {
    token = fromAddress;
    try {
      window.sessionStorage.setItem(KEY, fromAddress);
    } catch {
      // Storage may be off: the token then lasts as long as the page.
    }
    url.searchParams.delete("token");
    window.history.replaceState(window.history.state, "", `${url.pathname}${url.search}${url.hash}`);
    return;
  }
  try {
    token = window.sessionStorage.getItem(KEY) ?? undefined;
  } catch {
    token = undefined;
  }
}

export function currentToken(): string | undefined {
  return token;
}

/**
 * What a token claims of its holder (`role`: `viewer`, `editor`, `owner`; `name`: the name the
 * server shows others), read without checking its signature: only so that a viewer gets a
 * read-only editor from the start and the page names its user as others see them. The server
 * decides what is allowed.
 */
export function tokenClaims(jwt: string | undefined): { role?: string; name?: string } {
  const payload = jwt?.split(".")[1];
  if (payload === undefined) {
    return {};
  }
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as { role?: unknown; name?: unknown };
    return {
      ...(typeof claims.role === "string" ? { role: claims.role } : {}),
      ...(typeof claims.name === "string" && claims.name !== "" ? { name: claims.name } : {}),
    };
  } catch {
    return {};
  }
}
