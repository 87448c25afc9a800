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

/** The room id in a link (`…/r/{id}`) or an id on its own. */
export function roomIdFrom(input: string): string | undefined {
  const trimmed = input.trim();
  const match = /\/r\/([^/?#\s]+)/.exec(trimmed);
  if (match) {
    return decodeURIComponent(match[1]!);
  }
  return /^[A-Za-z0-9_-]+$/.test(trimmed) ? trimmed : undefined;
}
