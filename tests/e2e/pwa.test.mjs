// The PWA in headless Chromium, served by the real collector: the worker activates and scores
// the golden rows exactly as onnxruntime did; Chrome's installability check passes; with the
// collector stopped and the network emulated offline, a reload still shows the app and scoring
// goes on into the outbox, which drains to the collector when it is back.
/* global document, self -- in the functions given to page.evaluate and page.waitForFunction, which run in the page */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  api,
  launchPersistentChromium,
  message,
  openApp,
  startCollector,
  stopCollector,
  tempDir,
  waitFor,
} from './harness.mjs';

// E2E_DIST serves another build of the PWA than dist/.
const DIST = process.env.E2E_DIST ? { staticDir: process.env.E2E_DIST } : {};
const golden = JSON.parse(readFileSync(join(ROOT, 'models/shuttle/golden.json'), 'utf8'));

/** Clicks the replay button and waits until it offers `next` (the source started or stopped). */
async function toggleReplay(page, next) {
  await page.click('#replay');
  await page.waitForFunction(([want]) => document.querySelector('#replay').textContent === want, [next]);
}

/** The dashboard's running count of readings scored from its sources ("N scored, M flagged"). */
async function scoredSoFar(page) {
  return page.evaluate(() => parseInt(document.querySelector('#replay-stats').textContent, 10) || 0);
}

test('installable PWA that scores like onnxruntime and works offline', { timeout: 300_000 }, async () => {
  const port = 20_000 + Math.floor(Math.random() * 2000);
  const db = join(tempDir('edge-pwa-'), 'telemetry.sqlite');
  let collector = await startCollector({ port, db, ...DIST });
  const browser = await launchPersistentChromium();
  try {
    const { context, page } = await openApp(browser, port);

    // Same scores as onnxruntime's golden outputs, one reading per message, through the worker.
    const { rtol, atol } = golden.tolerance;
    for (const [i, row] of golden.rows.entries()) {
      const { scores } = await message(page, 'score', { rows: row, features: row.length });
      const want = golden.scores.int8_weight_only[i];
      assert.ok(Math.abs(scores[0] - want) <= atol + rtol * Math.abs(want), `row ${i}: ${scores[0]} vs ${want}`);
    }

    // Served cross-origin isolated (COOP + COEP from the collector), so page and worker get
    // fine-grained timers; the model tile names the backend that scores (the fused kernel).
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
    await page.waitForFunction(() => document.querySelector('#t-model').textContent.includes('(dense)'));

    // Chrome's own installability check.
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors, [], JSON.stringify(installabilityErrors));
    const manifest = await cdp.send('Page.getAppManifest');
    assert.deepEqual(manifest.errors, [], JSON.stringify(manifest.errors));

    // Replay from the page's controls streams scores.
    await page.fill('#rate', '100');
    await toggleReplay(page, 'Stop');
    await page.waitForFunction(() => parseInt(document.querySelector('#replay-stats').textContent, 10) >= 40);
    // The score chart is drawn: count pixels in the line colour, and the latency tile is filled.
    const linePixels = await page.evaluate(() => {
      const c = document.querySelector('#scores');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] === 11 && d[i + 1] === 92 && d[i + 2] === 173) n++;
      return n;
    });
    assert.ok(linePixels > 100, `score line drawn (${linePixels} px)`);
    assert.match(await page.textContent('#t-latency'), /µs/);
    mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'artifacts/dashboard.png'), fullPage: true });
    await toggleReplay(page, 'Start');

    // Synthetic generator: normal-looking readings, and an injected excursion raises alerts.
    await page.selectOption('#source', 'synthetic');
    let from = await scoredSoFar(page);
    await toggleReplay(page, 'Stop');
    await page.waitForFunction(([n]) => parseInt(document.querySelector('#replay-stats').textContent, 10) >= n + 10, [from]);
    // The list keeps the latest 50; its data-total counts every alert.
    const total = () => Number(document.querySelector('#alerts').dataset.total || 0);
    const alertsBefore = await page.evaluate(total);
    // Clicked in the page so the message naming the injected channel is read before the next
    // reading overwrites it.
    const injected = await page.evaluate(() => {
      document.querySelector('#inject').click();
      return document.querySelector('#replay-stats').textContent;
    });
    const channel = injected.match(/anomaly injected on (\S+)/)[1];
    await page.waitForFunction(([n]) => Number(document.querySelector('#alerts').dataset.total || 0) >= n + 3, [alertsBefore]);
    await toggleReplay(page, 'Start');
    // The five injected readings' alerts name the injected channel first (a normal reading
    // the model happens to flag may sit among them), and the newest alert is charted.
    const named = await page.$$eval('#alerts li', (items) => items.slice(0, 5).map((li) => li.dataset.channel));
    assert.ok(named.filter((c) => c === channel).length >= 3, `${channel} in ${named}`);
    const newest = await page.textContent('#alerts li');
    assert.match(newest, / — \S+ \d+%/);
    assert.equal(await page.getAttribute('#why', 'data-channel'), await page.getAttribute('#alerts li', 'data-channel'));
    assert.match(await page.textContent('#why-info'), /repairing the channel alone/);
    // Selecting an older alert charts that one.
    await page.click('#alerts li:nth-child(3)');
    assert.equal(await page.getAttribute('#alerts li:nth-child(3)', 'aria-current'), 'true');
    await page.locator('section[aria-labelledby="alerts-h"]').screenshot({ path: join(ROOT, 'artifacts/alert-channels.png') });

    // The user's own CSV: rows are scored; a bad file is refused with its line number.
    await page.selectOption('#source', 'csv');
    const csvRows = readFileSync(join(ROOT, 'models/shuttle/sample.csv'), 'utf8').split('\n').slice(0, 6).join('\n');
    await page.setInputFiles('#csv', { name: 'mine.csv', mimeType: 'text/csv', buffer: Buffer.from(csvRows) });
    from = await scoredSoFar(page);
    await toggleReplay(page, 'Stop');
    await page.waitForFunction(([n]) => parseInt(document.querySelector('#replay-stats').textContent, 10) >= n + 3, [from]);
    await toggleReplay(page, 'Start');
    await page.setInputFiles('#csv', { name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from('f1,f2\n1,oops\n') });
    await toggleReplay(page, 'Start');
    await page.waitForFunction(() => /cannot start: line 2/.test(document.querySelector('#replay-stats').textContent));

    const online = await waitFor('first records synced', async () => {
      await message(page, 'flush');
      const { status } = await message(page, 'status');
      return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
    });
    // Drift: the dashboard plots this device's score distribution against the training one,
    // and the statistics reach the collector as OTLP metrics (/v1/metrics → /api/drift).
    await page.waitForFunction(() => /\d+ scores · PSI \d/.test(document.querySelector('#drift-info').textContent));
    const shown = (await message(page, 'status')).status.drift;
    assert.ok(shown.count >= golden.rows.length && shown.bounds.length > 0, JSON.stringify(shown));
    const drift = await waitFor(
      'drift at the collector',
      async () => {
        await message(page, 'flush');
        const rows = await api(port, '/api/drift');
        return { done: rows.some((r) => r.device_id === online.status.device_id && r.count > 0), rows };
      },
      90_000,
      1000,
    );
    const mine = drift.rows.find((r) => r.device_id === online.status.device_id);
    assert.equal(mine.model_version, shown.model_version);
    assert.equal(mine.bucket_counts.length, shown.bounds.length + 1);
    const before = online.status.outbox.sent_records_total;
    assert.ok(before >= golden.rows.length + 20);

    // Offline: collector gone and the network emulated offline; the reload comes from the cache.
    await stopCollector(collector);
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
    for (const row of golden.rows.slice(0, 10)) await message(page, 'score', { rows: row, features: row.length });
    const offline = (await message(page, 'status')).status;
    assert.equal(offline.outbox.queued + offline.outbox.inflight_records, 10, 'scored offline into the outbox');
    await page.waitForTimeout(1500); // one status refresh, so the screenshot shows the queue
    await page.screenshot({ path: join(ROOT, 'artifacts/dashboard-offline.png'), fullPage: true });

    // Back online: the outbox drains and the collector holds every record once.
    collector = await startCollector({ port, db, ...DIST });
    await context.setOffline(false);
    const drained = await waitFor('outbox to drain', async () => {
      await message(page, 'online');
      const { status } = await message(page, 'status');
      return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
    });
    const stats = await api(port, '/api/stats');
    assert.equal(drained.status.outbox.sent_records_total, before + 10);
    assert.equal(stats.records, before + 10, 'every record stored exactly once');
  } finally {
    await browser.close();
    await stopCollector(collector);
  }
});
