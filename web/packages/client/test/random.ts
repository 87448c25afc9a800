/**
 * Seeded randomness for property-style tests: a failing case names its seed, and running with
 * that seed replays it.
 */

import { TextOperation } from "../src/index.js";

/** mulberry32: small, fast and good enough to pick test cases. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Characters of one and two UTF-16 units, and a line break: enough to collide and to cut pairs. */
const CHARACTERS = ["a", "b", "c", "\n", "é", "😀", "👍🏽", "中", "𝄞"];

export function randomInt(random: () => number, below: number): number {
  return Math.floor(random() * below);
}

export function randomText(random: () => number, maxCharacters: number): string {
  let text = "";
  const count = randomInt(random, maxCharacters + 1);
  for (let index = 0; index < count; index++) {
    text += CHARACTERS[randomInt(random, CHARACTERS.length)];
  }
  return text;
}

/** A random operation on `text` that never cuts a surrogate pair (as an editor's edits never do). */
export function randomOperation(random: () => number, text: string): TextOperation {
  const characters = Array.from(text);
  const operation = new TextOperation();
  let index = 0;
  while (index < characters.length) {
    const take = 1 + randomInt(random, Math.min(4, characters.length - index));
    const units = characters.slice(index, index + take).join("").length;
    const choice = random();
    if (choice < 0.2) {
      operation.insert(randomText(random, 3) || "x");
    } else if (choice < 0.5) {
      operation.delete(units);
      index += take;
    } else {
      operation.retain(units);
      index += take;
    }
  }
  if (random() < 0.3) {
    operation.insert(randomText(random, 3) || "y");
  }
  return operation;
}

/** A typed edit: one insert, one delete or one replacement somewhere in `text`, as people type. */
export function randomEdit(random: () => number, text: string): TextOperation {
  const characters = Array.from(text);
  const at = randomInt(random, characters.length + 1);
  const removed = random() < 0.3 ? randomInt(random, Math.min(3, characters.length - at) + 1) : 0;
  const inserted = random() < 0.8 || removed === 0 ? randomText(random, 3) || "z" : "";
  const position = characters.slice(0, at).join("").length;
  const removedUnits = characters.slice(at, at + removed).join("").length;
  return TextOperation.replace(text.length, position, removedUnits, inserted);
}
