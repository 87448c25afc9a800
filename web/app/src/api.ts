/**
 * The server's HTTP API as the app uses it, on the page's own origin, with the session's token
 * as a bearer token. Errors carry the server's stable `code` (`{"error": {"code", "message"}}`).
 */

import { currentToken } from "./session";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    /** The server's error code (`room_not_found`, `revision_gone`, …), or "" when it sent none. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The headers of a call, with the token for `roomId` (or for every room, without one). */
function headers(json: boolean, roomId?: string): Record<string, string> {
  const result: Record<string, string> = { accept: "application/json" };
  const token = currentToken(roomId);
  if (token) {
    result["authorization"] = `Bearer ${token}`;
  }
  if (json) {
    result["content-type"] = "application/json";
  }
  return result;
}

async function request<T>(method: string, path: string, body?: unknown, roomId?: string): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: headers(body !== undefined, roomId),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) {
    let code = "";
    let message = `${response.status} ${response.statusText}`.trim();
    try {
      const answer = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
      if (typeof answer.error?.code === "string") {
        code = answer.error.code;
      }
      if (typeof answer.error?.message === "string") {
        message = answer.error.message;
      }
    } catch {
      // Not JSON: the status says enough.
    }
    throw new HttpError(response.status, code, message);
  }
  return (await response.json()) as T;
}

export interface Language {
  id: string;
  name: string;
}

/** What the server supports (README), shown until `GET /languages` answers. */
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

let languages: Promise<Language[]> | undefined;

/** `GET /languages`, asked once a page; the list above when it fails. */
export function fetchLanguages(): Promise<Language[]> {
  languages ??= request<{ languages: Language[] }>("GET", "/languages").then(
    (answer) => (answer.languages.length > 0 ? answer.languages : LANGUAGES),
    () => LANGUAGES,
  );
  return languages;
}

/** `POST /rooms`; the new room's id. */
export async function createRoom(language: string, code: string): Promise<string> {
  const answer = await request<{ roomId: string }>("POST", "/rooms", code ? { language, code } : { language });
  return answer.roomId;
}

export interface RoomView {
  roomId: string;
  language: string;
  code: string;
  revision: number;
  /** When the room (or, asked with a revision, that revision) was last changed. */
  updatedAt?: string;
}

/** `GET /rooms/{id}`, or with `revision` the room as it was then (404 `revision_not_found`, 410 `revision_gone`). */
export function fetchRoom(roomId: string, revision?: number): Promise<RoomView> {
  const query = revision === undefined ? "" : `?revision=${revision}`;
  return request<RoomView>("GET", `/rooms/${encodeURIComponent(roomId)}${query}`, undefined, roomId);
}

export interface CommittedOperation {
  revision: number;
  clientId: string;
  /** The operation in ot.js's JSON form. */
  ops: unknown;
  committedAt: string;
}

export interface HistoryPage {
  operations: CommittedOperation[];
  /** The `from` of the next page, or null once `to` is reached. */
  nextFrom: number | null;
}

/** `GET /rooms/{id}/history?from=F&to=T`: the operations after revision `from`, up to `to`, a page at a time. */
export function fetchHistory(roomId: string, from: number, to: number): Promise<HistoryPage> {
  return request<HistoryPage>(
    "GET",
    `/rooms/${encodeURIComponent(roomId)}/history?from=${from}&to=${to}`,
    undefined,
    roomId,
  );
}
