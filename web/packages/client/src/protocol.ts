/**
 * The `duet.v1` messages, as `crates/protocol` defines them for the server: what a client sends
 * (encoded with the fields in the server's own order, so the bytes match its `ClientMessage`),
 * what the server sends (read permissively: unknown fields are ignored, as a newer server may
 * add some, and a missing or mistyped required field is refused), the `error` codes, the close
 * codes, and the batched frames of `batch=1`.
 */

import { type Selection, TextOperation } from "./operation.js";

/** The WebSocket subprotocol that selects `duet.v1`. */
export const SUBPROTOCOL = "duet.v1";

/** The close codes a Duet server uses (docs/PROTOCOL.md, "Close codes"). */
export const CloseCode = {
  /** The client closed the connection itself. */
  NORMAL: 1000,
  /** The server is shutting down: reconnect. */
  GOING_AWAY: 1001,
  /** A binary frame was sent. */
  UNSUPPORTED_DATA: 1003,
  /** The connection was lost without a close frame (browsers report this). */
  ABNORMAL: 1006,
  /** Plain mode: a buffer that cannot be stored. */
  INVALID_PAYLOAD: 1007,
  /** Twenty refused messages in a row, or flooding: do not reconnect. */
  POLICY_VIOLATION: 1008,
  /** A message over the server's size limit; nothing was stored. */
  MESSAGE_TOO_BIG: 1009,
  /** The server failed: reconnect. */
  INTERNAL_ERROR: 1011,
  /** The room stopped or must load again: reconnect and resume. */
  TRY_AGAIN_LATER: 1013,
  /** The room was deleted. */
  ROOM_DELETED: 4404,
  /** A newer connection with the same client id replaced this one. */
  REPLACED: 4409,
} as const;

/** The codes of `error` messages (docs/PROTOCOL.md, "Errors"); a newer server may send others. */
export type ErrorCode =
  | "bad_message"
  | "invalid_op"
  | "bad_revision"
  | "resync_required"
  | "bad_seq"
  | "seq_reused"
  | "room_too_large"
  | "forbidden"
  | "invalid_language"
  | "invalid_cursor"
  | "unavailable"
  | "internal"
  | (string & {});

/** A participant as others see it; `selection` is in the server's text. */
export interface WireParticipant {
  clientId: string;
  name: string;
  selection?: Selection;
}

/** A committed operation: `ops` applies on top of revision `revision - 1`. */
export interface WireOperation {
  revision: number;
  clientId: string;
  ops: TextOperation;
}

export type ServerMessage =
  | {
      type: "welcome";
      clientId: string;
      resumeToken: string;
      revision: number;
      language: string;
      /** The room's text at `revision`, when the client did not resume (or could not). */
      code?: string;
      /** Every operation after the client's `since`, when it resumed. */
      ops?: WireOperation[];
      participants: WireParticipant[];
    }
  | { type: "ack"; seq: number; revision: number }
  | ({ type: "op" } & WireOperation)
  | ({ type: "presence" } & WireParticipant)
  | ({ type: "joined" } & WireParticipant)
  | { type: "left"; clientId: string }
  | { type: "language"; language: string }
  | { type: "suggestion"; id: unknown; suggestion: string; alternatives: string[] }
  | { type: "error"; code: ErrorCode; message: string; seq?: number; id?: unknown };

export type ClientMessage =
  | { type: "op"; revision: number; seq: number; ops: TextOperation; selection?: Selection }
  | { type: "code"; revision: number; seq: number; code: string }
  | { type: "presence"; revision: number; selection: Selection }
  | { type: "language"; language: string }
  | { type: "autocomplete"; id: unknown; revision: number; cursorPosition: number };

/** A frame the client could not read as `duet.v1`. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/** Encodes a message as one text frame, its fields in the order the server's types declare them. */
export function encodeClientMessage(message: ClientMessage): string {
  switch (message.type) {
    case "op":
      return JSON.stringify(
        message.selection === undefined
          ? { type: "op", revision: message.revision, seq: message.seq, ops: message.ops }
          : {
              type: "op",
              revision: message.revision,
              seq: message.seq,
              ops: message.ops,
              selection: selectionJson(message.selection),
            },
      );
    case "code":
      return JSON.stringify({ type: "code", revision: message.revision, seq: message.seq, code: message.code });
    case "presence":
      return JSON.stringify({ type: "presence", revision: message.revision, selection: selectionJson(message.selection) });
    case "language":
      return JSON.stringify({ type: "language", language: message.language });
    case "autocomplete":
      return JSON.stringify({
        type: "autocomplete",
        id: message.id,
        revision: message.revision,
        cursorPosition: message.cursorPosition,
      });
  }
}

function selectionJson(selection: Selection): Selection {
  return { anchor: selection.anchor, head: selection.head };
}

/**
 * The messages in a frame the server sent, in order: every element of an array frame (sent to
 * `batch=1` clients), or the frame's one message. Messages of a type this client does not know
 * (from a newer server) are left out.
 */
export function readFrame(text: string): ServerMessage[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProtocolError(`a frame that is not JSON: ${abbreviate(text)}`);
  }
  const messages = Array.isArray(json) ? json.map(readMessage) : [readMessage(json)];
  return messages.filter((message): message is ServerMessage => message !== undefined);
}

/** Reads one server message from parsed JSON; undefined for a type this client does not know. */
export function readMessage(json: unknown): ServerMessage | undefined {
  const fields = object(json, "a message");
  const type = fields["type"];
  switch (type) {
    case "welcome": {
      const message: ServerMessage = {
        type,
        clientId: string(fields, "clientId"),
        resumeToken: string(fields, "resumeToken"),
        revision: count(fields, "revision"),
        language: string(fields, "language"),
        participants: list(fields, "participants").map(readParticipant),
      };
      if (fields["code"] !== undefined) {
        message.code = string(fields, "code");
      }
      if (fields["ops"] !== undefined) {
        message.ops = list(fields, "ops").map((entry) => readOperation(object(entry, "an operation")));
      }
      return message;
    }
    case "ack":
      return { type, seq: count(fields, "seq"), revision: count(fields, "revision") };
    case "op":
      return { type, ...readOperation(fields) };
    case "presence":
    case "joined":
      return { type, ...readParticipant(fields) };
    case "left":
      return { type, clientId: string(fields, "clientId") };
    case "language":
      return { type, language: string(fields, "language") };
    case "suggestion": {
      if (!("id" in fields)) {
        throw new ProtocolError("a suggestion without its id");
      }
      const alternatives = list(fields, "alternatives");
      if (!alternatives.every((alternative) => typeof alternative === "string")) {
        throw new ProtocolError("alternatives must be strings");
      }
      return { type, id: fields["id"], suggestion: string(fields, "suggestion"), alternatives: alternatives as string[] };
    }
    case "error": {
      const message: ServerMessage = { type, code: string(fields, "code"), message: string(fields, "message") };
      if (fields["seq"] !== undefined && fields["seq"] !== null) {
        message.seq = count(fields, "seq");
      }
      if ("id" in fields && fields["id"] !== undefined) {
        message.id = fields["id"];
      }
      return message;
    }
    default:
      if (typeof type !== "string") {
        throw new ProtocolError("a message without a type");
      }
      return undefined;
  }
}

function readOperation(fields: Record<string, unknown>): WireOperation {
  let ops: TextOperation;
  try {
    ops = TextOperation.fromJSON(fields["ops"]);
  } catch (error) {
    throw new ProtocolError(`an operation that cannot be read: ${(error as Error).message}`);
  }
  return { revision: count(fields, "revision"), clientId: string(fields, "clientId"), ops };
}

function readParticipant(json: unknown): WireParticipant {
  const fields = object(json, "a participant");
  const participant: WireParticipant = { clientId: string(fields, "clientId"), name: string(fields, "name") };
  if (fields["selection"] !== undefined && fields["selection"] !== null) {
    const selection = object(fields["selection"], "a selection");
    participant.selection = { anchor: count(selection, "anchor"), head: count(selection, "head") };
  }
  return participant;
}

function object(json: unknown, what: string): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ProtocolError(`expected ${what}, got ${abbreviate(JSON.stringify(json) ?? String(json))}`);
  }
  return json as Record<string, unknown>;
}

function string(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (typeof value !== "string") {
    throw new ProtocolError(`${name} must be a string`);
  }
  return value;
}

/** A whole number from 0 to 2^53 − 1, as every `revision`, `seq`, length and position is. */
function count(fields: Record<string, unknown>, name: string): number {
  const value = fields[name];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError(`${name} must be a whole number from 0 to 2^53 − 1`);
  }
  return value;
}

function list(fields: Record<string, unknown>, name: string): unknown[] {
  const value = fields[name];
  if (!Array.isArray(value)) {
    throw new ProtocolError(`${name} must be an array`);
  }
  return value;
}

function abbreviate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
