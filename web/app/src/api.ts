/** The HTTP side of the server, with the page's token (`?token=`) as a bearer token. */

export function pageToken(): string | undefined {
  return new URLSearchParams(window.location.search).get("token") ?? undefined;
}

function headers(json: boolean): Record<string, string> {
  const result: Record<string, string> = { accept: "application/json" };
  const token = pageToken();
  if (token) {
    result["authorization"] = `Bearer ${token}`;
  }
  if (json) {
    result["content-type"] = "application/json";
  }
  return result;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const error = (await response.json()) as { error?: string; message?: string };
      message = error.message ?? error.error ?? message;
    } catch {
      // not JSON
    }
    throw new HttpError(response.status, message);
  }
  return (await response.json()) as T;
}

export interface Language {
  id: string;
  name: string;
}

export const LANGUAGES: Language[] = [
  { id: "python", name: "Python" },
  { id: "javascript", name: "JavaScript" },
  { id: "typescript", name: "TypeScript" },
  { id: "rust", name: "Rust" },
  { id: "go", name: "Go" },
  { id: "java", name: "Java" },
  { id: "c", name: "C" },
  { id: "cpp", name: "C++" },
  { id: "plaintext", name: "Plain text" },
];

export async function fetchLanguages(): Promise<Language[]> {
  const answer = await request<{ languages: Language[] }>("GET", "/languages");
  return answer.languages;
}

export async function createRoom(language: string, code: string): Promise<string> {
  const answer = await request<{ roomId: string }>("POST", "/rooms", code ? { language, code } : { language });
  return answer.roomId;
}

export interface RoomView {
  roomId: string;
  language: string;
  code: string;
  revision: number;
}

export function fetchRoom(roomId: string, revision?: number): Promise<RoomView> {
  const query = revision === undefined ? "" : `?revision=${revision}`;
  return request<RoomView>("GET", `/rooms/${encodeURIComponent(roomId)}${query}`);
}
