// The Duet web app as two people use it, in Chromium, against a real duet-server.

import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { expect, type Locator, type Page, test } from '@playwright/test';
import WebSocket from 'ws';
import { DuetServer } from './server';
import {
  editorText,
  openRoom,
  random,
  suggestNothingWhilePausing,
  tally,
  tallyOf,
  typeAtRandom,
} from './helpers';

const results = new URL('../../../target/web-e2e/', import.meta.url).pathname;

let server: DuetServer;

test.beforeEach(async () => {
  server = await DuetServer.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('two people typing at once at random places both end with every keystroke', async ({
  browser,
}) => {
  // 500 keystrokes through two pages: minutes on a busy two-core machine.
  test.setTimeout(300_000);
  const room = await server.createRoom({ language: 'python', code: 'xyz\n' });
  const ada = await browser.newPage();
  const bob = await browser.newPage();
  await openRoom(ada, server, room, 'Ada');
  await openRoom(bob, server, room, 'Bob');
  await suggestNothingWhilePausing(ada);
  await suggestNothingWhilePausing(bob);
  const adaKeys = ['a', 'b', 'c', 'd', 'é', '😀', '\n'];
  const bobKeys = ['1', '2', '3', '4', 'ß', '🎉', '_'];
  const [adaTyped, bobTyped] = await Promise.all([
    typeAtRandom(ada, adaKeys, 250, random(1)),
    typeAtRandom(bob, bobKeys, 250, random(2)),
  ]);
  // Both pages and the room end with the same text, holding every keystroke. (The room's code
  // is read on every try: edits may still be on their way when the typing stops.)
  let text = '';
  await expect
    .poll(async () => {
      const [one, two, stored] = await Promise.all([
        editorText(ada),
        editorText(bob),
        server.code(room),
      ]);
      text = stored;
      return one === two && two === stored
        ? 'the same'
        : `lengths differ: Ada ${one.length}, Bob ${two.length}, room ${stored.length}`;
    })
    .toBe('the same');
  // Every key typed is there as often as it was typed, and nothing else: the starting text's
  // characters plus the keystrokes. (No one types whitespace before Enter, which would have it
  // copy a line's indentation or clear a blank line.)
  const typed = tallyOf([...Array.from('xyz\n'), ...adaTyped, ...bobTyped]);
  const keys = [...typed.keys()];
  expect(tally(text, keys)).toEqual(typed);
  expect(Array.from(text).length).toBe(Array.from('xyz\n').length + 500);
  expect(tallyOf([...adaTyped, ...bobTyped]).size).toBeGreaterThan(10);
});

test('each page shows the other person’s cursor with their name', async ({ browser }) => {
  const room = await server.createRoom({ code: 'def main():\n    pass\n' });
  const ada = await browser.newPage();
  const bob = await browser.newPage();
  await openRoom(ada, server, room, 'Ada');
  await openRoom(bob, server, room, 'Bob');
  await ada.locator('.cm-content').click();
  await ada.keyboard.press('Control+End');
  await bob.locator('.cm-content').click();
  await bob.keyboard.press('Control+Home');
  await expect(ada.locator('.duet-cursor-label', { hasText: 'Bob' })).toBeVisible();
  await expect(bob.locator('.duet-cursor-label', { hasText: 'Ada' })).toBeVisible();
  mkdirSync(results, { recursive: true });
  await ada.screenshot({ path: `${results}two-people.png` });
});

test('a late joiner sees the code', async ({ browser }) => {
  const room = await server.createRoom({ code: '' });
  const ada = await browser.newPage();
  await openRoom(ada, server, room, 'Ada');
  await ada.locator('.cm-content').click();
  await ada.keyboard.insertText('print("hello")');
  await expect.poll(() => server.code(room)).toBe('print("hello")');
  const late = await browser.newPage();
  await openRoom(late, server, room, 'Late');
  await expect.poll(() => editorText(late)).toBe('print("hello")');
});

test('a page keeps typing through a server crash and nothing typed is lost', async ({
  browser,
}) => {
  const room = await server.createRoom({ code: '' });
  const ada = await browser.newPage();
  await openRoom(ada, server, room, 'Ada');
  await ada.locator('.cm-content').click();
  await ada.keyboard.insertText('before ');
  await expect.poll(() => server.code(room)).toBe('before ');
  await server.kill();
  await expect(ada.getByTestId('connection-state')).toHaveText(/reconnecting|offline/i);
  await ada.keyboard.insertText('during ');
  await server.restart();
  await expect(ada.getByTestId('connection-state')).toHaveText(/connected/i, {
    timeout: 30_000,
  });
  await ada.keyboard.insertText('after');
  await expect.poll(() => server.code(room), { timeout: 30_000 }).toBe('before during after');
  await expect.poll(() => editorText(ada)).toBe('before during after');
});

test('a language switch in one page changes the highlighting in the other', async ({
  browser,
}) => {
  const room = await server.createRoom({ language: 'python', code: 'fn main() { let x = 1; }' });
  const ada = await browser.newPage();
  const bob = await browser.newPage();
  await openRoom(ada, server, room, 'Ada');
  await openRoom(bob, server, room, 'Bob');
  const highlighted = () =>
    bob.locator('.cm-content').evaluate((content) => content.innerHTML);
  const before = await highlighted();
  await ada.getByLabel('Language').selectOption('rust');
  await expect(bob.getByLabel('Language')).toHaveValue('rust');
  await expect.poll(highlighted).not.toBe(before);
  const response = await fetch(`${server.url}/rooms/${room}`);
  expect(((await response.json()) as { language: string }).language).toBe('rust');
});

test('a completion appears and is accepted with Tab', async ({ page }) => {
  const room = await server.createRoom({ language: 'python', code: '' });
  await openRoom(page, server, room, 'Ada');
  await page.locator('.cm-content').click();
  await page.keyboard.insertText('pri');
  await expect(page.locator('.cm-tooltip-autocomplete')).toBeVisible();
  await page.keyboard.press('Tab');
  await expect.poll(() => editorText(page)).toMatch(/^print/);
  await expect.poll(() => server.code(room)).toMatch(/^print/);
});

test('with suggestions turned off, Ctrl-Space still asks, and the choice holds', async ({ page }) => {
  const room = await server.createRoom({ language: 'python', code: '' });
  await openRoom(page, server, room, 'Ada');
  await suggestNothingWhilePausing(page);
  await page.locator('.cm-content').click();
  await page.keyboard.insertText('pri');
  await page.keyboard.press('Control+Space');
  await expect(page.locator('.cm-tooltip-autocomplete')).toBeVisible();
  await page.keyboard.press('Tab');
  await expect.poll(() => server.code(room)).toMatch(/^print/);
  // Another room, after a reload: still off.
  const other = await server.createRoom({ language: 'python', code: '' });
  await page.goto(`${server.url}/r/${other}`);
  await expect(page.getByTestId('connection-state')).toHaveText(/connected/i);
  await expect(page.getByLabel('Suggest when I pause')).not.toBeChecked();
});

test('a prototype client and a browser share a room', async ({ page }) => {
  const room = await server.createRoom({ code: 'x = 1' });
  const plain = new WebSocket(`ws://${server.bind}/ws/${room}`);
  const received: string[] = [];
  plain.on('message', (data) => received.push(data.toString()));
  await new Promise((resolve, reject) => {
    plain.once('open', resolve);
    plain.once('error', reject);
  });
  await expect.poll(() => received.at(-1)).toBe('x = 1');
  await openRoom(page, server, room, 'Ada');
  // The prototype's client sends its whole buffer; the page shows it.
  plain.send('x = 1\ny = 2');
  await expect.poll(() => editorText(page)).toBe('x = 1\ny = 2');
  // The page types; the prototype's client receives the whole merged buffer.
  await page.locator('.cm-content').click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Enter');
  await page.keyboard.insertText('z = 3');
  await expect.poll(() => received.at(-1)).toBe('x = 1\ny = 2\nz = 3');
  plain.close();
});

test('the history slider shows an earlier revision’s code', async ({ page }) => {
  const room = await server.createRoom({ code: '' });
  await openRoom(page, server, room, 'Ada');
  await page.locator('.cm-content').click();
  for (const word of ['one ', 'two ', 'three']) {
    await page.keyboard.insertText(word);
    await expect.poll(() => server.code(room)).toMatch(new RegExp(`${word.trim()} ?$`));
  }
  const slider = page.getByLabel('History');
  await slider.focus();
  // Back to the very first revision, then forward one step at a time until "one " shows.
  await page.keyboard.press('Home');
  await expect(page.getByTestId('history-code')).toHaveText('');
  await expect
    .poll(async () => {
      await page.keyboard.press('ArrowRight');
      return page.getByTestId('history-code').textContent();
    })
    .toBe('one ');
  // The room itself is untouched by looking back.
  expect(await server.code(room)).toBe('one two three');
});

test('the read-only view cannot change the room', async ({ page }) => {
  const room = await server.createRoom({ code: 'keep me' });
  await openRoom(page, server, room, 'Reader', '?readonly=1');
  await page.locator('.cm-content').click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type('vandalism');
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  expect(await editorText(page)).toBe('keep me');
  // A round trip later, the room still holds what it held.
  const writer = await page.context().newPage();
  await openRoom(writer, server, room, 'Writer');
  await writer.locator('.cm-content').click();
  await writer.keyboard.press('Control+End');
  await writer.keyboard.insertText('!');
  await expect.poll(() => editorText(page)).toBe('keep me!');
  expect(await server.code(room)).toBe('keep me!');
});

/** Presses Tab until `target` has the focus; fails if 30 presses do not get there. */
async function tabTo(page: Page, target: Locator): Promise<void> {
  for (let presses = 0; presses < 30; presses++) {
    if (await target.evaluate((element) => element === document.activeElement)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${target.toString()}`);
}

/** Whether the page is wider than its viewport (a sideways scroll bar at this width). */
function overflows(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}

test('a phone-width page does everything with the keyboard alone', async ({ browser }) => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await page.goto(`${server.url}/`);
  // The start page: a name, a language, starting code, then the room, all from the keyboard.
  await tabTo(page, page.getByLabel('Your name'));
  await page.keyboard.press('Control+A');
  await page.keyboard.type('Kay');
  // One key: a select's type-ahead forgets what was typed after a second, which a busy machine
  // can take between two keys ("R" is Rust's alone).
  await tabTo(page, page.getByLabel('Language'));
  await page.keyboard.press('R');
  await expect(page.getByLabel('Language')).toHaveValue('rust');
  await tabTo(page, page.getByLabel('Starting code (optional)'));
  await page.keyboard.type('fn main() {}');
  expect(await overflows(page)).toBe(false);
  await tabTo(page, page.getByRole('button', { name: 'Create room' }));
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/r\/[0-9a-f-]{36}$/);
  const room = page.url().split('/r/')[1] as string;
  await expect(page.getByTestId('connection-state')).toHaveText(/connected/i);
  await expect(page.getByTestId('participant')).toContainText(['Kay']);
  // Completions off (Tab would take one offered after a pause in typing), with Space.
  await tabTo(page, page.getByLabel('Suggest when I pause'));
  await page.keyboard.press('Space');
  await expect(page.getByLabel('Suggest when I pause')).not.toBeChecked();
  // The room: into the editor, type, and out again with Tab (the editor keeps no one in).
  await tabTo(page, page.locator('.cm-content'));
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText(' // two');
  await expect.poll(() => server.code(room)).toBe('fn main() {} // two');
  // Back in history with the slider's keys, then live again.
  await tabTo(page, page.getByLabel('History'));
  await page.keyboard.press('Home');
  await expect(page.getByTestId('history-code')).toHaveText('fn main() {}');
  await tabTo(page, page.getByRole('button', { name: 'Back to live' }));
  await page.keyboard.press('Enter');
  // The button is gone; the editor it brings back has the focus.
  await expect(page.locator('.cm-content')).toBeFocused();
  expect(await editorText(page)).toBe('fn main() {} // two');
  mkdirSync(results, { recursive: true });
  await page.screenshot({ path: `${results}phone-width.png`, fullPage: true });
  // The language switch, from the keyboard, changes the room for everyone.
  await tabTo(page, page.getByLabel('Language'));
  await page.keyboard.press('Home');
  await expect(page.getByLabel('Language')).toHaveValue('python');
  await expect
    .poll(async () => {
      const response = await fetch(`${server.url}/rooms/${room}`);
      return ((await response.json()) as { language: string }).language;
    })
    .toBe('python');
  expect(await overflows(page)).toBe(false);
  await page.close();
});

/** An HS256 token, as a team's backend would mint one with the server's secret. */
function sign(secret: string, claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

test('share links: a viewer watches one room and, in the same tab, edits another', async ({ page }) => {
  const secret = 'a test secret of the browser tests, 32 bytes or more';
  await server.stop();
  server = await DuetServer.start({ DUET_AUTH_SECRET: secret });
  const owner = sign(secret, { sub: 'owner', room: '*', role: 'owner', exp: Math.floor(Date.now() / 1000) + 600 });
  const watched = await server.createRoom({ code: 'watch me' }, owner);
  const edited = await server.createRoom({ code: 'edit me' }, owner);
  const share = async (room: string, role: string) => {
    const response = await fetch(`${server.url}/rooms/${room}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
      body: JSON.stringify({ role }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { token: string }).token;
  };
  // A link with the token in its fragment (never sent to the server), and one in its query.
  const viewerLink = `${server.url}/r/${watched}#token=${await share(watched, 'viewer')}`;
  const editorLink = `${server.url}/r/${edited}?token=${await share(edited, 'editor')}`;
  await page.addInitScript(() => window.localStorage.setItem('duet.name', 'Guest'));

  // The viewer's link: the room shows, read-only, and the token leaves the address.
  await page.goto(viewerLink);
  await expect(page.getByTestId('connection-state')).toHaveText(/connected/i);
  await expect(page.getByText('Your link lets you watch this room, not edit it.')).toBeVisible();
  expect(page.url()).toBe(`${server.url}/r/${watched}`);
  await page.locator('.cm-content').click();
  await page.keyboard.insertText('!');
  expect(await editorText(page)).toBe('watch me');

  // The editor's link pasted into the start page of the same tab: that room, editable.
  await page.goto(`${server.url}/`);
  await page.getByLabel('Room link or id').fill(editorLink);
  await page.getByRole('button', { name: 'Join' }).click();
  await expect(page).toHaveURL(`${server.url}/r/${edited}`);
  await expect(page.getByTestId('connection-state')).toHaveText(/connected/i);
  await page.locator('.cm-content').click();
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText('!');
  await expect.poll(() => server.code(edited, owner)).toBe('edit me!');

  // Back to the first room in the same tab, with no token in the address: still its viewer.
  await page.goto(`${server.url}/r/${watched}`);
  await expect(page.getByTestId('connection-state')).toHaveText(/connected/i);
  await expect(page.getByText('Your link lets you watch this room, not edit it.')).toBeVisible();
  expect(await server.code(watched, owner)).toBe('watch me');
});

test('a room whose code cannot be loaded says so and offers a reload', async ({ page }) => {
  const room = await server.createRoom({ code: 'x' });
  await page.addInitScript(() => window.localStorage.setItem('duet.name', 'Ada'));
  // The room page's own script fails to arrive, as when offline or after an update.
  await page.route(/\/assets\/RoomPage-[^/]+\.js$/, (route) => route.abort());
  await page.goto(`${server.url}/r/${room}`);
  await expect(page.getByRole('alert')).toContainText('could not be loaded');
  await page.unroute(/\/assets\/RoomPage-[^/]+\.js$/);
  await page.getByRole('button', { name: 'Reload' }).click();
  await expect(page.getByTestId('connection-state')).toHaveText(/connected/i);
  expect(await editorText(page)).toBe('x');
});
