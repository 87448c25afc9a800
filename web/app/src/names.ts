/** The name others see: asked for once, kept in localStorage (`duet.name`). */

const ADJECTIVES = ["Brave", "Calm", "Clever", "Eager", "Gentle", "Happy", "Jolly", "Kind", "Lively", "Merry", "Nimble", "Quiet", "Swift", "Witty"];
const ANIMALS = ["Otter", "Fox", "Heron", "Badger", "Lynx", "Panda", "Robin", "Seal", "Tiger", "Wren", "Koala", "Falcon"];

const KEY = "duet.name";

/** The server takes names of up to 64 characters. */
export const MAX_NAME_LENGTH = 64;

/** A friendly name to start from ("Calm Otter"). */
export function randomName(): string {
  const pick = <T,>(list: T[]): T => list[Math.floor(Math.random() * list.length)]!;
  return `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
}

/** The stored name, or null when this browser was never asked. */
export function storedName(): string | null {
  try {
    const name = window.localStorage.getItem(KEY)?.trim();
    return name ? name : null;
  } catch {
    return null;
  }
}

/** Keeps `name` (trimmed; a random one when empty) and returns what was kept. */
export function storeName(name: string): string {
  const kept = name.trim().slice(0, MAX_NAME_LENGTH) || randomName();
  try {
    window.localStorage.setItem(KEY, kept);
  } catch {
    // Storage may be off: the name then lasts as long as the page.
  }
  return kept;
}
