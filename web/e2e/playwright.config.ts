import { defineConfig } from '@playwright/test';

// Debian's chromium package, not a browser Playwright downloads (none can be downloaded here).
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: './tests',
  // Each test starts its own server; two at a time suit a two-core machine.
  workers: 2,
  fullyParallel: true,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  outputDir: '../../target/web-e2e/results',
  use: {
    browserName: 'chromium',
    // This machine's network is closed: Chromium must not reach out for updates, sync or QUIC.
    launchOptions: {
      executablePath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    },
    viewport: { width: 1280, height: 800 },
    trace: 'retain-on-failure',
  },
});
