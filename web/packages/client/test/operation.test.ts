/**
 * TextOperation: the wire form and normalisation the server uses, UTF-16 lengths, and the
 * algebra's laws on random operations (emoji and other surrogate pairs included).
 */

import { describe, expect, it } from "vitest";

import { diff, MAX_LENGTH, OperationError, predictServerDiff, TextOperation } from "../src/index.js";
import { randomOperation, randomText, seeded } from "./random.js";

const op = (...components: (number | string)[]) => TextOperation.fromJSON(components);

/** Runs `check` on `cases` seeded random cases; a failure names its seed. */
function property(cases: number, check: (random: () => number) => void): void {
  for (let seed = 1; seed <= cases; seed++) {
    try {
      check(seeded(seed));
    } catch (error) {
      throw new Error(`seed ${seed}: ${(error as Error).message}`, { cause: error });
    }
  }
}

describe("the wire form", () => {
  it("reads and writes ot.js's arrays, as the protocol's example", () => {
    const operation = op(5, "abc", -2, 10);
    expect(operation.baseLength).toBe(17);
    expect(operation.targetLength).toBe(18);
    expect(JSON.stringify(operation)).toBe('[5,"abc",-2,10]');
    expect(operation.apply("0123456789abcdefg")).toBe("01234abc789abcdefg");
  });

  it("is normalised as the server normalises it", () => {
    const cases: [(number | string)[], string][] = [
      [[1, 2, "a", "b", -1, -2], '[3,"ab",-3]'],
      // An insert after a delete goes before it (same effect), merging with an insert there.
      [[-2, "x"], '["x",-2]'],
      [["a", -2, "b", 3], '["ab",-2,3]'],
      [[2, -1, "y", -1, "z"], '[2,"yz",-2]'],
      [[], "[]"],
    ];
    for (const [components, wire] of cases) {
      expect(JSON.stringify(TextOperation.fromJSON(components)), JSON.stringify(components)).toBe(wire);
    }
    expect(JSON.stringify(new TextOperation().retain(0).insert("").delete(0))).toBe("[]");
  });

  it("refuses what the server refuses as bad_message", () => {
    const refused: unknown[] = [
      [0],
      [""],
      [1.5],
      [-0.5],
      [null],
      [true],
      [{ retain: 1 }],
      [[1]],
      "[1]",
      { ops: [1] },
      [MAX_LENGTH + 1],
      [MAX_LENGTH, 1],
      [Number.NaN],
      [Infinity],
    ];
    for (const json of refused) {
      expect(() => TextOperation.fromJSON(json), JSON.stringify(json)).toThrow(OperationError);
    }
    expect(TextOperation.fromJSON([MAX_LENGTH]).baseLength).toBe(MAX_LENGTH);
  });

  it("counts UTF-16 code units, as the server does", () => {
    expect("a😀b".length).toBe(4);
    const operation = op(1, "😀", 1);
    expect(operation.targetLength).toBe(4);
    expect(operation.apply("ab")).toBe("a😀b");
    expect(op(3, "c", 1).apply("a😀b")).toBe("a😀cb");
    expect(op(1, -2, 1).apply("a😀b")).toBe("ab");
  });

  it("refuses to cut a surrogate pair or to insert a NUL character", () => {
    expect(() => op(2, -2).apply("a😀b")).toThrow(/splits a surrogate pair/);
    expect(() => op(1, -1, 2).apply("a😀b")).toThrow(/splits a surrogate pair/);
    expect(() => op(2).apply("abc")).toThrow(/3/);
    expect(() => op("a\0b").apply("")).toThrow(/NUL/);
    // Composing may not cut an insert's pair either.
    expect(() => op("😀").compose(op(1, "x", 1))).toThrow(/surrogate/);
    expect(() => op("😀").compose(op(-1, 1))).toThrow(/surrogate/);
  });
});

describe("the algebra", () => {
  it("composes: applying a then b is applying their composition", () => {
    property(1000, (random) => {
      const text = randomText(random, 16);
      const a = randomOperation(random, text);
      const middle = a.apply(text);
      const b = randomOperation(random, middle);
      const composed = a.compose(b);
      expect(composed.baseLength).toBe(text.length);
      expect(composed.apply(text)).toBe(b.apply(middle));
    });
  });

  it("composes associatively", () => {
    property(500, (random) => {
      const text = randomText(random, 12);
      const a = randomOperation(random, text);
      const b = randomOperation(random, a.apply(text));
      const c = randomOperation(random, b.apply(a.apply(text)));
      expect(a.compose(b).compose(c).toJSON()).toEqual(a.compose(b.compose(c)).toJSON());
    });
  });

  it("transforms: both orders reach the same text", () => {
    property(1000, (random) => {
      const text = randomText(random, 16);
      const a = randomOperation(random, text);
      const b = randomOperation(random, text);
      const [aPrime, bPrime] = TextOperation.transform(a, b);
      const viaA = bPrime.apply(a.apply(text));
      expect(aPrime.apply(b.apply(text))).toBe(viaA);
      expect(a.compose(bPrime).toJSON()).toEqual(b.compose(aPrime).toJSON());
    });
  });

  it("puts the first operation's insert first at a tie, as the server places the later one", () => {
    const [mine, theirs] = TextOperation.transform(op(1, "X", 1), op(1, "Y", 1));
    expect(mine.apply(op(1, "Y", 1).apply("ab"))).toBe("aXYb");
    expect(theirs.toJSON()).toEqual([2, "Y", 1]);
    // docs/PROTOCOL.md's exchange: Bob's "!" moved past Alice's emoji.
    const [bobs] = TextOperation.transform(op(2, "!"), op(1, "😀", 1));
    expect(JSON.stringify(bobs)).toBe("[4,\"!\"]");
  });

  it("inverts", () => {
    property(500, (random) => {
      const text = randomText(random, 16);
      const operation = randomOperation(random, text);
      const after = operation.apply(text);
      expect(operation.invert(text).apply(after)).toBe(text);
      expect(operation.invert(text).invert(after).toJSON()).toEqual(operation.toJSON());
    });
  });

  it("refuses operations on texts of other lengths", () => {
    expect(() => op(1).compose(op(2))).toThrow(OperationError);
    expect(() => TextOperation.transform(op(1), op(2))).toThrow(OperationError);
    expect(() => op(1).invert("ab")).toThrow(OperationError);
  });
});

describe("positions", () => {
  it("move past text inserted where they are, and back over deletes", () => {
    const cases: [(number | string)[], number, number][] = [
      [[2, "xy", 2], 1, 1],
      [[2, "xy", 2], 2, 4],
      [[2, "xy", 2], 3, 5],
      [[1, -2, 1], 0, 0],
      [[1, -2, 1], 2, 1],
      [[1, -2, 1], 3, 1],
      [[1, -2, 1], 4, 2],
      [["😀", 1], 0, 2],
      [[1], 9, 9],
    ];
    for (const [components, before, after] of cases) {
      expect(TextOperation.fromJSON(components).transformPosition(before), `${JSON.stringify(components)} @ ${before}`).toBe(
        after,
      );
    }
  });

  it("map selections as the text changes", () => {
    expect(op(1, "😀", 3).transformSelection({ anchor: 1, head: 4 })).toEqual({ anchor: 3, head: 6 });
  });

  it("go back over an operation: inserted text collapses to where it was made", () => {
    const operation = op(2, "xy", -1, 2);
    expect([0, 1, 2, 3, 4, 5, 6].map((position) => operation.untransformPosition(position))).toEqual([
      0, 1, 2, 2, 2, 4, 5,
    ]);
    property(500, (random) => {
      const text = randomText(random, 12);
      const change = randomOperation(random, text);
      for (let position = 0; position <= text.length; position++) {
        const after = change.transformPosition(position);
        expect(after).toBeLessThanOrEqual(change.targetLength);
        // Back to the earliest position that ends up there: where it was, or the start of a
        // delete it was in.
        const back = change.untransformPosition(after);
        expect(back).toBeLessThanOrEqual(position);
        expect(change.transformPosition(back)).toBe(after);
      }
    });
  });
});

describe("editor helpers", () => {
  it("replace builds an editor's change", () => {
    expect(TextOperation.replace(5, 1, 2, "xyz").toJSON()).toEqual([1, "xyz", -2, 2]);
    expect(() => TextOperation.replace(3, 2, 2, "")).toThrow(OperationError);
  });

  it("diff keeps the common start and end, never cutting a pair", () => {
    expect(diff("let x = 1;", "let x = 10;").toJSON()).toEqual([9, "0", 1]);
    expect(diff("same", "same").toJSON()).toEqual([4]);
    expect(diff("", "new").toJSON()).toEqual(["new"]);
    // 😀 and 😁 share their first unit: the change starts at the character, not inside it.
    expect(diff("a😀b", "a😁b").toJSON()).toEqual([1, "😁", -2, 1]);
    property(1000, (random) => {
      const before = randomText(random, 10);
      const after = randomText(random, 10);
      expect(diff(before, after).apply(before)).toBe(after);
    });
  });

  it("predicts the server's diff of a code message where it can be certain", () => {
    // Checked against the server's own diff (similar's Myers with its clean-up) on 40,000 random
    // pairs; these are the shapes that matter.
    expect(predictServerDiff("ab", "aXb")?.toJSON()).toEqual([1, "X", 1]);
    expect(predictServerDiff("aa", "aaa")?.toJSON()).toEqual([2, "a"]);
    expect(predictServerDiff("abc", "ac")?.toJSON()).toEqual([1, -1, 1]);
    // A replacement's insert slides down over kept text that starts with its own first character.
    expect(predictServerDiff("😁baaa", "bbaaa")?.toJSON()).toEqual([-2, 1, "b", 3]);
    expect(predictServerDiff("bé😁ba\né", "bbbaba\né")?.toJSON()).toEqual([1, -3, 1, "bab", 3]);
    // Removed and inserted text sharing a character: Myers' choice is not predicted.
    expect(predictServerDiff("xaby", "xbay")).toBeUndefined();
    property(500, (random) => {
      const before = randomText(random, 8);
      const after = randomText(random, 8);
      const predicted = predictServerDiff(before, after);
      if (predicted !== undefined) {
        expect(predicted.apply(before)).toBe(after);
      }
    });
  });
});
