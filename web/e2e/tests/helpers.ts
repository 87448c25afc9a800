// What the browser tests share: opening a room as a named person, typing at random places,
// waiting for text, and a seeded random source so a failure can be replayed.

import { expect, type Page } from '@playwright/test';
import type { DuetServer } from './server';

/** A small seeded generator (mulberry32): the same seed types the same keystrokes. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Opens `/r/{room}` as `name`, with `query` added, and waits until it is connected. */
export async function openRoom(
  page: Page,
  server: DuetServer,
  room: string,
  name: string,
  query = '',
): Promise<void> {
  await page.addInitScript((chosen) => {
    window.localStorage.setItem('duet.name', chosen);
  }, name);
  await page.goto(`${server.url}/r/${room}${query}`);
  await expect(page.getByTestId('connection-state')).toHaveText(/connected/i);
  await expect(page.locator('.cm-content')).toBeVisible();
}

/** Unticks "Suggest when I pause", as someone who types without completions does. */
export async function suggestNothingWhilePausing(page: Page): Promise<void> {
  const suggest = page.getByLabel('Suggest when I pause');
  await suggest.uncheck();
  await expect(suggest).not.toBeChecked();
}

/** The editor's text as CodeMirror holds it (lines joined with newlines). */
export async function editorText(page: Page): Promise<string> {
  return page.locator('.cm-content').evaluate((content) => {
    const lines = Array.from(content.querySelectorAll('.cm-line'));
    return lines.map((line) => line.textContent ?? '').join('\n');
  });
}

/**
 * Types `count` keystrokes from `alphabet`, each at a random place; returns what was typed.
 * Turn completions off first (`suggestNothingWhilePausing`): a busy machine makes pauses, and
 * Enter takes a completion on offer instead of breaking the line.
 */
export async function typeAtRandom(
  page: Page,
  alphabet: string[],
  count: number,
  next: () => number,
): Promise<string[]> {
  const typed: string[] = [];
  await page.locator('.cm-content').click();
  for (let i = 0; i < count; i++) {
    const move = next();
    if (move < 0.15) {
      await page.keyboard.press('Control+End');
    } else if (move < 0.3) {
      await page.keyboard.press('Control+Home');
    } else if (move < 0.6) {
      for (let steps = Math.floor(next() * 4); steps > 0; steps--) {
        await page.keyboard.press(next() < 0.5 ? 'ArrowLeft' : 'ArrowRight');
      }
    }
    const key = alphabet[Math.floor(next() * alphabet.length)];
    // A newline is typed with Enter, as people do (Chromium's insertText of "\n" into an
    // editable element inserts a paragraph that CodeMirror may read as two line breaks).
    if (key === '\n') await page.keyboard.press('Enter');
    else await page.keyboard.insertText(key);
    typed.push(key);
  }
  return typed;
}

/** How many times each of `keys` occurs in `text` (code points, so emoji count once). */
export function tally(text: string, keys: string[]): Map<string, number> {
  const counts = new Map<string, number>(keys.map((key) => [key, 0]));
  for (const character of Array.from(text)) {
    if (counts.has(character)) counts.set(character, (counts.get(character) ?? 0) + 1);
  }
  return counts;
}

export function tallyOf(typed: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of typed) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}
