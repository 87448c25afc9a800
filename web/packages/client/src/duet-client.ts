/**
 * A `duet.v1` connection to one room: the WebSocket, the OT client rules (`OtClient`), the
 * room's text as this client has it, the others' cursors, reconnection and resumption.
 *
 * The editor tells the client what the user did (`applyLocal`, `setSelection`) and applies what
 * the client reports (`remoteChange`, and the text of each `welcome`). Everything the client
 * reports is in the local text's coordinates, UTF-16 code units, with the user's unacknowledged
 * edits included: remote operations are moved past them, and so are the others' selections.
 *
 * When the connection drops, local edits go on: they wait in the OT client and are sent after
 * the client reconnects, resuming as the same client (`clientId`, `resumeToken`, and `since` set
 * to the last revision it saw). The server then lists what was committed meanwhile, the client's
 * own edits included, and the operation that was in flight is sent again with the same `seq`
 * and base revision, so the server commits it once however often it arrives. When the server no
 * longer holds that history, it sends the whole text instead; the client then finds out whether
 * its last edit was committed (by sending it again: a committed one is acknowledged, any other
 * refused), merges what is still unacknowledged into the new text, and sends it.
 */

import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
import { diff, predictServerDiff } from "./diff.js";
import { Emitter } from "./emitter.js";
import { hasLoneSurrogate, OperationError, type Selection, splitsSurrogatePair, TextOperation } from "./operation.js";
import { ClientStateError, OtClient, type Outgoing } from "./ot-client.js";
import {
  type ClientMessage,
  CloseCode,
  encodeClientMessage,
  type ErrorCode,
  readFrame,
  type ServerMessage,
  SUBPROTOCOL,
} from "./protocol.js";

// Handlers are declared as methods' parameters are (bivariantly), so that both a browser's
// WebSocket and the `ws` package's, whose handlers take richer event types, fit.
type Listener<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

/** The part of the WebSocket interface the client uses: browsers' and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  onopen: Listener<unknown> | null;
  onmessage: Listener<{ data: unknown }> | null;
  onclose: Listener<{ code: number; reason: string }> | null;
  onerror: Listener<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/** Whether the device has a network, and word when it comes back (browsers: `navigator.onLine` and the `online` event). */
export interface NetworkMonitor {
  isOnline(): boolean;
  /** Calls `callback` once the network is back; returns what cancels that. */
  whenOnline(callback: () => void): () => void;
}

export interface DuetClientOptions {
  /** The server: `ws://host:8000`, `wss://host`, or the same with `http`/`https`; a path prefix is kept. */
  url: string;
  roomId: string;
  /** The name others see (at most 64 characters; a token's `name` claim takes precedence). */
  name?: string;
  /** The client id to ask for; the server makes one up when absent, or when this one is someone else's. */
  clientId?: string;
  /** A signed token, for servers with authentication on: sent as the `token` query parameter. */
  token?: string;
  /** Ask the server to gather messages into batched frames (`batch=1`). Default true. */
  batch?: boolean;
  /** The WebSocket class: the global one by default (browsers, Node 22+); `ws`'s in Node 20. */
  WebSocket?: WebSocketConstructor;
  /** How long to wait between attempts to reconnect. */
  reconnect?: Partial<BackoffOptions>;
  /** The least time between two `presence` messages; selections in between are coalesced. Default 50 ms. */
  presenceIntervalMs?: number;
  /** How long `requestCompletion` waits for its answer. Default 5,000 ms. */
  completionTimeoutMs?: number;
  /** How long to wait before sending an edit again that the server refused as `unavailable`. Default 1,000 ms. */
  unavailableRetryMs?: number;
  /** A random number in [0, 1), for the backoff's jitter. Default `Math.random`. */
  random?: () => number;
  /**
   * How to ask the server why a WebSocket was refused before it opened (browsers do not say):
   * `GET /rooms/{roomId}` with the token. Default: the global `fetch`; `null` never asks.
   */
  fetch?: ((url: string, init: { headers: Record<string, string> }) => Promise<{ status: number; json(): Promise<unknown> }>) | null;
  /** How long that question may go unanswered before the client tries again anyway. Default 10,000 ms. */
  whyRefusedTimeoutMs?: number;
  /** Where to learn that the device is offline. Default: `navigator.onLine` and the `online` event, when there are. */
  network?: NetworkMonitor | null;
}

/** Where the connection is. */
export type ConnectionStatus =
  | { state: "idle" }
  /** The first connection is being made. */
  | { state: "connecting" }
  /** Welcomed: edits are being exchanged. */
  | { state: "connected" }
  /** The connection was lost; attempt `attempt` follows in `delayMs`. Local edits go on and wait. */
  | { state: "reconnecting"; attempt: number; delayMs: number; pendingEdits: number }
  /** The device has no network: the client reconnects when it comes back. */
  | { state: "offline"; pendingEdits: number }
  /**
   * For good: `close()` (1000), a close code that forbids reconnecting (4404 room deleted, 4409
   * replaced, 1008 policy, 1003, 1009), or an HTTP refusal before the upgrade (400, 401, 403,
   * 404: `code` is the status and `reason` the error code).
   */
  | { state: "closed"; code: number; reason: string; pendingEdits: number };

/** Someone in the room other than this client; `selection` is in the local text. */
export interface Participant {
  clientId: string;
  name: string;
  selection?: Selection;
}

export interface WelcomeEvent {
  clientId: string;
  revision: number;
  language: string;
  /** The local text now, unacknowledged edits included: the editor should hold exactly this. */
  text: string;
  participants: Participant[];
  /**
   * Whether the client resumed its session: then the editor already holds `text` (what was
   * missed came as `remoteChange` events). Otherwise the text was reset from the server's.
   */
  resumed: boolean;
  /**
   * After a reconnection that could not resume: the change from the text the editor held to
   * `text`, for editors that would rather apply a change than replace everything.
   */
  change?: TextOperation;
}

export interface RemoteChangeEvent {
  /** Apply this to the editor's text: it is already moved past the local unacknowledged edits. */
  operation: TextOperation;
  /** Who made it: another client, or this one when `reverted`. */
  clientId: string;
  /** The server revision it was committed as (for a revert: the revision the text is back to). */
  revision: number;
  /** A local edit the server refused for good (`forbidden`, `room_too_large`), taken back. */
  reverted?: true;
}

export interface ErrorEvent {
  /** A `duet.v1` error code, or `protocol` for a frame this client could not read or follow. */
  code: ErrorCode | "protocol";
  message: string;
  seq?: number;
  id?: unknown;
}

export interface Completion {
  suggestion: string;
  alternatives: string[];
}

export interface SuggestionEvent extends Completion {
  id: unknown;
}

export interface DuetEvents {
  status: ConnectionStatus;
  welcome: WelcomeEvent;
  remoteChange: RemoteChangeEvent;
  presence: Participant;
  joined: Participant;
  left: { clientId: string };
  language: { language: string };
  error: ErrorEvent;
  suggestion: SuggestionEvent;
  /** An own edit was committed; `pendingEdits` are still waiting. */
  ack: { seq: number; revision: number; pendingEdits: number };
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.UNSUPPORTED_DATA,
  CloseCode.INVALID_PAYLOAD,
  CloseCode.POLICY_VIOLATION,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.ROOM_DELETED,
  CloseCode.REPLACED,
]);

/** HTTP answers to the upgrade after which reconnecting cannot help. */
const FINAL_HTTP_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404]);

/** Errors about an edit which mean the server never committed it and its base is no good. */
const RESYNC_ERRORS: ReadonlySet<string> = new Set(["resync_required", "bad_revision", "invalid_op", "bad_message"]);

/** Errors about an edit which the server will refuse however often it is sent. */
const REFUSED_FOR_GOOD: ReadonlySet<string> = new Set(["forbidden", "room_too_large"]);

/** A reconnection that could not resume, waiting to learn whether the edit in flight was committed. */
interface Resync {
  revision: number;
  code: string;
  language: string;
  participants: Participant[];
  /** The seq sent again to find out; undefined when there is nothing to find out. */
  probeSeq: number | undefined;
  /** Messages that came after the welcome, handled once the resynchronisation is done. */
  queued: ServerMessage[];
}

interface PendingCompletion {
  resolve(completion: Completion): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The connection's own socket and what it has seen; a new one for each attempt. */
interface Connection {
  socket: WebSocketLike;
  opened: boolean;
  welcomed: boolean;
  /** The last error the socket reported, for the HTTP status of a refused upgrade. */
  errorMessage: string | undefined;
}

export class DuetClient extends Emitter<DuetEvents> {
  private readonly options: DuetClientOptions;
  private token: string | undefined;
  private readonly backoff: BackoffOptions;
  private statusValue: ConnectionStatus = { state: "idle" };

  private connection: Connection | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private cancelOnline: (() => void) | undefined;
  private attempt = 0;
  private closedForGood = false;

  private ot: OtClient | undefined;
  private localText = "";
  /** The server's text at `ot.revision`. */
  private serverText = "";
  private clientIdValue: string | undefined;
  private resumeToken: string | undefined;
  private languageValue: string | undefined;
  private readonly participantsById = new Map<string, Participant>();

  /** Reconnect without `since`: the client's revision or state cannot be trusted. */
  private fullResync = false;
  /** The seq of an edit in flight the server refused without committing it. */
  private refusedSeq: number | undefined;
  /** The largest seq written to a socket. */
  private highestSentSeq = 0;
  /** The largest seq the server acknowledged. */
  private lastAckedSeq = 0;
  /** The edit in flight when it goes as a `code` message rather than an `op`. */
  private inFlightCode: { seq: number; code: string } | undefined;
  /** The frame the edit in flight was first sent as: a resend is the same bytes. */
  private inFlightFrame: { seq: number; text: string } | undefined;
  private resync: Resync | undefined;
  private unavailableTimer: ReturnType<typeof setTimeout> | undefined;

  private localSelection: Selection | undefined;
  /** The last selection sent, moved as the others move it: no need to send it again while it is the user's. */
  private presenceSeen: Selection | undefined;
  private presenceDirty = false;
  private presenceTimer: ReturnType<typeof setTimeout> | undefined;
  private lastPresenceAt = -Infinity;
  private pendingLanguage: string | undefined;

  private readonly completions = new Map<number, PendingCompletion>();
  private nextCompletionId = 1;

  constructor(options: DuetClientOptions) {
    super();
    this.options = options;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.reconnect };
    this.clientIdValue = options.clientId;
    this.token = options.token;
  }

  /** Where the connection is. */
  get status(): ConnectionStatus {
    return this.statusValue;
  }

  /** The room's text as this client has it (unacknowledged edits included); "" before the first welcome. */
  get text(): string {
    return this.localText;
  }

  /** The last server revision this client has seen; undefined before the first welcome. */
  get revision(): number | undefined {
    return this.ot?.revision;
  }

  /** The client id the server knows this client by (from the last welcome, or as asked for). */
  get clientId(): string | undefined {
    return this.clientIdValue;
  }

  get language(): string | undefined {
    return this.languageValue;
  }

  /** The others in the room, their selections in the local text. */
  get participants(): ReadonlyMap<string, Participant> {
    return this.participantsById;
  }

  /** How many local edits the server has not acknowledged yet. */
  get pendingEdits(): number {
    return this.ot?.unacknowledgedEdits ?? 0;
  }

  /** Whether every local edit was acknowledged. */
  get isSynchronized(): boolean {
    return this.ot?.isSynchronized ?? true;
  }

  /** Opens the connection (once; later calls do nothing). Listen for `welcome` to get the text. */
  connect(): this {
    if (this.statusValue.state === "idle") {
      this.setStatus({ state: "connecting" });
      this.open();
    }
    return this;
  }

  /**
   * The editor changed: `operation` turns the text as the client has it (`text`) into the
   * editor's new text. It is sent at once when nothing is in flight, else composed into the
   * buffer. `selection`, when given, is where the user's selection is afterwards.
   *
   * Throws, changing nothing, before the first welcome, after `close()`, and for an operation
   * that does not fit the text or that inserts what a room cannot hold (a NUL character, half a
   * surrogate pair).
   */
  applyLocal(operation: TextOperation, selection?: Selection): void {
    if (this.ot === undefined) {
      throw new Error("there is no text to edit before the first welcome");
    }
    if (this.closedForGood) {
      throw new Error("the client is closed");
    }
    for (const component of operation.ops) {
      if (typeof component === "string" && hasLoneSurrogate(component)) {
        throw new OperationError("an insert holds half a surrogate pair");
      }
    }
    const text = operation.apply(this.localText);
    const outgoing = this.ot.applyLocal(operation);
    this.localText = text;
    this.moveSelections(operation);
    if (selection !== undefined) {
      this.localSelection = clampSelection(selection, text.length);
    }
    if (outgoing !== undefined && this.canSend()) {
      // The selection sent with an edit is the one the server shows to those who join later;
      // the others learn it from `presence` messages.
      this.sendOperation(outgoing, selection === undefined ? undefined : this.localSelection);
    }
    if (selection !== undefined) {
      this.presenceDirty = true;
      this.schedulePresence();
    }
  }

  /** The user's selection moved: sent as `presence`, at most once every `presenceIntervalMs`. */
  setSelection(selection: Selection): void {
    if (this.closedForGood) {
      return;
    }
    this.localSelection = clampSelection(selection, this.localText.length);
    this.presenceDirty = true;
    this.schedulePresence();
  }

  /**
   * The token to connect with from the next connection on (the server checks a token once,
   * before the upgrade: an open connection outlives its token, a reconnection does not).
   */
  setToken(token: string): void {
    this.token = token;
  }

  /** Changes the room's language (everyone, this client included, receives a `language` event). */
  setLanguage(language: string): void {
    if (this.canSend()) {
      this.send({ type: "language", language });
    } else {
      this.pendingLanguage = language;
    }
  }

  /**
   * Asks the server for a completion at `cursorPosition` in the local text. Rejects when the
   * client is not connected, the server refuses, the connection drops, or no answer comes in
   * `completionTimeoutMs`.
   */
  requestCompletion(cursorPosition: number): Promise<Completion> {
    if (this.ot === undefined || !this.canSend()) {
      return Promise.reject(new Error("not connected"));
    }
    let position = Math.max(0, Math.min(Math.floor(cursorPosition), this.localText.length));
    if (splitsSurrogatePair(this.localText, position)) {
      position--;
    }
    const id = this.nextCompletionId++;
    const timeout = this.options.completionTimeoutMs ?? 5_000;
    return new Promise<Completion>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.completions.delete(id);
        reject(new Error(`no completion within ${timeout} ms`));
      }, timeout);
      this.completions.set(id, { resolve, reject, timer });
      this.send({
        type: "autocomplete",
        id,
        revision: this.ot!.revision,
        cursorPosition: this.ot!.positionToServer(position),
      });
    });
  }

  /** Closes the connection for good. Unacknowledged edits are dropped. */
  close(): void {
    if (this.closedForGood) {
      return;
    }
    const connection = this.connection;
    this.finish(CloseCode.NORMAL, "closed by the client");
    connection?.socket.close(CloseCode.NORMAL, "closed by the client");
  }

  // Connecting.

  private open(): void {
    const WebSocketClass =
      this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (WebSocketClass === undefined) {
      throw new Error("no WebSocket class: pass one as the WebSocket option (the ws package, in Node 20)");
    }
    const params: [string, string][] = [];
    if (this.options.name !== undefined) {
      params.push(["name", this.options.name]);
    }
    if (this.clientIdValue !== undefined) {
      params.push(["clientId", this.clientIdValue]);
    }
    if (this.resumeToken !== undefined) {
      params.push(["resumeToken", this.resumeToken]);
    }
    if (this.ot !== undefined && !this.fullResync) {
      params.push(["since", String(this.ot.revision)]);
    }
    if (this.options.batch ?? true) {
      params.push(["batch", "1"]);
    }
    if (this.token !== undefined) {
      params.push(["token", this.token]);
    }
    const url = `${serverUrl(this.options.url, "ws")}/ws/${encodeURIComponent(this.options.roomId)}?${new URLSearchParams(params)}`;
    let socket: WebSocketLike;
    try {
      socket = new WebSocketClass(url, [SUBPROTOCOL]);
    } catch (error) {
      this.emitError("protocol", `cannot open a WebSocket to ${url}: ${(error as Error).message}`);
      this.scheduleReconnect();
      return;
    }
    const connection: Connection = { socket, opened: false, welcomed: false, errorMessage: undefined };
    this.connection = connection;
    socket.onopen = () => {
      if (this.connection !== connection) {
        return;
      }
      connection.opened = true;
      if (socket.protocol !== SUBPROTOCOL) {
        this.finish(1002, `the server does not speak ${SUBPROTOCOL}`);
        socket.close(CloseCode.NORMAL);
      }
    };
    socket.onmessage = (event) => {
      if (this.connection === connection) {
        this.receiveFrame(connection, event.data);
      }
    };
    socket.onerror = (event) => {
      const message = (event as { message?: unknown } | undefined)?.message;
      if (typeof message === "string") {
        connection.errorMessage = message;
      }
    };
    socket.onclose = (event) => {
      if (this.connection === connection) {
        this.lost(connection, event.code, event.reason);
      }
    };
  }

  /** The socket closed (or never opened): reconnect, or stop when that cannot help. */
  private lost(connection: Connection, code: number, reason: string): void {
    this.connection = undefined;
    this.dropConnectionState();
    if (this.closedForGood) {
      return;
    }
    if (FINAL_CLOSE_CODES.has(code)) {
      this.finish(code, reason || closeReason(code));
      return;
    }
    if (!connection.opened) {
      // The `ws` package says what the server answered instead of switching protocols.
      const status = /Unexpected server response: (\d{3})/.exec(connection.errorMessage ?? "")?.[1];
      if (status !== undefined) {
        this.refused(Number(status), connection.errorMessage ?? "");
        return;
      }
      const fetcher = this.options.fetch === undefined ? globalFetch() : this.options.fetch;
      if (fetcher !== null && fetcher !== undefined) {
        void this.askWhyRefused(fetcher);
        return;
      }
    }
    this.scheduleReconnect();
  }

  /** Asks the server over HTTP why the upgrade failed (browsers hide its answer), then stops or retries. */
  private async askWhyRefused(fetcher: NonNullable<DuetClientOptions["fetch"]>): Promise<void> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) {
      headers["authorization"] = `Bearer ${this.token}`;
    }
    let status: number | undefined;
    let reason = "";
    // A stalled network must not leave the client waiting for good: past the timeout, the
    // question counts as unanswered.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer")), this.options.whyRefusedTimeoutMs ?? 10_000);
    });
    try {
      const answer = (async () => {
        const response = await fetcher(
          `${serverUrl(this.options.url, "http")}/rooms/${encodeURIComponent(this.options.roomId)}`,
          { headers },
        );
        const body = (await response.json().catch(() => undefined)) as { error?: { code?: unknown } } | undefined;
        return { status: response.status, reason: typeof body?.error?.code === "string" ? body.error.code : "" };
      })();
      answer.catch(() => undefined);
      ({ status, reason } = await Promise.race([answer, timedOut]));
    } catch {
      // The server did not answer at all, or not in time: a network failure, worth retrying.
    } finally {
      clearTimeout(timer);
    }
    if (this.closedForGood || this.connection !== undefined || this.reconnectTimer !== undefined) {
      return;
    }
    if (status !== undefined) {
      this.refused(status, reason);
    } else {
      this.scheduleReconnect();
    }
  }

  private refused(status: number, reason: string): void {
    if (FINAL_HTTP_STATUSES.has(status)) {
      this.finish(status, reason || `the server refused the connection with HTTP ${status}`);
    } else {
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.closedForGood || this.reconnectTimer !== undefined || this.cancelOnline !== undefined) {
      return;
    }
    const network = this.options.network === undefined ? browserNetwork() : this.options.network;
    if (network !== null && network !== undefined && !network.isOnline()) {
      this.setStatus({ state: "offline", pendingEdits: this.pendingEdits });
      this.cancelOnline = network.whenOnline(() => {
        this.cancelOnline = undefined;
        if (!this.closedForGood) {
          this.attempt = 0;
          this.scheduleReconnect();
        }
      });
      return;
    }
    this.attempt++;
    const delayMs = backoffDelay(this.attempt, this.backoff, (this.options.random ?? Math.random)());
    this.setStatus({ state: "reconnecting", attempt: this.attempt, delayMs, pendingEdits: this.pendingEdits });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closedForGood) {
        this.open();
      }
    }, delayMs);
  }

  /** Drops the connection on purpose (its state cannot be trusted) and reconnects. */
  private restart(connection: Connection): void {
    if (this.connection !== connection) {
      return;
    }
    this.connection = undefined;
    this.dropConnectionState();
    connection.socket.onclose = null;
    connection.socket.close(CloseCode.NORMAL, "resynchronising");
    this.scheduleReconnect();
  }

  /** Forgets what belonged to the connection that ended. */
  private dropConnectionState(): void {
    this.resync = undefined;
    clearTimeout(this.unavailableTimer);
    this.unavailableTimer = undefined;
    for (const [id, pending] of this.completions) {
      clearTimeout(pending.timer);
      pending.reject(new Error("the connection was lost"));
      this.completions.delete(id);
    }
  }

  private finish(code: number, reason: string): void {
    this.closedForGood = true;
    this.connection = undefined;
    this.dropConnectionState();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    clearTimeout(this.presenceTimer);
    this.presenceTimer = undefined;
    this.cancelOnline?.();
    this.cancelOnline = undefined;
    this.setStatus({ state: "closed", code, reason, pendingEdits: this.pendingEdits });
  }

  private setStatus(status: ConnectionStatus): void {
    this.statusValue = status;
    this.emit("status", status);
  }

  // Receiving.

  private receiveFrame(connection: Connection, data: unknown): void {
    if (typeof data !== "string") {
      this.emitError("protocol", "a binary frame");
      this.restart(connection);
      return;
    }
    let messages: ServerMessage[];
    try {
      messages = readFrame(data);
    } catch (error) {
      this.emitError("protocol", (error as Error).message);
      this.restart(connection);
      return;
    }
    for (const message of messages) {
      if (this.connection !== connection) {
        return;
      }
      try {
        this.receive(connection, message);
      } catch (error) {
        if (error instanceof ClientStateError || error instanceof OperationError) {
          // The server and this client no longer agree on the text: start again from its text.
          this.emitError("protocol", `${error.message}; resynchronising`);
          this.fullResync = true;
          this.restart(connection);
          return;
        }
        throw error;
      }
    }
  }

  private receive(connection: Connection, message: ServerMessage): void {
    if (message.type === "welcome") {
      this.welcome(connection, message);
      return;
    }
    if (!connection.welcomed) {
      throw new ClientStateError(`a ${message.type} message before the welcome`);
    }
    const resync = this.resync;
    if (resync !== undefined) {
      const answersProbe =
        resync.probeSeq !== undefined &&
        (message.type === "ack" || message.type === "error") &&
        message.seq === resync.probeSeq;
      if (answersProbe) {
        this.probeAnswered(connection, resync, message);
      } else {
        resync.queued.push(message);
      }
      return;
    }
    const ot = this.ot!;
    switch (message.type) {
      case "ack": {
        if (message.seq <= this.lastAckedSeq) {
          // A second answer to an edit already acknowledged (a resend crossed its ack): nothing to do.
          return;
        }
        const serverText = ot.inFlightOperation?.apply(this.serverText) ?? this.serverText;
        const next = ot.acknowledge(message.seq, message.revision);
        this.serverText = serverText;
        this.acknowledged(connection, message.seq, next, message.revision);
        return;
      }
      case "op": {
        if (message.clientId === this.clientIdValue && ot.outstanding !== undefined) {
          // This client's own edit, committed through a connection it has since replaced: as
          // in a welcome, it stands for the acknowledgement.
          const seq = ot.outstanding.seq;
          const next = ot.acknowledge(seq, message.revision);
          this.serverText = message.ops.apply(this.serverText);
          this.acknowledged(connection, seq, next, message.revision);
          return;
        }
        const local = ot.applyRemote(message.revision, message.ops);
        this.serverText = message.ops.apply(this.serverText);
        this.applyToLocal(local);
        this.emit("remoteChange", { operation: local, clientId: message.clientId, revision: message.revision });
        return;
      }
      case "presence":
      case "joined": {
        if (message.clientId === this.clientIdValue) {
          return;
        }
        const participant: Participant = { clientId: message.clientId, name: message.name };
        if (message.selection !== undefined) {
          participant.selection = this.selectionToLocal(message.selection);
        }
        this.participantsById.set(participant.clientId, participant);
        this.emit(message.type, { ...participant });
        return;
      }
      case "left":
        this.participantsById.delete(message.clientId);
        this.emit("left", { clientId: message.clientId });
        return;
      case "language":
        this.languageValue = message.language;
        this.emit("language", { language: message.language });
        return;
      case "suggestion": {
        const pending = typeof message.id === "number" ? this.completions.get(message.id) : undefined;
        if (pending !== undefined) {
          clearTimeout(pending.timer);
          this.completions.delete(message.id as number);
          pending.resolve({ suggestion: message.suggestion, alternatives: message.alternatives });
        }
        this.emit("suggestion", { id: message.id, suggestion: message.suggestion, alternatives: message.alternatives });
        return;
      }
      case "error":
        this.refusal(connection, message);
        return;
    }
  }

  private welcome(connection: Connection, message: Extract<ServerMessage, { type: "welcome" }>): void {
    if (connection.welcomed) {
      throw new ClientStateError("a second welcome");
    }
    connection.welcomed = true;
    const previousClientId = this.clientIdValue;
    this.clientIdValue = message.clientId;
    this.resumeToken = message.resumeToken;
    this.languageValue = message.language;
    this.attempt = 0;
    const participants = message.participants
      .filter((participant) => participant.clientId !== message.clientId)
      .map((participant) => ({ ...participant }));

    if (this.ot === undefined || message.code !== undefined) {
      if (message.code === undefined) {
        throw new ClientStateError("a first welcome without the room's code");
      }
      this.fullResync = false;
      if (this.ot === undefined) {
        this.ot = new OtClient(message.revision, message.code.length);
        this.localText = this.serverText = message.code;
        this.setParticipants(participants);
        this.afterWelcome(connection);
        this.emit("welcome", this.welcomeEvent(false));
        return;
      }
      const outstanding = this.ot.outstanding;
      // Only an edit that reached the server under this client id may have been committed.
      const mayBeCommitted =
        outstanding !== undefined &&
        message.clientId === previousClientId &&
        outstanding.seq <= this.highestSentSeq &&
        outstanding.seq !== this.refusedSeq;
      const resync: Resync = {
        revision: message.revision,
        code: message.code,
        language: message.language,
        participants,
        probeSeq: mayBeCommitted ? outstanding.seq : undefined,
        queued: [],
      };
      this.resync = resync;
      if (mayBeCommitted) {
        // Sent again as it was: the server acknowledges it if it committed it, and refuses it
        // (its base is older than the history) if not.
        this.sendOperation(outstanding, undefined);
      } else {
        this.resolveResync(connection, resync, false);
      }
      return;
    }

    // Resumed: the operations missed since `since`, own ones acknowledging.
    const ot = this.ot;
    for (const missed of message.ops ?? []) {
      // This client's edits are its own under the id it had too: a resume it could not prove
      // gives it a new id, and its edits committed meanwhile carry the old one.
      const own = missed.clientId === message.clientId || missed.clientId === previousClientId;
      if (own) {
        const seq = ot.outstanding?.seq;
        ot.catchUp(missed.revision, true, missed.ops);
        this.serverText = missed.ops.apply(this.serverText);
        if (seq !== undefined) {
          this.lastAckedSeq = Math.max(this.lastAckedSeq, seq);
          if (this.inFlightCode?.seq === seq) {
            this.inFlightCode = undefined;
          }
          this.emit("ack", { seq, revision: missed.revision, pendingEdits: ot.unacknowledgedEdits });
        }
      } else {
        const local = ot.catchUp(missed.revision, false, missed.ops)!;
        this.serverText = missed.ops.apply(this.serverText);
        this.applyToLocal(local);
        this.emit("remoteChange", { operation: local, clientId: missed.clientId, revision: missed.revision });
      }
    }
    if (ot.revision !== message.revision) {
      throw new ClientStateError(`the welcome is at revision ${message.revision}, its operations end at ${ot.revision}`);
    }
    this.setParticipants(participants);
    const resend = ot.resend();
    if (resend !== undefined) {
      this.sendOperation(resend, undefined);
    }
    this.afterWelcome(connection);
    this.emit("welcome", this.welcomeEvent(true));
  }

  /**
   * The answer to the edit in flight sent again after a welcome with the whole text: an ack
   * at or before the welcome's revision says the welcome's text holds it, a later ack that it
   * was committed only now (the welcome's text lacks it: the client starts again), a refusal
   * that it was not committed.
   */
  private probeAnswered(connection: Connection, resync: Resync, message: ServerMessage): void {
    if (message.type === "error" && message.code === "unavailable") {
      clearTimeout(this.unavailableTimer);
      this.unavailableTimer = setTimeout(() => {
        this.unavailableTimer = undefined;
        const outstanding = this.ot?.outstanding;
        if (this.connection === connection && this.resync === resync && outstanding !== undefined) {
          this.sendOperation(outstanding, undefined);
        }
      }, this.options.unavailableRetryMs ?? 1_000);
      return;
    }
    if (message.type === "ack" && message.revision > resync.revision) {
      // Committed only now, as it was sent again: the welcome's text lacks it, and what the
      // server made of it (transformed past the others' edits) is not known here. Start again:
      // the next welcome's text holds it, and the same question is answered from the log.
      this.fullResync = true;
      this.restart(connection);
      return;
    }
    this.resolveResync(connection, resync, message.type === "ack");
  }

  /**
   * Finishes a reconnection that could not resume: the text is the server's, with whatever of
   * this client's edits was not committed merged into it and sent.
   */
  private resolveResync(connection: Connection, resync: Resync, committed: boolean): void {
    const ot = this.ot!;
    this.resync = undefined;
    this.refusedSeq = undefined;
    // The text the unacknowledged edits apply to, and those edits.
    let base = this.serverText;
    let pending = ot.unacknowledged;
    if (committed) {
      base = ot.inFlightOperation!.apply(this.serverText);
      pending = ot.buffer;
    }
    // What the others did meanwhile, as one change, and the unacknowledged edits moved past it.
    const theirs = diff(base, resync.code);
    let mine: TextOperation | undefined;
    let change = theirs;
    if (pending !== undefined) {
      [mine, change] = TextOperation.transform(pending, theirs);
    }
    ot.resynchronize(resync.revision, resync.code.length);
    this.serverText = resync.code;
    this.localText = change.apply(this.localText);
    this.moveSelections(change);
    this.inFlightCode = undefined;
    if (mine !== undefined && !mine.isNoop() && this.localText !== resync.code) {
      // As a `code` message when the server's diff of it is certain to be the operation this
      // client keeps in flight; otherwise as that operation.
      const merged = this.localText;
      const predicted = predictServerDiff(resync.code, merged);
      const outgoing = ot.applyLocal(predicted ?? mine);
      if (outgoing !== undefined) {
        if (predicted !== undefined) {
          this.inFlightCode = { seq: outgoing.seq, code: merged };
        }
        this.sendOperation(outgoing, undefined);
      }
    }
    this.setParticipants(resync.participants);
    this.afterWelcome(connection);
    this.emit("welcome", { ...this.welcomeEvent(false), change });
    for (const message of resync.queued) {
      if (this.connection !== connection) {
        return;
      }
      this.receive(connection, message);
    }
  }

  private afterWelcome(connection: Connection): void {
    this.setStatus({ state: "connected" });
    // A new connection: the server knows no selection of this client's yet.
    this.presenceSeen = undefined;
    if (this.pendingLanguage !== undefined && this.connection === connection) {
      const language = this.pendingLanguage;
      this.pendingLanguage = undefined;
      this.send({ type: "language", language });
    }
    if (this.localSelection !== undefined) {
      this.presenceDirty = true;
      this.schedulePresence();
    }
  }

  private welcomeEvent(resumed: boolean): WelcomeEvent {
    return {
      clientId: this.clientIdValue!,
      revision: this.ot!.revision,
      language: this.languageValue ?? "",
      text: this.localText,
      participants: [...this.participantsById.values()].map((participant) => ({ ...participant })),
      resumed,
    };
  }

  private setParticipants(participants: Participant[]): void {
    this.participantsById.clear();
    for (const participant of participants) {
      const local: Participant = { clientId: participant.clientId, name: participant.name };
      if (participant.selection !== undefined) {
        local.selection = this.selectionToLocal(participant.selection);
      }
      this.participantsById.set(local.clientId, local);
    }
  }

  private acknowledged(connection: Connection, seq: number, next: Outgoing | undefined, revision: number): void {
    this.lastAckedSeq = Math.max(this.lastAckedSeq, seq);
    if (this.inFlightCode?.seq === seq) {
      this.inFlightCode = undefined;
    }
    clearTimeout(this.unavailableTimer);
    this.unavailableTimer = undefined;
    this.emit("ack", { seq, revision, pendingEdits: this.pendingEdits });
    if (this.connection !== connection) {
      return;
    }
    if (next !== undefined) {
      this.sendOperation(next, undefined);
    } else if (this.presenceDirty) {
      this.schedulePresence();
    }
  }

  /** An `error` message: what the client does about it depends on what was refused. */
  private refusal(connection: Connection, message: Extract<ServerMessage, { type: "error" }>): void {
    const event: ErrorEvent = { code: message.code, message: message.message };
    if (message.seq !== undefined) {
      event.seq = message.seq;
    }
    if (message.id !== undefined) {
      event.id = message.id;
    }
    if (typeof message.id === "number" && this.completions.has(message.id)) {
      const pending = this.completions.get(message.id)!;
      clearTimeout(pending.timer);
      this.completions.delete(message.id);
      pending.reject(new Error(`${message.code}: ${message.message}`));
    }
    this.emit("error", event);
    const ot = this.ot!;
    const outstanding = ot.outstanding;
    if (message.seq === undefined || outstanding === undefined || message.seq !== outstanding.seq) {
      return;
    }
    if (message.code === "unavailable") {
      // Nothing was committed: the same edit, again, a little later.
      clearTimeout(this.unavailableTimer);
      this.unavailableTimer = setTimeout(() => {
        this.unavailableTimer = undefined;
        const again = ot.outstanding;
        if (this.connection === connection && again !== undefined && again.seq === message.seq) {
          this.sendOperation(again, undefined);
        }
      }, this.options.unavailableRetryMs ?? 1_000);
    } else if (message.code === "bad_seq" || message.code === "seq_reused") {
      const renumbered = ot.renumber();
      if (renumbered !== undefined) {
        if (this.inFlightCode?.seq === message.seq) {
          this.inFlightCode = { seq: renumbered.seq, code: this.inFlightCode.code };
        }
        this.sendOperation(renumbered, undefined);
      }
    } else if (REFUSED_FOR_GOOD.has(message.code)) {
      this.inFlightCode = undefined;
      const dropped = ot.dropInFlight(this.serverText);
      if (dropped !== undefined) {
        this.applyToLocal(dropped.revert);
        this.emit("remoteChange", {
          operation: dropped.revert,
          clientId: this.clientIdValue!,
          revision: ot.revision,
          reverted: true,
        });
        if (dropped.next !== undefined) {
          this.sendOperation(dropped.next, undefined);
        }
      }
    } else if (RESYNC_ERRORS.has(message.code)) {
      // Not committed, and its base is no good: start again from the server's whole text.
      this.refusedSeq = message.seq;
      this.fullResync = true;
      this.restart(connection);
    } else if (message.code === "internal") {
      // The server could not answer: resuming tells whether the edit was committed.
      this.restart(connection);
    }
  }

  // Sending.

  private canSend(): boolean {
    return this.connection?.welcomed === true && this.resync === undefined && this.connection.socket.readyState === 1;
  }

  private send(message: ClientMessage): void {
    this.connection?.socket.send(encodeClientMessage(message));
  }

  private sendOperation(outgoing: Outgoing, selection: Selection | undefined): void {
    const connection = this.connection;
    if (connection?.welcomed !== true || connection.socket.readyState !== 1) {
      return;
    }
    this.highestSentSeq = Math.max(this.highestSentSeq, outgoing.seq);
    if (this.inFlightFrame?.seq !== outgoing.seq) {
      let message: ClientMessage;
      if (this.inFlightCode?.seq === outgoing.seq) {
        message = { type: "code", revision: outgoing.revision, seq: outgoing.seq, code: this.inFlightCode.code };
      } else {
        message = { type: "op", revision: outgoing.revision, seq: outgoing.seq, ops: outgoing.operation };
        if (selection !== undefined && this.ot?.buffer === undefined) {
          // Only when nothing is buffered behind it is the local selection on the edit's result.
          message.selection = clampSelection(selection, outgoing.operation.targetLength);
        }
      }
      this.inFlightFrame = { seq: outgoing.seq, text: encodeClientMessage(message) };
    }
    connection.socket.send(this.inFlightFrame.text);
  }

  private schedulePresence(): void {
    if (this.presenceTimer !== undefined || this.closedForGood) {
      return;
    }
    const interval = this.options.presenceIntervalMs ?? 50;
    const wait = Math.max(0, this.lastPresenceAt + interval - Date.now());
    this.presenceTimer = setTimeout(() => {
      this.presenceTimer = undefined;
      this.flushPresence();
    }, wait);
  }

  /**
   * Sends the selection when the server's text is the local one (nothing unacknowledged): only
   * then is a local selection also one on the client's revision. Otherwise it goes once the
   * edits are acknowledged.
   */
  private flushPresence(): void {
    if (!this.presenceDirty || this.localSelection === undefined || !this.canSend() || !this.ot!.isSynchronized) {
      return;
    }
    this.presenceDirty = false;
    const selection = this.localSelection;
    if (this.presenceSeen?.anchor === selection.anchor && this.presenceSeen.head === selection.head) {
      return;
    }
    this.presenceSeen = selection;
    this.lastPresenceAt = Date.now();
    this.send({ type: "presence", revision: this.ot!.revision, selection });
  }

  // The local text and what is drawn on it.

  private applyToLocal(operation: TextOperation): void {
    this.localText = operation.apply(this.localText);
    this.moveSelections(operation);
  }

  /** Moves the user's and the others' selections over a change to the local text. */
  private moveSelections(operation: TextOperation): void {
    if (this.localSelection !== undefined) {
      this.localSelection = operation.transformSelection(this.localSelection);
    }
    if (this.presenceSeen !== undefined) {
      this.presenceSeen = operation.transformSelection(this.presenceSeen);
    }
    for (const participant of this.participantsById.values()) {
      if (participant.selection !== undefined) {
        participant.selection = operation.transformSelection(participant.selection);
      }
    }
  }

  /** A selection in the server's text at the client's revision, in the local text. */
  private selectionToLocal(selection: Selection): Selection {
    const ot = this.ot!;
    return clampSelection(ot.selectionToLocal(clampSelection(selection, ot.serverLength)), this.localText.length);
  }

  private emitError(code: ErrorEvent["code"], message: string): void {
    this.emit("error", { code, message });
  }
}

/** Creates a client for a room and connects it. */
export function connect(options: DuetClientOptions): DuetClient {
  return new DuetClient(options).connect();
}

function clampSelection(selection: Selection, length: number): Selection {
  const clamp = (position: number) => Math.max(0, Math.min(Math.floor(position), length));
  return { anchor: clamp(selection.anchor), head: clamp(selection.head) };
}

/** The server's base URL with the scheme for WebSockets (`ws`) or HTTP (`http`), without a trailing slash. */
export function serverUrl(url: string, kind: "ws" | "http"): string {
  const trimmed = url.replace(/\/+$/, "");
  const match = /^(wss?|https?):\/\//i.exec(trimmed);
  if (match === null) {
    throw new Error(`not a ws, wss, http or https URL: ${url}`);
  }
  const secure = ["wss", "https"].includes(match[1]!.toLowerCase());
  const scheme = kind === "ws" ? (secure ? "wss" : "ws") : secure ? "https" : "http";
  return `${scheme}://${trimmed.slice(match[0].length)}`;
}

function closeReason(code: number): string {
  switch (code) {
    case CloseCode.ROOM_DELETED:
      return "the room was deleted";
    case CloseCode.REPLACED:
      return "another connection took over this client id";
    case CloseCode.POLICY_VIOLATION:
      return "the server closed the connection for a policy violation";
    case CloseCode.MESSAGE_TOO_BIG:
      return "a message was over the server's size limit";
    default:
      return `closed with code ${code}`;
  }
}

function globalFetch(): DuetClientOptions["fetch"] {
  const fetcher = (globalThis as { fetch?: unknown }).fetch;
  return typeof fetcher === "function" ? (fetcher as NonNullable<DuetClientOptions["fetch"]>) : null;
}

function browserNetwork(): NetworkMonitor | null {
  const navigator = (globalThis as { navigator?: { onLine?: unknown } }).navigator;
  const target = globalThis as { addEventListener?: unknown; removeEventListener?: unknown };
  if (typeof navigator?.onLine !== "boolean" || typeof target.addEventListener !== "function") {
    return null;
  }
  const events = globalThis as unknown as EventTarget;
  return {
    isOnline: () => (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine !== false,
    whenOnline(callback) {
      const listener = () => {
        events.removeEventListener("online", listener);
        callback();
      };
      events.addEventListener("online", listener);
      return () => events.removeEventListener("online", listener);
    },
  };
}
