// Figures for docs/BENCHMARKS.md, measured (never asserted beyond "it happened"): the time
// from a keystroke in one page to its appearance in the other while both type, the first
// render of a 1 MB room, and what /r/{id} ships. Written to target/web-e2e/measurements.json.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { expect, type Page, test } from '@playwright/test';
import { DuetServer } from './server';
import { openRoom, random } from './helpers';

const results = new URL('../../../target/web-e2e/', import.meta.url).pathname;
const dist = new URL('../../app/dist/', import.meta.url).pathname;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

function record(name: string, value: unknown): void {
  mkdirSync(results, { recursive: true });
  const path = `${results}measurements.json`;
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    // The first figure of this run.
  }
  all[name] = value;
  writeFileSync(path, `${JSON.stringify(all, null, 2)}\n`);
}

type Watched = Window & { seen: Record<string, number> };

/** Has `page` note when each character first shows in its editor (the pages share a clock). */
async function watch(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: Record<string, number> = {};
    (window as unknown as Watched).seen = seen;
    const content = document.querySelector('.cm-content') as Element;
    new MutationObserver(() => {
      const now = performance.timeOrigin + performance.now();
      for (const character of Array.from(content.textContent ?? '')) {
        if (!(character in seen)) seen[character] = now;
      }
    }).observe(content, { childList: true, subtree: true, characterData: true });
  });
}

/**
 * Types `count` distinct characters from `first` on at random places, 30 ms apart, and returns
 * when each was typed.
 */
async function typeDistinct(
  page: Page,
  first: number,
  count: number,
  next: () => number,
): Promise<Record<string, number>> {
  await page.locator('.cm-content').click();
  const sent: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const move = next();
    if (move < 0.2) await page.keyboard.press('Control+End');
    else if (move < 0.4) await page.keyboard.press('Control+Home');
    else if (move < 0.6) await page.keyboard.press(next() < 0.5 ? 'ArrowLeft' : 'ArrowRight');
    const character = String.fromCodePoint(first + i);
    sent[character] = await page.evaluate(() => performance.timeOrigin + performance.now());
    await page.keyboard.insertText(character);
    await page.waitForTimeout(30);
  }
  return sent;
}

/** How long after it was typed each character showed in `page`, once all of them have. */
async function arrivals(page: Page, sent: Record<string, number>): Promise<number[]> {
  const keys = Object.keys(sent);
  await expect
    .poll(() =>
      page.evaluate((keys) => keys.every((key) => key in (window as unknown as Watched).seen), keys),
    )
    .toBe(true);
  const seen = await page.evaluate(() => (window as unknown as Watched).seen);
  return keys.map((key) => seen[key] - sent[key]);
}

test('keystroke to the other page', async ({ browser }) => {
  // 300 keystrokes through two pages: minutes on a busy two-core machine.
  test.setTimeout(300_000);
  const server = await DuetServer.start();
  try {
    const room = await server.createRoom({ code: '' });
    const ada = await browser.newPage();
    const bob = await browser.newPage();
    await openRoom(ada, server, room, 'Ada');
    await openRoom(bob, server, room, 'Bob');
    await Promise.all([watch(ada), watch(bob)]);
    // Both type at once, at random places: 150 distinct characters each (CJK ideographs, so
    // each is recognised where it lands), every one timed from one page to the other.
    const [fromAda, fromBob] = await Promise.all([
      typeDistinct(ada, 0x4e00, 150, random(1)),
      typeDistinct(bob, 0x5000, 150, random(2)),
    ]);
    const summary = (latencies: number[]) => {
      const sorted = [...latencies].sort((a, b) => a - b);
      const round = (ms: number) => Math.round(ms * 10) / 10;
      return {
        keystrokes: sorted.length,
        p50: round(percentile(sorted, 50)),
        p95: round(percentile(sorted, 95)),
        max: round(sorted[sorted.length - 1]),
      };
    };
    record(
      'keystrokeToOtherPageMs',
      summary([...(await arrivals(bob, fromAda)), ...(await arrivals(ada, fromBob))]),
    );
    // The same keystrokes in the page that typed them: what the harness (Playwright's
    // dispatch) and the editor take before any network is involved.
    record(
      'keystrokeToOwnPageMs',
      summary([...(await arrivals(ada, fromAda)), ...(await arrivals(bob, fromBob))]),
    );
  } finally {
    await server.stop();
  }
});

test('first render of a 1 MB room', async ({ page }) => {
  const server = await DuetServer.start();
  try {
    const line = 'def function_number_0000(argument): return argument * 2  # padding\n';
    const code = line.repeat(Math.floor((1000 * 1000) / line.length));
    const room = await server.createRoom({ code });
    const started = Date.now();
    await openRoom(page, server, room, 'Ada');
    await expect(page.locator('.cm-line').first()).toContainText('def function_number_0000');
    const rendered = Date.now() - started;
    record('firstRenderOf1MbRoomMs', { bytes: code.length, ms: rendered });
  } finally {
    await server.stop();
  }
});

test('what /r/{id} ships', async ({ page }) => {
  const server = await DuetServer.start();
  try {
    const room = await server.createRoom({ language: 'python', code: 'x = 1' });
    const files = new Set<string>();
    page.on('response', (response) => {
      const path = new URL(response.url()).pathname;
      if (path.startsWith('/assets/')) files.add(path);
    });
    await openRoom(page, server, room, 'Ada');
    let raw = 0;
    let gzipped = 0;
    for (const file of files) {
      const bytes = readFileSync(`${dist}${file.slice(1)}`);
      raw += bytes.length;
      gzipped += gzipSync(bytes, { level: 9 }).length;
    }
    expect(files.size).toBeGreaterThan(0);
    record('shippedForAPythonRoom', { files: [...files].sort(), raw, gzipped });
  } finally {
    await server.stop();
  }
});
