/**
 * Text operations: the unit of concurrent editing, exactly as Duet's server
 * (`crates/domain/src/operation.rs`) and ot.js define them.
 *
 * An operation walks a whole document from start to end as a list of components: keep (retain)
 * so many characters, insert a string, delete so many characters. Lengths and positions count
 * UTF-16 code units, which is what a JavaScript string's `length` counts (`"😀".length === 2`),
 * as CodeMirror, Monaco and LSP do. The JSON form is ot.js's: `[5, "abc", -2, 10]` keeps 5,
 * inserts "abc", deletes 2 and keeps 10.
 *
 * Operations are normalised as the server normalises them, so that the same edit has the same
 * bytes on both sides: no empty components, no two adjacent components of one kind, and an
 * insert never directly after a delete (it goes before it, which has the same effect).
 *
 * `transform(a, b)` puts `a`'s insert first when both insert at the same place. The server
 * passes the operation it is committing as `a` and what it committed before as `b`, so at a
 * tie the later operation's insert goes first; clients pass their own unacknowledged operation
 * as `a` for the same reason (the server will receive it after the one it is crossing).
 */

/** One component in the wire form: a positive count retains, a negative one deletes, a string inserts. */
export type Component = number | string;

/** Why an operation cannot be built, read, applied, composed or transformed. */
export class OperationError extends Error {
  override name = "OperationError";
}

/** The most UTF-16 code units an operation may span, before or after: JavaScript's largest exact integer. */
export const MAX_LENGTH = Number.MAX_SAFE_INTEGER;

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/** Whether `position` falls between the two halves of a surrogate pair in `text`. */
export function splitsSurrogatePair(text: string, position: number): boolean {
  return (
    position > 0 &&
    position < text.length &&
    isHighSurrogate(text.charCodeAt(position - 1)) &&
    isLowSurrogate(text.charCodeAt(position))
  );
}

/** Whether `text` holds a surrogate half without its partner (JSON cannot carry it to the server as text). */
export function hasLoneSurrogate(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (isHighSurrogate(code)) {
      if (index + 1 < text.length && isLowSurrogate(text.charCodeAt(index + 1))) {
        index++;
      } else {
        return true;
      }
    } else if (isLowSurrogate(code)) {
      return true;
    }
  }
  return false;
}

const isRetain = (component: Component | undefined): component is number =>
  typeof component === "number" && component > 0;
const isDelete = (component: Component | undefined): component is number =>
  typeof component === "number" && component < 0;
const isInsert = (component: Component | undefined): component is string => typeof component === "string";

function checkCount(count: number, what: string): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new OperationError(`${what} count must be a whole number from 0 to ${MAX_LENGTH}, not ${count}`);
  }
}

/**
 * A normalised text operation. Build one with the chainable `retain`, `insert` and `delete`
 * (each returns the same, changed, operation), or read one with `fromJSON`.
 */
export class TextOperation {
  /** The components in wire form, normalised. Do not change them: use the builders. */
  readonly ops: Component[] = [];
  /** The length of the text this operation applies to. */
  baseLength = 0;
  /** The length of the text it produces. */
  targetLength = 0;

  /** Appends a retain, merging it into a retain before it. */
  retain(count: number): this {
    checkCount(count, "retain");
    if (count === 0) {
      return this;
    }
    this.grow(count, count);
    const last = this.ops.length - 1;
    if (isRetain(this.ops[last])) {
      this.ops[last] = (this.ops[last] as number) + count;
    } else {
      this.ops.push(count);
    }
    return this;
  }

  /** Appends an insert, merging it into an insert before it and placing it before a trailing delete. */
  insert(text: string): this {
    if (typeof text !== "string") {
      throw new OperationError("an insert must be a string");
    }
    if (text.length === 0) {
      return this;
    }
    this.grow(0, text.length);
    const ops = this.ops;
    const last = ops.length - 1;
    if (isInsert(ops[last])) {
      ops[last] = (ops[last] as string) + text;
    } else if (isDelete(ops[last])) {
      if (isInsert(ops[last - 1])) {
        ops[last - 1] = (ops[last - 1] as string) + text;
      } else {
        ops.splice(last, 0, text);
      }
    } else {
      ops.push(text);
    }
    return this;
  }

  /** Appends a delete of `count` units (a positive number), merging it into a delete before it. */
  delete(count: number): this {
    checkCount(count, "delete");
    if (count === 0) {
      return this;
    }
    this.grow(count, 0);
    const last = this.ops.length - 1;
    if (isDelete(this.ops[last])) {
      this.ops[last] = (this.ops[last] as number) - count;
    } else {
      this.ops.push(-count);
    }
    return this;
  }

  private grow(base: number, target: number): void {
    if (this.baseLength + base > MAX_LENGTH || this.targetLength + target > MAX_LENGTH) {
      throw new OperationError(`an operation may span at most ${MAX_LENGTH} UTF-16 code units`);
    }
    this.baseLength += base;
    this.targetLength += target;
  }

  /** Whether applying it changes nothing. */
  isNoop(): boolean {
    return this.ops.every(isRetain);
  }

  equals(other: TextOperation): boolean {
    return (
      this.baseLength === other.baseLength &&
      this.targetLength === other.targetLength &&
      this.ops.length === other.ops.length &&
      this.ops.every((component, index) => component === other.ops[index])
    );
  }

  /** The wire form: `[5, "abc", -2]`. `JSON.stringify(operation)` writes it. */
  toJSON(): Component[] {
    return this.ops.slice();
  }

  toString(): string {
    return JSON.stringify(this.ops);
  }

  /**
   * Reads the wire form, refusing what the server refuses as `bad_message`: anything but an
   * array of non-zero whole numbers and non-empty strings, or lengths past `MAX_LENGTH`.
   */
  static fromJSON(json: unknown): TextOperation {
    if (!Array.isArray(json)) {
      throw new OperationError("an operation is an array of components");
    }
    const operation = new TextOperation();
    for (const component of json as unknown[]) {
      if (typeof component === "string") {
        if (component.length === 0) {
          throw new OperationError("an insert must not be empty");
        }
        operation.insert(component);
      } else if (typeof component === "number" && Number.isSafeInteger(component) && component !== 0) {
        if (component > 0) {
          operation.retain(component);
        } else {
          operation.delete(-component);
        }
      } else {
        throw new OperationError(`not an operation component: ${JSON.stringify(component)}`);
      }
    }
    return operation;
  }

  /**
   * The operation that replaces `deleteCount` units at `position` with `text`, in a document of
   * `documentLength` units: what an editor's change event describes.
   */
  static replace(documentLength: number, position: number, deleteCount: number, text: string): TextOperation {
    if (position < 0 || deleteCount < 0 || position + deleteCount > documentLength) {
      throw new OperationError(
        `a change at ${position} of ${deleteCount} units does not fit a text of ${documentLength}`,
      );
    }
    return new TextOperation()
      .retain(position)
      .insert(text)
      .delete(deleteCount)
      .retain(documentLength - position - deleteCount);
  }

  /**
   * Applies the operation to a string. Refuses, as the server does, a text of another length,
   * a retain or delete that ends inside a surrogate pair, and an insert holding a NUL character.
   */
  apply(text: string): string {
    if (text.length !== this.baseLength) {
      throw new OperationError(
        `the operation applies to a text of ${this.baseLength} UTF-16 code units, not ${text.length}`,
      );
    }
    const parts: string[] = [];
    let position = 0;
    for (const component of this.ops) {
      if (isInsert(component)) {
        if (component.includes("\0")) {
          throw new OperationError("a room's code may not hold a NUL character");
        }
        parts.push(component);
        continue;
      }
      const count = Math.abs(component);
      const end = position + count;
      if (splitsSurrogatePair(text, end)) {
        throw new OperationError(`position ${end} splits a surrogate pair`);
      }
      if (component > 0) {
        parts.push(text.slice(position, end));
      }
      position = end;
    }
    return parts.join("");
  }

  /** The operation that undoes this one on `text` (the text it applies to). */
  invert(text: string): TextOperation {
    if (text.length !== this.baseLength) {
      throw new OperationError(
        `the operation applies to a text of ${this.baseLength} UTF-16 code units, not ${text.length}`,
      );
    }
    const inverse = new TextOperation();
    let position = 0;
    for (const component of this.ops) {
      if (isInsert(component)) {
        inverse.delete(component.length);
      } else if (component > 0) {
        inverse.retain(component);
        position += component;
      } else {
        inverse.insert(text.slice(position, position - component));
        position -= component;
      }
    }
    return inverse;
  }

  /** The single operation with the effect of this one followed by `next`. */
  compose(next: TextOperation): TextOperation {
    if (this.targetLength !== next.baseLength) {
      throw new OperationError(
        `cannot compose: the second operation applies to ${next.baseLength} units, the first produces ${this.targetLength}`,
      );
    }
    const composed = new TextOperation();
    const first = new Pieces(this.ops);
    const second = new Pieces(next.ops);
    let a = first.next();
    let b = second.next();
    for (;;) {
      if (a === undefined && b === undefined) {
        break;
      }
      if (isDelete(a)) {
        composed.delete(-a);
        a = first.next();
        continue;
      }
      if (isInsert(b)) {
        composed.insert(b);
        b = second.next();
        continue;
      }
      if (a === undefined || b === undefined) {
        throw new OperationError("cannot compose operations of different lengths");
      }
      if (isRetain(a) && isRetain(b)) {
        const common = Math.min(a, b);
        composed.retain(common);
        a = first.restOrNext(a - common);
        b = second.restOrNext(b - common);
      } else if (isInsert(a) && isDelete(b)) {
        const common = Math.min(a.length, -b);
        a = first.restOrNext(splitInsert(a, common)[1]);
        b = second.restOrNext(b + common);
      } else if (isInsert(a) && isRetain(b)) {
        const common = Math.min(a.length, b);
        const [head, rest] = splitInsert(a, common);
        composed.insert(head);
        a = first.restOrNext(rest);
        b = second.restOrNext(b - common);
      } else if (isRetain(a) && isDelete(b)) {
        const common = Math.min(a, -b);
        composed.delete(common);
        a = first.restOrNext(a - common);
        b = second.restOrNext(b + common);
      }
    }
    return composed;
  }

  /**
   * Transforms two concurrent operations on the same text into `[a', b']` such that applying
   * `a` then `b'` gives what applying `b` then `a'` gives. When both insert at one place, `a`'s
   * insert comes first.
   */
  static transform(a: TextOperation, b: TextOperation): [TextOperation, TextOperation] {
    if (a.baseLength !== b.baseLength) {
      throw new OperationError(
        `cannot transform operations on texts of ${a.baseLength} and ${b.baseLength} units`,
      );
    }
    const aPrime = new TextOperation();
    const bPrime = new TextOperation();
    const first = new Pieces(a.ops);
    const second = new Pieces(b.ops);
    let x = first.next();
    let y = second.next();
    for (;;) {
      if (x === undefined && y === undefined) {
        break;
      }
      if (isInsert(x)) {
        aPrime.insert(x);
        bPrime.retain(x.length);
        x = first.next();
        continue;
      }
      if (isInsert(y)) {
        aPrime.retain(y.length);
        bPrime.insert(y);
        y = second.next();
        continue;
      }
      if (x === undefined || y === undefined) {
        throw new OperationError("cannot transform operations of different lengths");
      }
      if (isRetain(x) && isRetain(y)) {
        const common = Math.min(x, y);
        aPrime.retain(common);
        bPrime.retain(common);
        x = first.restOrNext(x - common);
        y = second.restOrNext(y - common);
      } else if (isDelete(x) && isDelete(y)) {
        const common = Math.min(-x, -y);
        x = first.restOrNext(x + common);
        y = second.restOrNext(y + common);
      } else if (isDelete(x) && isRetain(y)) {
        const common = Math.min(-x, y);
        aPrime.delete(common);
        x = first.restOrNext(x + common);
        y = second.restOrNext(y - common);
      } else if (isRetain(x) && isDelete(y)) {
        const common = Math.min(x, -y);
        bPrime.delete(common);
        x = first.restOrNext(x - common);
        y = second.restOrNext(y + common);
      }
    }
    return [aPrime, bPrime];
  }

  /**
   * Where a position in the text before this operation ends up after it. A position where text
   * is inserted moves past the insert, as in ot.js and on the server.
   */
  transformPosition(position: number): number {
    let remaining = position;
    let moved = position;
    for (const component of this.ops) {
      if (isRetain(component)) {
        if (component > remaining) {
          break;
        }
        remaining -= component;
      } else if (isInsert(component)) {
        moved += component.length;
      } else {
        const count = -component;
        moved -= Math.min(count, remaining);
        if (count > remaining) {
          break;
        }
        remaining -= count;
      }
    }
    return moved;
  }

  /** The same selection after this operation. */
  transformSelection(selection: Selection): Selection {
    return {
      anchor: this.transformPosition(selection.anchor),
      head: this.transformPosition(selection.head),
    };
  }

  /**
   * Where a position in the text after this operation was before it: the opposite of
   * `transformPosition`. A position inside inserted text goes to where the insert was made.
   * Used to send positions the server has not seen the operation for (an `autocomplete`
   * cursor while edits are unacknowledged).
   */
  untransformPosition(position: number): number {
    let before = 0;
    let after = 0;
    for (const component of this.ops) {
      if (after === position) {
        // The earliest place: before a delete rather than after it.
        return before;
      }
      if (isRetain(component)) {
        if (after + component >= position) {
          return before + (position - after);
        }
        before += component;
        after += component;
      } else if (isInsert(component)) {
        if (after + component.length >= position) {
          return before;
        }
        after += component.length;
      } else {
        before -= component;
      }
    }
    return Math.min(before, this.baseLength);
  }
}

/** A selection, in UTF-16 code units: `anchor` stays put, `head` moves; equal for a cursor. */
export interface Selection {
  anchor: number;
  head: number;
}

/** Splits an insert after `units` code units, refusing to cut a surrogate pair (as the server does). */
function splitInsert(text: string, units: number): [string, string] {
  if (splitsSurrogatePair(text, units)) {
    throw new OperationError(`position ${units} splits a surrogate pair`);
  }
  return [text.slice(0, units), text.slice(units)];
}

/** Walks an operation's components, one possibly cut short at a time. */
class Pieces {
  private index = 0;

  constructor(private readonly ops: readonly Component[]) {}

  next(): Component | undefined {
    return this.ops[this.index++];
  }

  /** What is left of the current piece, or the next piece when nothing is left. */
  restOrNext(rest: Component): Component | undefined {
    return rest === 0 || rest === "" ? this.next() : rest;
  }
}
