/**
 * A Duet server in memory, for driving `DuetClient`s without a network: it speaks `duet.v1` as
 * the real one does (the ordering, the transform tie-break, acknowledgements, duplicates
 * recognised by `(clientId, seq)`, resuming with `since`, a bounded history, batched frames,
 * refusals and close codes), over fake WebSockets whose messages travel with delays on the
 * (fake) timers. It also checks what clients send as strictly as the server's types do.
 */

import {
  diff,
  predictServerDiff,
  type Selection,
  SUBPROTOCOL,
  TextOperation,
  type WebSocketConstructor,
  type WebSocketLike,
} from "../src/index.js";

interface Member {
  socket: FakeSocket;
  clientId: string;
  name: string;
  batch: boolean;
  selection: Selection | undefined;
  viewer: boolean;
}

interface Committed {
  revision: number;
  clientId: string;
  ops: TextOperation;
}

type Frame = Record<string, unknown>;

export interface FakeServerOptions {
  code?: string;
  language?: string;
  /** How many operations the server keeps to transform and resume with (`DUET_HISTORY_OPS`). */
  historyLimit?: number;
  /** The longest a message takes to arrive, in (fake) milliseconds; each takes a random time up to it. */
  maxDelayMs?: number;
  /**
   * How long the server lets messages for a member gather before it writes them (0: at once).
   * What gathered goes as one batched frame to members that asked for batches.
   */
  batchWindowMs?: number;
  random?: () => number;
}

export class FakeServer {
  text: string;
  language: string;
  revision = 0;
  historyLimit: number;
  maxDelayMs: number;
  batchWindowMs: number;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** While true, new connections fail before they open, as with a server that is down. */
  down = false;
  /** An HTTP status to refuse upgrades with (the `ws` package reports it in its error). */
  refuseWith: number | undefined;
  /** The answer to every `autocomplete`. */
  suggestion = { suggestion: "nt", alternatives: [] as string[] };
  /** Whether to answer `autocomplete` at all. */
  answerCompletions = true;
  /** Refuse the next edits with this code (`unavailable`, say), once each. */
  readonly failNextEdits: string[] = [];

  readonly history: Committed[] = [];
  /** The text at each kept revision, for `code` messages and selections on older revisions. */
  private readonly texts = new Map<number, string>();
  readonly members = new Set<Member>();
  /** Every frame each client id sent, in order, as text. */
  readonly received: { clientId: string; text: string }[] = [];
  /** Per client id: its resume token, its last committed seq, and each committed seq's revision and bytes. */
  private readonly clients = new Map<
    string,
    { token: string; lastSeq: number; committed: Map<number, { revision: number; digest: string }> }
  >();
  readonly sockets: FakeSocket[] = [];
  private nextClient = 1;
  private readonly random: () => number;
  /** Tokens and the role they carry: a `viewer` token's edits are refused. */
  readonly tokens = new Map<string, "viewer" | "editor">();

  constructor(options: FakeServerOptions = {}) {
    this.text = options.code ?? "";
    this.language = options.language ?? "python";
    this.historyLimit = options.historyLimit ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 0;
    this.batchWindowMs = options.batchWindowMs ?? 0;
    this.random = options.random ?? Math.random;
    this.texts.set(0, this.text);
  }

  /** The WebSocket class to hand a `DuetClient`: its sockets connect to this server. */
  get WebSocket(): WebSocketConstructor {
    const server = this;
    return class extends FakeSocket {
      constructor(url: string, protocols: string[]) {
        super(server, url, protocols);
      }
    };
  }

  get oldestRevision(): number {
    return this.revision - Math.min(this.history.length, this.historyLimit);
  }

  /** Every frame received from a client id, read back as JSON. */
  sentBy(clientId: string): Frame[] {
    return this.received.filter((entry) => entry.clientId === clientId).map((entry) => JSON.parse(entry.text) as Frame);
  }

  delay(): number {
    return this.maxDelayMs === 0 ? 0 : Math.floor(this.random() * (this.maxDelayMs + 1));
  }

  /** Runs `action`, sending what it queues only at its end: several messages make one batched frame. */
  together(action: () => void): void {
    this.holding++;
    try {
      action();
    } finally {
      this.holding--;
      this.flush();
    }
  }

  private holding = 0;

  /** A change made by someone not connected over a WebSocket (a plain client, say). */
  commitFromOutside(clientId: string, operation: TextOperation): void {
    this.commit(clientId, operation, undefined);
  }

  /** Closes every member's connection with `code`, as a server shutting down (1001) or a deleted room (4404) does. */
  closeAll(code: number, reason = ""): void {
    for (const member of [...this.members]) {
      this.members.delete(member);
      member.socket.serverClose(code, reason);
    }
  }

  // The server's side of a socket.

  accept(socket: FakeSocket): void {
    if (this.down) {
      socket.fail("connect ECONNREFUSED 127.0.0.1:8000");
      return;
    }
    if (this.refuseWith !== undefined) {
      socket.fail(`Unexpected server response: ${this.refuseWith}`);
      return;
    }
    const url = new URL(socket.url);
    const query = url.searchParams;
    const token = query.get("token");
    const viewer = token !== null && this.tokens.get(token) === "viewer";
    let clientId = query.get("clientId");
    const resumeToken = query.get("resumeToken");
    const known = clientId === null ? undefined : this.clients.get(clientId);
    const connected = [...this.members].some((member) => member.clientId === clientId);
    const proved = clientId !== null && known !== undefined && known.token === resumeToken;
    if (clientId === null || (!proved && (connected || (known !== undefined && known.lastSeq > 0)))) {
      clientId = `client-${this.nextClient++}`;
    }
    if (!this.clients.has(clientId)) {
      this.clients.set(clientId, { token: `token-${clientId}-${this.nextClient++}`, lastSeq: 0, committed: new Map() });
    }
    // A client that proves who it is replaces its older connection.
    for (const member of [...this.members]) {
      if (member.clientId === clientId) {
        this.members.delete(member);
        member.socket.serverClose(4409, "replaced");
      }
    }
    const member: Member = {
      socket,
      clientId,
      name: query.get("name") ?? "",
      batch: query.get("batch") === "1",
      selection: undefined,
      viewer,
    };
    socket.member = member;
    socket.open(SUBPROTOCOL);
    const since = query.get("since");
    const welcome: Frame = {
      type: "welcome",
      clientId,
      resumeToken: this.clients.get(clientId)!.token,
      revision: this.revision,
      language: this.language,
    };
    // As duet-server does: the operations since `since` whenever it still has them, whether or
    // not the client proved its id (one that could not is a new client, told so by its id).
    if (since !== null && Number(since) >= this.oldestRevision && Number(since) <= this.revision) {
      welcome["ops"] = this.history
        .filter((committed) => committed.revision > Number(since))
        .map((committed) => ({ revision: committed.revision, clientId: committed.clientId, ops: committed.ops }));
    } else {
      welcome["code"] = this.text;
    }
    welcome["participants"] = [...this.members].map((other) => participant(other));
    const others = [...this.members];
    this.members.add(member);
    this.send(member, welcome);
    if (!others.some((other) => other.clientId === clientId)) {
      for (const other of others) {
        this.send(other, { type: "joined", clientId, name: member.name });
      }
    }
    this.flush();
  }

  /** Forgets the resume token it gave `clientId`, as a server whose key changed would. */
  forgetResumeToken(clientId: string): void {
    const known = this.clients.get(clientId);
    if (known !== undefined) {
      known.token = `forgotten-${this.nextClient++}`;
    }
  }

  /** A frame from an older connection of `clientId` that is gone, so that its answers are lost. */
  receiveFromGone(clientId: string, text: string): void {
    const gone: Member = {
      socket: undefined as unknown as FakeSocket,
      clientId,
      name: "",
      batch: false,
      selection: undefined,
      viewer: false,
    };
    this.together(() => {
      this.members.add(gone);
      this.receive(gone, text);
      this.members.delete(gone);
    });
  }

  receive(member: Member, text: string): void {
    if (!this.members.has(member)) {
      return;
    }
    this.received.push({ clientId: member.clientId, text });
    const message = parseClientMessage(text);
    if (typeof message === "string") {
      this.send(member, { type: "error", code: "bad_message", message });
      this.flush();
      return;
    }
    switch (message["type"]) {
      case "op":
      case "code":
        this.edit(member, message);
        break;
      case "presence": {
        const base = message["revision"] as number;
        const at = this.texts.get(base);
        if (at === undefined) {
          this.send(member, { type: "error", code: "resync_required", message: "too old" });
          break;
        }
        let selection = message["selection"] as Selection;
        for (const committed of this.history.filter((entry) => entry.revision > base)) {
          selection = committed.ops.transformSelection(selection);
        }
        member.selection = clamp(selection, this.text.length);
        for (const other of this.members) {
          if (other !== member) {
            this.send(other, participant(member, "presence"));
          }
        }
        break;
      }
      case "language":
        if (member.viewer) {
          this.send(member, { type: "error", code: "forbidden", message: "viewers cannot change the language" });
          break;
        }
        this.language = message["language"] as string;
        for (const other of this.members) {
          this.send(other, { type: "language", language: this.language });
        }
        break;
      case "autocomplete":
        if (this.answerCompletions) {
          this.send(member, {
            type: "suggestion",
            id: message["id"],
            suggestion: this.suggestion.suggestion,
            alternatives: this.suggestion.alternatives,
          });
        }
        break;
    }
    this.flush();
  }

  private edit(member: Member, message: Frame): void {
    const seq = message["seq"] as number;
    const base = message["revision"] as number;
    const client = this.clients.get(member.clientId)!;
    const refuse = (code: string, why: string) => this.send(member, { type: "error", code, message: why, seq });
    // A resend of something committed is acknowledged again, never applied twice.
    const digest = JSON.stringify({ ...message, selection: undefined });
    if (seq <= client.lastSeq) {
      const committed = client.committed.get(seq);
      if (committed === undefined) {
        refuse("bad_seq", `seq ${seq} was used before`);
      } else if (committed.digest !== digest) {
        refuse("seq_reused", `seq ${seq} was committed with another edit: ${committed.digest} then ${digest}`);
      } else {
        this.send(member, { type: "ack", seq, revision: committed.revision });
      }
      return;
    }
    if (member.viewer) {
      refuse("forbidden", "viewers cannot edit");
      return;
    }
    const failure = this.failNextEdits.shift();
    if (failure !== undefined) {
      refuse(failure, "refused on cue");
      return;
    }
    if (base > this.revision) {
      refuse("bad_revision", `revision ${base} is ahead of the room`);
      return;
    }
    if (base < this.oldestRevision) {
      refuse("resync_required", `revision ${base} is older than the history`);
      return;
    }
    let operation: TextOperation;
    if (message["type"] === "code") {
      // The server's Myers diff, where it is known; the plain one elsewhere.
      const before = this.texts.get(base)!;
      const after = message["code"] as string;
      operation = predictServerDiff(before, after) ?? diff(before, after);
    } else {
      operation = TextOperation.fromJSON(message["ops"]);
    }
    try {
      for (const committed of this.history.filter((entry) => entry.revision > base)) {
        [operation] = TextOperation.transform(operation, committed.ops);
      }
      operation.apply(this.text);
    } catch (error) {
      refuse("invalid_op", (error as Error).message);
      return;
    }
    const revision = this.commit(member.clientId, operation, { member, seq });
    client.lastSeq = seq;
    client.committed.set(seq, { revision, digest });
  }

  private commit(clientId: string, operation: TextOperation, author: { member: Member; seq: number } | undefined): number {
    this.text = operation.apply(this.text);
    this.revision++;
    this.history.push({ revision: this.revision, clientId, ops: operation });
    this.texts.set(this.revision, this.text);
    this.texts.delete(this.oldestRevision - 1);
    for (const member of this.members) {
      if (member.selection !== undefined) {
        member.selection = operation.transformSelection(member.selection);
      }
      if (member === author?.member) {
        this.send(member, { type: "ack", seq: author.seq, revision: this.revision });
      } else {
        this.send(member, { type: "op", revision: this.revision, clientId, ops: operation });
      }
    }
    this.flush();
    return this.revision;
  }

  // Sending: each member's messages are gathered and written as frames, batched when it asked.

  private readonly outbox = new Map<Member, Frame[]>();

  send(member: Member, message: Frame): void {
    const queued = this.outbox.get(member) ?? [];
    queued.push(message);
    this.outbox.set(member, queued);
  }

  private flush(): void {
    if (this.holding > 0) {
      return;
    }
    if (this.batchWindowMs > 0) {
      this.flushTimer ??= setTimeout(() => {
        this.flushTimer = undefined;
        this.write();
      }, Math.floor(this.random() * (this.batchWindowMs + 1)));
      return;
    }
    this.write();
  }

  private write(): void {
    for (const [member, messages] of this.outbox) {
      this.outbox.delete(member);
      if (!this.members.has(member)) {
        continue;
      }
      if (member.batch && messages.length >= 2) {
        member.socket.deliver(JSON.stringify(messages));
      } else {
        for (const message of messages) {
          member.socket.deliver(JSON.stringify(message));
        }
      }
    }
  }

  /** The socket's client went away. */
  left(member: Member): void {
    if (!this.members.delete(member)) {
      return;
    }
    if (![...this.members].some((other) => other.clientId === member.clientId)) {
      for (const other of this.members) {
        this.send(other, { type: "left", clientId: member.clientId });
      }
    }
    this.flush();
  }
}

function participant(member: Member, type?: string): Frame {
  const frame: Frame = type === undefined ? {} : { type };
  frame["clientId"] = member.clientId;
  frame["name"] = member.name;
  if (member.selection !== undefined) {
    frame["selection"] = member.selection;
  }
  return frame;
}

function clamp(selection: Selection, length: number): Selection {
  return { anchor: Math.min(selection.anchor, length), head: Math.min(selection.head, length) };
}

const FIELDS: Record<string, string[]> = {
  op: ["type", "revision", "seq", "ops", "selection"],
  code: ["type", "revision", "seq", "code"],
  presence: ["type", "revision", "selection"],
  language: ["type", "language"],
  autocomplete: ["type", "id", "revision", "cursorPosition"],
};

/** Reads a client's frame as strictly as the server's `ClientMessage` does; a string says what is wrong. */
function parseClientMessage(text: string): Frame | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return "not an object";
  }
  const message = json as Frame;
  const fields = FIELDS[message["type"] as string];
  if (fields === undefined) {
    return `unknown type ${String(message["type"])}`;
  }
  const unknown = Object.keys(message).filter((key) => !fields.includes(key));
  if (unknown.length > 0) {
    return `unknown fields ${unknown.join(", ")}`;
  }
  const count = (value: unknown) => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
  for (const field of ["revision", "seq", "cursorPosition"]) {
    if (fields.includes(field) && !count(message[field])) {
      return `${field} is missing or not a whole number`;
    }
  }
  if (message["type"] === "op") {
    try {
      TextOperation.fromJSON(message["ops"]);
    } catch (error) {
      return (error as Error).message;
    }
  }
  const selection = message["selection"] as Frame | undefined;
  if ((message["type"] === "presence" || selection !== undefined) && !(count(selection?.["anchor"]) && count(selection?.["head"]))) {
    return "a selection is {anchor, head}";
  }
  return message;
}

/**
 * A WebSocket whose other end is a `FakeServer`. Frames travel with a random delay each, in
 * order in each direction; `drop()` cuts the connection as a network failure does.
 */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  protocol = "";
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  member: Member | undefined;
  /** Extra time every frame of this socket takes, both ways. */
  lag = 0;
  /** Extra time every frame towards the server takes. */
  uplinkLag = 0;
  /** Every frame delivered to the client, as sent. */
  readonly frames: string[] = [];
  /** When the last frame towards each side is due: frames never overtake each other. */
  private clientDue = 0;
  private serverDue = 0;
  private cut = false;

  constructor(
    readonly server: FakeServer,
    readonly url: string,
    readonly protocols: string[],
  ) {
    server.sockets.push(this);
    this.towardsServer(() => server.accept(this));
  }

  get isOpen(): boolean {
    return this.readyState === 1;
  }

  send(data: string): void {
    if (this.readyState === 0) {
      throw new Error("InvalidStateError: still connecting");
    }
    if (this.readyState !== 1) {
      return;
    }
    this.towardsServer(() => {
      if (this.member !== undefined) {
        this.server.receive(this.member, data);
      }
    });
  }

  close(code = 1005, reason = ""): void {
    if (this.readyState >= 2) {
      return;
    }
    this.readyState = 2;
    this.towardsServer(() => {
      if (this.member !== undefined) {
        this.server.left(this.member);
      }
    });
    this.towardsClient(() => this.closed(code, reason));
  }

  /** Cuts the connection at once, as a lost network does: what is on its way is lost. */
  drop(): void {
    if (this.readyState >= 3) {
      return;
    }
    this.cut = true;
    if (this.member !== undefined) {
      this.server.left(this.member);
    }
    this.closed(1006, "");
  }

  // The server's side.

  open(protocol: string): void {
    this.towardsClient(() => {
      this.readyState = 1;
      this.protocol = this.protocols.includes(protocol) ? protocol : "";
      this.onopen?.({});
    });
  }

  fail(message: string): void {
    this.towardsClient(() => {
      this.readyState = 3;
      this.onerror?.({ message });
      this.onclose?.({ code: 1006, reason: "" });
    });
  }

  deliver(data: string): void {
    this.towardsClient(() => {
      if (this.readyState === 1) {
        this.frames.push(data);
        this.onmessage?.({ data });
      }
    });
  }

  serverClose(code: number, reason: string): void {
    this.towardsClient(() => this.closed(code, reason));
  }

  private closed(code: number, reason: string): void {
    if (this.readyState === 3) {
      return;
    }
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  private towardsServer(action: () => void): void {
    this.serverDue = this.schedule(this.serverDue, this.uplinkLag, action);
  }

  private towardsClient(action: () => void): void {
    this.clientDue = this.schedule(this.clientDue, 0, action);
  }

  /**
   * Runs `action` after a random delay, never before what was scheduled before it in the same
   * direction. (Fake timers run a timer of 0 ms made while they tick 1 ms later.)
   */
  private schedule(due: number, lag: number, action: () => void): number {
    const at = Math.max(due, Date.now() + this.server.delay() + this.lag + lag);
    setTimeout(() => {
      if (!this.cut) {
        action();
      }
    }, at - Date.now());
    return at;
  }
}
