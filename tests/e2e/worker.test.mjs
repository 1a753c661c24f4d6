// The worker's own promises, end to end in headless Chromium against the real collector:
// readings with missing values are recorded unscored (not refused) and every refused reading is
// counted by reason; one flush at a time across every worker of the origin (Web Locks); a
// request that gets no answer times out instead of holding the flush for ever; the endpoint and
// token survive a worker restart, and a refused token holds the queue as "authentication needed".
/* global document, window -- in the functions given to page.evaluate and page.waitForFunction, which run in the page */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, launchChromium, message, openApp, setFault, startCollector, stopCollector, tempDir, waitFor } from './harness.mjs';

// E2E_DIST serves another build of the PWA than dist/.
const DIST = process.env.E2E_DIST ? { staticDir: process.env.E2E_DIST } : {};
const ROW = [55, -2, 78, 0, 54, -4, 23, 24, 2];

async function withApp(opts, body) {
  const port = 22_000 + Math.floor(Math.random() * 2000);
  const db = join(tempDir('edge-worker-'), 'telemetry.sqlite');
  const collector = await startCollector({ port, db, ...DIST, ...opts });
  const browser = await launchChromium();
  try {
    const { page, context } = await openApp(browser, port);
    await body({ page, context, port });
  } finally {
    await browser.close();
    await stopCollector(collector);
  }
}

/** Sends a raw message (no client-side conversion) and returns the reply or the error. */
async function raw(page, msg) {
  return page.evaluate(async (msg) => {
    const { request } = await import('./client.js');
    try {
      return await request(msg.type, msg.body);
    } catch (e) {
      return { error: { code: e.code, message: e.message } };
    }
  }, msg);
}

/** Flushes until this flush is not refused for another one running (the worker's own start or
 * write-triggered flush may hold the lock). */
async function ownFlush(page) {
  for (;;) {
    const { outcome } = await message(page, 'flush');
    if (outcome.status !== 'AlreadyRunning') return outcome;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function drained(page) {
  return waitFor(
    'outbox to drain',
    async () => {
      await message(page, 'flush');
      const { status } = await message(page, 'status');
      return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
    },
    60_000,
  );
}

test('missing values are recorded unscored, refusals are counted by reason', { timeout: 180_000 }, async () => {
  await withApp({}, async ({ page, port }) => {
    const before = (await message(page, 'status')).status;
    // One reading with a NaN between two good ones: all three recorded, the NaN one unscored.
    const rows = [...ROW, ...ROW.map((v, i) => (i === 4 ? NaN : v)), ...ROW];
    const r = await message(page, 'score', { rows, features: 9 });
    assert.equal(r.scores.length, 3);
    assert.equal(typeof r.scores[0], 'number');
    assert.equal(r.scores[1], null);
    assert.equal(typeof r.scores[2], 'number');
    assert.deepEqual(r.reasons, [null, 'NON_FINITE', null]);
    assert.deepEqual(
      r.anomalies.map((a) => typeof a),
      ['boolean', 'boolean', 'boolean'],
    );
    assert.equal(r.anomalies[1], false);

    // A value float32 cannot hold is refused by the worker's checks; a reading of the wrong
    // length by the app. Neither is recorded; both are counted.
    const overflow = await raw(page, { type: 'score', body: { rows: [...ROW.slice(0, 8), 1e39], features: 9 } });
    assert.equal(overflow.error.code, 'OUT_OF_RANGE');
    const short = await raw(page, { type: 'score', body: { rows: ROW.slice(0, 8), features: 8 } });
    assert.equal(short.error.code, 'WRONG_LENGTH');

    const { status } = await message(page, 'status');
    assert.equal(
      status.outbox.queued + status.outbox.inflight_records + status.outbox.sent_records_total,
      before.outbox.queued + before.outbox.inflight_records + before.outbox.sent_records_total + 3,
    );
    assert.deepEqual(status.dropped, { OUT_OF_RANGE: 1, WRONG_LENGTH: 1 });

    // The dashboard shows them.
    await page.waitForFunction(() => /OUT_OF_RANGE 1/.test(document.querySelector('#t-dropped').textContent), null, {
      timeout: 5000,
    });
    // And the unscored reading reaches the collector with its raw values.
    await drained(page);
    const stats = await api(port, '/api/stats');
    assert.ok(stats.records >= 3);
  });
});

test('a flush waits for the origin-wide flush lock, whoever holds it', { timeout: 180_000 }, async () => {
  await withApp({}, async ({ page, port }) => {
    await drained(page);
    const sent = (await api(port, '/api/stats')).records;
    // The page takes the lock every worker's flush needs (as an older worker mid-flush would).
    await page.evaluate(() => {
      window.releaseFlushLock = null;
      navigator.locks.request(
        'edge-outbox-flush',
        () =>
          new Promise((release) => {
            window.releaseFlushLock = release;
          }),
      );
    });
    await page.waitForFunction(() => window.releaseFlushLock !== null);
    await message(page, 'score', { rows: ROW, features: 9 });
    const held = (await message(page, 'flush')).outcome;
    assert.equal(held.status, 'AlreadyRunning');
    assert.equal((await api(port, '/api/stats')).records, sent, 'nothing sent while another holds the lock');
    await page.evaluate(() => window.releaseFlushLock());
    await drained(page);
    assert.equal((await api(port, '/api/stats')).records, sent + 1);
  });
});

test('a request that never gets an answer times out and is retried', { timeout: 180_000 }, async () => {
  await withApp({ faults: true }, async ({ page, port }) => {
    await drained(page);
    // The collector holds the next request for 100 s: past the transport's 30 s deadline.
    await setFault(port, { mode: 'delay', delay_ms: 100_000, count: 1 });
    const t0 = Date.now();
    await message(page, 'score', { rows: ROW, features: 9 });
    const outcome = await ownFlush(page);
    const secs = (Date.now() - t0) / 1000;
    assert.equal(outcome.status, 'Backoff', JSON.stringify(outcome));
    assert.match(outcome.last_error, /timed out/);
    assert.ok(secs < 60, `the flush ended after ${secs} s`);
    await waitFor(
      'retry after the timeout',
      async () => {
        await message(page, 'online');
        const { status } = await message(page, 'status');
        return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
      },
      90_000,
      1000,
    );
  });
});

test('endpoint and token survive a worker restart; a refused token holds the queue', { timeout: 180_000 }, async () => {
  await withApp({ args: ['--token', 'right'] }, async ({ page, context, port }) => {
    const endpoint = `http://127.0.0.1:${port}`;
    const auth = { headers: { authorization: 'Bearer right' } };
    const ok = await raw(page, { type: 'configure', body: { endpoint, token: 'right' } });
    assert.ok(ok.ok, JSON.stringify(ok));
    // Stop the worker: the next message starts a fresh one, which must read the settings back.
    const cdp = await context.newCDPSession(page);
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    await message(page, 'score', { rows: ROW, features: 9 });
    await waitFor(
      'sent with the stored token',
      async () => {
        await ownFlush(page);
        const { status } = await message(page, 'status');
        return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
      },
      60_000,
      500,
    );
    assert.equal((await message(page, 'status')).status.endpoint, endpoint);
    const sent = (await api(port, '/api/stats', auth)).records;
    assert.ok(sent >= 1);

    // A refused token holds the queue instead of dead-lettering it.
    await raw(page, { type: 'configure', body: { endpoint, token: 'wrong' } });
    await message(page, 'score', { rows: ROW, features: 9 });
    const outcome = await ownFlush(page);
    assert.equal(outcome.status, 'AuthNeeded', JSON.stringify(outcome));
    const { status } = await message(page, 'status');
    assert.equal(status.outbox.dead_letter_records, 0, 'held, not dead-lettered');
    assert.ok(status.outbox.queued + status.outbox.inflight_records >= 1);
    // The dashboard asks for a token; giving it sends the queue.
    await page.waitForSelector('#auth:not([hidden])', { timeout: 5000 });
    assert.match(await page.textContent('#t-last'), /authentication needed/);
    await page.fill('#token', 'right');
    await page.click('#auth button');
    await waitFor(
      'queue sent with the new token',
      async () => {
        const { status } = await message(page, 'status');
        return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
      },
      60_000,
      500,
    );
    assert.equal((await api(port, '/api/stats', auth)).records, sent + 1);
  });
});
