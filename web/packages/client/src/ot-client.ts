/**
 * The client's side of central-server OT: ot.js's `Client`, rule for rule the same as Duet's
 * Rust `duet_domain::Client` (`crates/domain/src/client.rs`).
 *
 * A client has at most one operation in flight: sent, and not yet acknowledged. Edits made
 * meanwhile are composed into a buffer, which is sent as one operation when the acknowledgement
 * arrives. An operation from someone else that arrives meanwhile is transformed over the
 * operation in flight and then over the buffer, and what comes out is applied to the local
 * text. These are ot.js's three states: synchronized, awaiting confirm, awaiting with buffer.
 *
 * It is pure: it keeps operations, not text, sends nothing and knows no socket. It says what
 * to send (`Outgoing`: the `seq`, base `revision` and `ops` of a `duet.v1` `op` message), and
 * the caller applies what `applyRemote` returns to its text. `DuetClient` drives it over a
 * WebSocket; tests and other transports can drive it directly.
 *
 * A client that lost its connection keeps its `OtClient`, reconnects with `since` set to
 * `revision`, hands each operation the `welcome` lists to `catchUp` (its own ones acknowledge,
 * the others apply), and then sends `resend()`: the operation in flight with the `seq` and base
 * it was first sent with, which the server recognises if it already committed it.
 */

import { OperationError, type Selection, TextOperation } from "./operation.js";

/** An operation to send: a `duet.v1` `op` message's `seq`, base `revision` and `ops`. */
export interface Outgoing {
  /** Numbers the client's operations, in the order it sends them; a resend keeps it. */
  readonly seq: number;
  /** The server revision the operation was made on. */
  readonly revision: number;
  readonly operation: TextOperation;
}

/**
 * Why a client cannot take what it was given. The client is unchanged, but its text and the
 * server's no longer agree (a message was lost, or the server is broken): the way on is to
 * reconnect without `since` and resynchronise on the whole text.
 */
export class ClientStateError extends Error {
  override name = "ClientStateError";
}

/** The operation in flight: as sent (for resending), and moved past what arrived since (for transforming what arrives next). */
interface InFlight {
  readonly sent: Outgoing;
  transformed: TextOperation;
  /** How many local edits it holds. */
  readonly edits: number;
}

interface Buffer {
  operation: TextOperation;
  edits: number;
}

/** The largest sequence number: JavaScript's largest exact integer, as in the protocol. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

export class OtClient {
  private revisionSeen: number;
  /** The local text's length in UTF-16 code units. */
  private length: number;
  /** The last sequence number used (0: none yet). */
  private lastSeq: number;
  private inFlight: InFlight | undefined;
  private pending: Buffer | undefined;

  /**
   * A client synchronized at `revision` on a text of `length` UTF-16 code units (a `welcome`'s
   * `revision` and `code`); its first operation gets `seq` `lastSeq + 1`.
   */
  constructor(revision: number, length: number, lastSeq = 0) {
    this.revisionSeen = revision;
    this.length = length;
    this.lastSeq = lastSeq;
  }

  /** The last server revision the client has seen. */
  get revision(): number {
    return this.revisionSeen;
  }

  /** The local text's length, in UTF-16 code units. */
  get textLength(): number {
    return this.length;
  }

  /** Whether every local edit was acknowledged (nothing in flight, nothing buffered). */
  get isSynchronized(): boolean {
    return this.inFlight === undefined;
  }

  /** The operation in flight, as it was sent. */
  get outstanding(): Outgoing | undefined {
    return this.inFlight?.sent;
  }

  /**
   * The operation in flight as it applies to the server's text at `revision` (moved past what
   * arrived since it was sent): what the server commits when it acknowledges it.
   */
  get inFlightOperation(): TextOperation | undefined {
    return this.inFlight?.transformed;
  }

  /** The local edits waiting behind the operation in flight, composed into one. */
  get buffer(): TextOperation | undefined {
    return this.pending?.operation;
  }

  /** How many local edits are not acknowledged yet (in flight and buffered). */
  get unacknowledgedEdits(): number {
    return (this.inFlight?.edits ?? 0) + (this.pending?.edits ?? 0);
  }

  /**
   * The unacknowledged local edits as one operation on the server's text at `revision` (the
   * operation in flight, moved past what arrived since, then the buffer), or undefined.
   */
  get unacknowledged(): TextOperation | undefined {
    if (this.inFlight === undefined) {
      return undefined;
    }
    return this.pending === undefined
      ? this.inFlight.transformed
      : this.inFlight.transformed.compose(this.pending.operation);
  }

  /** The server's text length at `revision`: the local text without the unacknowledged edits. */
  get serverLength(): number {
    return this.inFlight === undefined ? this.length : this.inFlight.transformed.baseLength;
  }

  /**
   * A local edit, already applied to the local text: returns what to send now if nothing was in
   * flight; otherwise the edit joins the buffer and nothing is returned.
   */
  applyLocal(operation: TextOperation): Outgoing | undefined {
    if (operation.baseLength !== this.length) {
      throw new OperationError(
        `the local edit applies to a text of ${operation.baseLength} units, but the local text has ${this.length}`,
      );
    }
    let outgoing: Outgoing | undefined;
    if (this.inFlight === undefined) {
      outgoing = this.send(operation, 1);
    } else if (this.pending === undefined) {
      this.pending = { operation, edits: 1 };
    } else {
      this.pending = { operation: this.pending.operation.compose(operation), edits: this.pending.edits + 1 };
    }
    this.length = operation.targetLength;
    return outgoing;
  }

  /**
   * The server committed the operation in flight, `seq`, as `revision`: returns the buffer, to
   * send now, if there is one.
   */
  acknowledge(seq: number, revision: number): Outgoing | undefined {
    const inFlight = this.inFlight?.sent.seq;
    if (inFlight !== seq) {
      throw new ClientStateError(`acknowledgement of seq ${seq}, but the operation in flight is ${inFlight ?? "none"}`);
    }
    this.checkNext(revision);
    if (this.pending !== undefined) {
      // Checked first, so that a refusal changes nothing.
      this.nextSeq();
    }
    this.revisionSeen = revision;
    this.inFlight = undefined;
    const buffer = this.pending;
    this.pending = undefined;
    return buffer === undefined ? undefined : this.send(buffer.operation, buffer.edits);
  }

  /**
   * Someone else's operation, committed as `revision`: returns it as it applies to the local
   * text (moved past the operation in flight and the buffer), for the caller to apply.
   */
  applyRemote(revision: number, operation: TextOperation): TextOperation {
    this.checkNext(revision);
    if (operation.baseLength !== this.serverLength) {
      throw new OperationError(
        `the operation applies to a text of ${operation.baseLength} units, but the server's text has ${this.serverLength}`,
      );
    }
    // ot.js's rule: the remote operation crosses the client's own operations that the server
    // has not ordered yet, in the order they were made; at each crossing the client's operation
    // is the first argument, as the server, which receives it later, places it. Everything is
    // computed before anything changes, so a refusal changes nothing.
    let remote = operation;
    let inFlight: TextOperation | undefined;
    let buffer: TextOperation | undefined;
    if (this.inFlight !== undefined) {
      [inFlight, remote] = TextOperation.transform(this.inFlight.transformed, remote);
      if (this.pending !== undefined) {
        [buffer, remote] = TextOperation.transform(this.pending.operation, remote);
      }
    }
    if (this.inFlight !== undefined && inFlight !== undefined) {
      this.inFlight.transformed = inFlight;
    }
    if (this.pending !== undefined && buffer !== undefined) {
      this.pending.operation = buffer;
    }
    this.revisionSeen = revision;
    this.length = remote.targetLength;
    return remote;
  }

  /**
   * One of the operations a `welcome` lists for a resumed client, in order: an `own` one
   * acknowledges the operation in flight (the buffer then waits for `resend`), another's is
   * applied as by `applyRemote` and returned.
   */
  catchUp(revision: number, own: boolean, operation: TextOperation): TextOperation | undefined {
    if (!own) {
      return this.applyRemote(revision, operation);
    }
    const seq = this.inFlight?.sent.seq;
    if (seq === undefined) {
      throw new ClientStateError("an own operation in a welcome, but nothing is in flight");
    }
    // The buffer, if any, is in flight now: `resend` hands it over.
    this.acknowledge(seq, revision);
    return undefined;
  }

  /**
   * What to send after reconnecting (once the `welcome`'s operations went through `catchUp`),
   * or after the server refused it as `unavailable`: the operation in flight, with the `seq`
   * and base revision it was first sent with.
   */
  resend(): Outgoing | undefined {
    return this.inFlight?.sent;
  }

  /**
   * Gives the operation in flight a new sequence number, keeping its base and operation: for a
   * refusal as `bad_seq` or `seq_reused` (the server took nothing).
   */
  renumber(): Outgoing | undefined {
    if (this.inFlight === undefined) {
      return undefined;
    }
    const seq = this.nextSeq();
    this.lastSeq = seq;
    this.inFlight = { ...this.inFlight, sent: { ...this.inFlight.sent, seq } };
    return this.inFlight.sent;
  }

  /**
   * Drops the operation in flight, which the server refused for good (`forbidden`,
   * `room_too_large`): returns the operation that takes the local text back to the server's
   * (with the buffer kept), given `serverText`, the server's text at `revision`. The buffer,
   * moved onto the server's text, is then in flight and returned as `next` to send.
   */
  dropInFlight(serverText: string): { revert: TextOperation; next: Outgoing | undefined } | undefined {
    if (this.inFlight === undefined) {
      return undefined;
    }
    const undo = this.inFlight.transformed.invert(serverText);
    let revert = undo;
    let buffer: TextOperation | undefined;
    if (this.pending !== undefined) {
      [buffer, revert] = TextOperation.transform(this.pending.operation, undo);
    }
    const edits = this.pending?.edits ?? 0;
    this.inFlight = undefined;
    this.pending = undefined;
    this.length = serverText.length;
    let next: Outgoing | undefined;
    if (buffer !== undefined && !buffer.isNoop()) {
      next = this.send(buffer, edits);
      this.length = buffer.targetLength;
    }
    return { revert, next };
  }

  /**
   * Starts again from a whole text (a `welcome` with `code`): synchronized at `revision` on a
   * text of `length` units. Sequence numbers go on, as the server remembers each one. Returns
   * whether unacknowledged edits were dropped.
   */
  resynchronize(revision: number, length: number): boolean {
    const dropped = !this.isSynchronized;
    this.revisionSeen = revision;
    this.length = length;
    this.inFlight = undefined;
    this.pending = undefined;
    return dropped;
  }

  /** Where a selection in the server's text at `revision` is in the local text. */
  selectionToLocal(selection: Selection): Selection {
    let moved = selection;
    if (this.inFlight !== undefined) {
      moved = this.inFlight.transformed.transformSelection(moved);
    }
    if (this.pending !== undefined) {
      moved = this.pending.operation.transformSelection(moved);
    }
    return moved;
  }

  /** Where a position in the local text is in the server's text at `revision`. */
  positionToServer(position: number): number {
    let moved = position;
    if (this.pending !== undefined) {
      moved = this.pending.operation.untransformPosition(moved);
    }
    if (this.inFlight !== undefined) {
      moved = this.inFlight.transformed.untransformPosition(moved);
    }
    return moved;
  }

  /** Checks that `revision` is the one after the client's: the server sends every revision, in order. */
  private checkNext(revision: number): void {
    if (revision !== this.revisionSeen + 1) {
      throw new ClientStateError(`revision ${revision} does not follow revision ${this.revisionSeen}`);
    }
  }

  private nextSeq(): number {
    const seq = this.lastSeq + 1;
    if (seq > MAX_SEQ) {
      throw new ClientStateError(`no sequence number is left (the largest is ${MAX_SEQ})`);
    }
    return seq;
  }

  /** Puts `operation` in flight on the client's revision with the next sequence number. */
  private send(operation: TextOperation, edits: number): Outgoing {
    const seq = this.nextSeq();
    const sent: Outgoing = { seq, revision: this.revisionSeen, operation };
    this.lastSeq = seq;
    this.inFlight = { sent, transformed: operation, edits };
    return sent;
  }
}
