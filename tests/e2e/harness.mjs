// Shared pieces of the browser end-to-end tests: start/stop the real collector binary, launch
// Debian's chromium through playwright-core (no browser download), talk to the service worker.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '../..');
const COLLECTOR = process.env.COLLECTOR_BIN || join(ROOT, 'target/debug/collector');

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

// Every collector this process started: killed when the test process exits, so a test that
// times out mid-await (its `finally` never runs) leaves no server behind holding a port.
const collectors = new Set();
process.on('exit', () => {
  for (const proc of collectors) proc.kill('SIGKILL');
});

/**
 * A module using one relaxed SIMD instruction (i8x16.relaxed_swizzle), as the tests' own probe:
 * a browser that validates it should get the small engine's relaxed SIMD compilation.
 */
export const RELAXED_SIMD_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2,
  11,
];

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Replaces a file of a built site in place, as a deploy that patches one file would: its
 * precompressed copies (`.br`, `.gz`, which the collector prefers) go too, or browsers that
 * accept them would keep getting the old content.
 */
export function deployFile(path, content) {
  writeFileSync(path, content);
  for (const copy of [`${path}.br`, `${path}.gz`]) rmSync(copy, { force: true });
}

/** Starts the collector serving the PWA from `staticDir` (the built `dist/`); resolves once it
 * listens. `faults: true` enables fault injection (`--test-faults`: `/admin/faults`, `setFault`). */
export async function startCollector({ port, db, args = [], staticDir = join(ROOT, 'dist'), faults = false }) {
  const proc = spawn(
    COLLECTOR,
    ['--addr', `127.0.0.1:${port}`, '--db', db, '--static', staticDir, ...(faults ? ['--test-faults'] : []), ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  collectors.add(proc);
  proc.on('exit', () => collectors.delete(proc));
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('collector did not start')), 20_000);
    proc.stdout.on('data', (d) => {
      if (String(d).includes('listening')) {
        clearTimeout(timer);
        ok();
      }
    });
    proc.on('exit', (code) => fail(new Error(`collector exited ${code}`)));
  });
  proc.stdout.resume();
  return proc;
}

export async function stopCollector(proc) {
  // A process killed by a signal has signalCode set and exitCode null: both mean it is gone.
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((ok) => proc.on('exit', ok));
  proc.kill('SIGKILL');
  await exited;
}

export async function api(port, path, init) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, init);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

/** Arms a fault on a collector started with `faults: true` (JSON only: the collector refuses
 * any other content type). */
export async function setFault(port, fault) {
  return api(port, '/admin/faults', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  });
}

export async function launchChromium() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** A non-incognito profile in a fresh directory (Chrome refuses installs in incognito). */
export async function launchPersistentChromium() {
  return chromium.launchPersistentContext(tempDir('edge-profile-'), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

/** Opens the app and waits until the service worker controls the page and answers. `browser`
 * is a Browser (a new incognito context is made) or a persistent BrowserContext. */
export async function openApp(browser, port) {
  const context = browser.newContext ? await browser.newContext() : browser;
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('pageerror:', e.message));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector('body[data-ready=true]', { timeout: 60_000 });
  return { context, page };
}

/** Sends one protocol message from the page to the worker and returns the reply. */
export async function message(page, type, body = {}) {
  return page.evaluate(
    async ([type, body]) => {
      const { request } = await import('./client.js');
      if (body.rows) body.rows = Float32Array.from(body.rows);
      const r = await request(type, body);
      if (r.scores) r.scores = Array.from(r.scores);
      return r;
    },
    [type, body],
  );
}

export async function waitFor(what, fn, timeoutMs = 180_000, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last.done) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
}
