/** Two routes, on the History API: `/` and `/r/{roomId}`. */

import { useEffect, useState } from "react";

/** The path, following `navigate` and the back and forward buttons. */
export function usePath(): string {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const update = () => setPath(window.location.pathname);
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return path;
}

export function navigate(to: string): void {
  window.history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** The room id in a path (`/r/{id}`), if it is a room's. */
export function roomIdOfPath(path: string): string | undefined {
  const match = /^\/r\/([^/]+)\/?$/.exec(path);
  if (match === null) {
    return undefined;
  }
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
}

/** The room id in a pasted link (`…/r/{id}…`) or an id on its own. */
export function roomIdFrom(input: string): string | undefined {
  const trimmed = input.trim();
  const match = /\/r\/([^/?#\s]+)/.exec(trimmed);
  if (match) {
    try {
      return decodeURIComponent(match[1]!);
    } catch {
      return undefined;
    }
  }
  return /^[A-Za-z0-9_-]+$/.test(trimmed) ? trimmed : undefined;
}

/**
 * The token in a share link, if it has one: in its fragment (`#token=…`, which browsers never
 * send to the server, so no log keeps it) or in its query (`?token=…`).
 */
export function tokenFrom(input: string): string | undefined {
  try {
    const url = new URL(input.trim());
    const token = new URLSearchParams(url.hash.slice(1)).get("token") ?? url.searchParams.get("token");
    return token === null || token === "" ? undefined : token;
  } catch {
    return undefined;
  }
}

/** `address` with any token taken out of its query and its fragment. */
export function withoutToken(address: string): string {
  const url = new URL(address);
  url.searchParams.delete("token");
  const fragment = new URLSearchParams(url.hash.slice(1));
  if (fragment.has("token")) {
    fragment.delete("token");
    url.hash = fragment.toString();
  }
  return `${url.pathname}${url.search}${url.hash}`;
}

/** The path of a room's page. */
export function roomPath(roomId: string): string {
  return `/r/${encodeURIComponent(roomId)}`;
}
