const ADJECTIVES = ["Brave", "Calm", "Clever", "Eager", "Gentle", "Happy", "Jolly", "Kind", "Lively", "Merry", "Nimble", "Quiet", "Swift", "Witty"];
const ANIMALS = ["Otter", "Fox", "Heron", "Badger", "Lynx", "Panda", "Robin", "Seal", "Tiger", "Wren", "Koala", "Falcon"];

const KEY = "duet.name";

export function randomName(): string {
  const pick = <T,>(list: T[]): T => list[Math.floor(Math.random() * list.length)]!;
  return `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
}

export function storedName(): string | null {
  try {
    return window.localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function storeName(name: string): void {
  try {
    window.localStorage.setItem(KEY, name);
  } catch {
    // storage may be off; the name lasts this page
  }
}
