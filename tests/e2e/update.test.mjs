// Updating the app in headless Chromium: a new build of the service worker is deployed while
// the page is open. The new worker installs and takes over without breaking the page (it keeps
// scoring through the new worker), the page tells the user a new version is ready, the old shell
// cache is gone, and readings queued in the outbox before the update reach the collector once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  api,
  deployFile,
  launchChromium,
  message,
  openApp,
  setFault,
  startCollector,
  stopCollector,
  tempDir,
  waitFor,
} from './harness.mjs';

const golden = JSON.parse(readFileSync(join(ROOT, 'models/shuttle/golden.json'), 'utf8'));
const NEXT = '0.1.0-e2e-next';

const caches = (page) => page.evaluate(() => caches.keys());
const queued = (status) => status.outbox.queued + status.outbox.inflight_records;
const scoreGolden = async (page, rows) => {
  for (const row of rows) await message(page, 'score', { rows: row, features: row.length });
};

test('a new version takes over an open page cleanly and keeps the outbox', { timeout: 300_000 }, async () => {
  // A private copy of the build, so the test can deploy a "new version" into it.
  const site = join(tempDir('edge-update-'), 'dist');
  cpSync(process.env.E2E_DIST || join(ROOT, 'dist'), site, { recursive: true });
  const swPath = join(site, 'sw.js');
  const sw = readFileSync(swPath, 'utf8');
  const current = /const APP_VERSION = '([^']+)'/.exec(sw)?.[1];
  assert.ok(current, 'sw.js declares its APP_VERSION');

  const port = 24_000 + Math.floor(Math.random() * 2000);
  const db = join(tempDir('edge-update-db-'), 'telemetry.sqlite');
  const collector = await startCollector({ port, db, staticDir: site, faults: true });
  const browser = await launchChromium();
  try {
    const { page } = await openApp(browser, port);
    assert.deepEqual(await caches(page), [`edge-anomaly-shell-${current}`]);
    assert.equal((await message(page, 'status')).status.app_version, current);
    assert.equal(await page.isVisible('#update'), false, 'no update banner before an update');

    // Readings that cannot be delivered yet (the collector answers 503) wait in the outbox.
    await setFault(port, { mode: 'status', status: 503 });
    await scoreGolden(page, golden.rows.slice(0, 8));
    assert.equal(queued((await message(page, 'status')).status), 8);

    // Deploy the next version and let the browser find it, as its periodic update check would.
    deployFile(swPath, sw.replace(`const APP_VERSION = '${current}'`, `const APP_VERSION = '${NEXT}'`));
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).update());

    // The open page is told, and goes on working through the new worker without a reload.
    await page.waitForSelector('#update:not([hidden])', { timeout: 60_000 });
    const after = (await message(page, 'status')).status;
    assert.equal(after.app_version, NEXT, 'the new worker answers the open page');
    assert.equal(queued(after), 8, 'the queued readings survived the update');
    const { scores } = await message(page, 'score', { rows: golden.rows[0], features: golden.rows[0].length });
    const { rtol, atol } = golden.tolerance;
    const want = golden.scores.int8_weight_only[0];
    assert.ok(Math.abs(scores[0] - want) <= atol + rtol * Math.abs(want), `${scores[0]} vs ${want}`);
    await waitFor(
      'old shell cache removed',
      async () => {
        const keys = await caches(page);
        return { done: keys.length === 1 && keys[0] === `edge-anomaly-shell-${NEXT}`, keys };
      },
      30_000,
    );

    // The user accepts: the page reloads into the new version, and the outbox drains once.
    await Promise.all([page.waitForEvent('load'), page.click('#reload')]);
    await page.waitForSelector('body[data-ready=true]', { timeout: 60_000 });
    assert.equal(await page.isVisible('#update'), false);
    await setFault(port, { mode: 'none' });
    const drained = await waitFor('outbox to drain', async () => {
      await message(page, 'online');
      const { status } = await message(page, 'status');
      return { done: queued(status) === 0, status };
    });
    assert.equal(drained.status.outbox.sent_records_total, 9);
    assert.equal((await api(port, '/api/stats')).records, 9, 'every record stored exactly once');
  } finally {
    await browser.close();
    await stopCollector(collector);
  }
});
