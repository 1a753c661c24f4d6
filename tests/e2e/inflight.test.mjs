// Readings in flight when the worker stops: the page streams readings while the harness stops
// the service worker again and again (CDP ServiceWorker.stopAllWorkers). The page resends every
// unanswered reading under the id it gave it, the outbox recognises the ones it already
// recorded, and the collector ends with exactly N records, seqs 0..N-1 without a gap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, launchChromium, message, openApp, startCollector, stopCollector, tempDir, waitFor } from './harness.mjs';

// E2E_DIST serves another build of the PWA than dist/.
const DIST = process.env.E2E_DIST ? { staticDir: process.env.E2E_DIST } : {};
const N = Number(process.env.E2E_INFLIGHT_READINGS || 1500);
const STOPS = Number(process.env.E2E_INFLIGHT_STOPS || 12);

test('stopping the worker mid-stream loses and duplicates nothing', { timeout: 400_000 }, async () => {
  const port = 24_000 + Math.floor(Math.random() * 2000);
  const db = join(tempDir('edge-inflight-'), 'telemetry.sqlite');
  const collector = await startCollector({ port, db, ...DIST });
  const browser = await launchChromium();
  try {
    const { page, context } = await openApp(browser, port);
    const cdp = await context.newCDPSession(page);
    await cdp.send('ServiceWorker.enable');

    // Up to 16 readings outstanding at a time, one reading per request, as a sensor page would.
    const streaming = page.evaluate(async (n) => {
      const { request } = await import('./client.js');
      const row = [55, -2, 78, 0, 54, -4, 23, 24, 2];
      let next = 0;
      const lane = async () => {
        while (next < n) {
          next++;
          await request('score', { rows: Float32Array.from(row), features: 9 });
        }
      };
      await Promise.all(Array.from({ length: 16 }, lane));
      return next;
    }, N);
    let stops = 0,
      done = false;
    streaming.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    while (!done && stops < STOPS) {
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 400));
      if (done) break;
      await cdp.send('ServiceWorker.stopAllWorkers');
      stops++;
    }
    assert.equal(await streaming, N, 'every reading got an answer');
    assert.ok(stops >= 3, `the worker was stopped mid-stream (${stops} times)`);

    await waitFor(
      'outbox to drain',
      async () => {
        await message(page, 'flush');
        const { status } = await message(page, 'status');
        return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, o: status.outbox };
      },
      120_000,
    );
    const { devices } = await api(port, '/api/devices');
    assert.equal(devices.length, 1);
    const [d] = devices;
    console.log(
      JSON.stringify({
        inflight: {
          readings: N,
          worker_stops: stops,
          stored: d.count,
          min_seq: d.min_seq,
          max_seq: d.max_seq,
          missing: d.missing,
        },
      }),
    );
    assert.equal(d.count, N, 'exactly one record per reading');
    assert.equal(d.min_seq, 0);
    assert.equal(d.max_seq, N - 1, 'no seq consumed without a record');
    assert.equal(d.missing, 0);
  } finally {
    await browser.close();
    await stopCollector(collector);
  }
});
