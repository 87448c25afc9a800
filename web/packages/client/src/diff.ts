/**
 * The smallest single change between two texts: what they share at the start and at the end is
 * kept, the middle is replaced. For editors that report a new value rather than a change (a
 * `<textarea>`), and for the client's own resynchronisation.
 *
 * Duet's server diffs `code` messages with Myers' algorithm on characters (the Rust crate
 * `similar`, whose clean-up then slides each insert as far down the text as it can go). When the
 * removed and the inserted middles share no character, Myers has nothing to match between them,
 * and the server's operation is known: `predictServerDiff` builds it, so that a client sending a
 * `code` message can keep in flight exactly the operation the server will commit.
 */

import { splitsSurrogatePair, TextOperation } from "./operation.js";

/** The lengths of the common prefix and suffix, in UTF-16 code units, never cutting a surrogate pair. */
function commonEnds(before: string, after: string): [number, number] {
  const shorter = Math.min(before.length, after.length);
  let prefix = 0;
  while (prefix < shorter && before.charCodeAt(prefix) === after.charCodeAt(prefix)) {
    prefix++;
  }
  // Characters, not code units, are compared: a pair whose first halves agree is not common.
  if (splitsSurrogatePair(before, prefix) || splitsSurrogatePair(after, prefix)) {
    prefix--;
  }
  let suffix = 0;
  while (
    suffix < shorter - prefix &&
    before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)
  ) {
    suffix++;
  }
  if (
    splitsSurrogatePair(before, before.length - suffix) ||
    splitsSurrogatePair(after, after.length - suffix)
  ) {
    suffix--;
  }
  return [prefix, suffix];
}

/** The operation that turns `before` into `after` by replacing the part between their common start and end. */
export function diff(before: string, after: string): TextOperation {
  const [prefix, suffix] = commonEnds(before, after);
  return new TextOperation()
    .retain(prefix)
    .insert(after.slice(prefix, after.length - suffix))
    .delete(before.length - prefix - suffix)
    .retain(suffix);
}

/**
 * The operation the server makes of a `code` message that turns `before` into `after`, when the
 * client can be certain of it; undefined when it cannot (the removed and the inserted text share
 * a character, so Myers' choice among the equally short diffs would have to be replayed).
 */
export function predictServerDiff(before: string, after: string): TextOperation | undefined {
  const [prefix, suffix] = commonEnds(before, after);
  const removed = before.slice(prefix, before.length - suffix);
  const inserted = Array.from(after.slice(prefix, after.length - suffix));
  if (removed.length === 0 || inserted.length === 0) {
    // One insert after the longest common start (sliding it further would need the next
    // character to be its first, which the common start rules out), or one delete, which the
    // clean-up never moves.
    return diff(before, after);
  }
  const removedCharacters = new Set(Array.from(removed));
  if (inserted.some((character) => removedCharacters.has(character))) {
    return undefined;
  }
  // The insert follows the delete, and slides on over the kept text while the character after
  // it is its own first: each step moves that character from its start to its end.
  const kept = Array.from(before.slice(before.length - suffix));
  // After `slid` steps the insert is rotated by `slid`: its first character is `slid % n`.
  const n = inserted.length;
  let slid = 0;
  let slidUnits = 0;
  while (slid < kept.length && inserted[slid % n] === kept[slid]) {
    slidUnits += kept[slid]!.length;
    slid++;
  }
  const turn = slid % n;
  return new TextOperation()
    .retain(prefix)
    .delete(removed.length)
    .retain(slidUnits)
    .insert([...inserted.slice(turn), ...inserted.slice(0, turn)].join(""))
    .retain(suffix - slidUnits);
}
