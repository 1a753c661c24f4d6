// The core scenario in headless Firefox ESR through geckodriver: the app loads from the
// collector, the module service worker scores the golden rows like onnxruntime; with the
// collector stopped, a reload still shows the app (from the worker's cache) and scoring goes on
// into the outbox; when the collector is back the outbox drains, every record once. Firefox has
// no Background Sync, so this exercises the other flush triggers for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, api, startCollector, stopCollector, tempDir, waitFor } from './harness.mjs';
import { Session, startGeckodriver } from './webdriver.mjs';

const golden = JSON.parse(readFileSync(join(ROOT, 'models/shuttle/golden.json'), 'utf8'));

/**
 * Navigates and polls until the *new* document says it is ready. With pageLoadStrategy none the
 * navigate call returns at once, so the old document is marked first: it may still answer a poll
 * (ready, then "Document was unloaded") before the navigation replaces it.
 */
async function open(session, url) {
  await session.cmd('POST', '/execute/sync', { script: 'window.__e2eLeaving = true', args: [] }).catch(() => {});
  await session.navigate(url);
  return waitFor('app ready', async () => {
    const script = "return !window.__e2eLeaving && !!(document.body && document.body.dataset.ready === 'true')";
    const ready = await session.cmd('POST', '/execute/sync', { script, args: [] }).catch(() => false);
    return { done: ready === true };
  }, 60_000, 200);
}
const SEND = `const [type, body] = args;
  const { request } = await import('./client.js');
  if (body.rows) body.rows = Float32Array.from(body.rows);
  const r = await request(type, body);
  if (r.scores) r.scores = Array.from(r.scores);
  return r;`;

test('Firefox ESR: scores like onnxruntime, works offline, drains exactly once', { timeout: 300_000 }, async () => {
  // Node's test runner cancels a test when only unref'd work is pending (a child starting, a
  // WebDriver call in flight); this timer keeps the loop alive until the test ends.
  const keepAlive = setInterval(() => {}, 1000);
  const port = 22_000 + Math.floor(Math.random() * 2000);
  const gdPort = port + 1;
  const db = join(tempDir('edge-ff-'), 'telemetry.sqlite');
  let collector = await startCollector({ port, db });
  const gecko = await startGeckodriver(gdPort);
  let session;
  try {
    session = await Session.create(gdPort, tempDir('edge-ff-profile-'));
    // The session has a 30 s script timeout by default; our waits are shorter.
    await session.cmd('POST', '/timeouts', { script: 90_000 });
    await open(session, `http://127.0.0.1:${port}/`);
    const send = (type, body = {}) => session.run(SEND, type, body);

    const { rtol, atol } = golden.tolerance;
    for (const [i, row] of golden.rows.entries()) {
      const { scores } = await send('score', { rows: row, features: row.length });
      const want = golden.scores.int8_weight_only[i];
      assert.ok(Math.abs(scores[0] - want) <= atol + rtol * Math.abs(want), `row ${i}: ${scores[0]} vs ${want}`);
    }
    const first = await waitFor('first records synced', async () => {
      await send('flush');
      const { status } = await send('status');
      return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
    });
    const before = first.status.outbox.sent_records_total;
    assert.equal(before, golden.rows.length);

    await stopCollector(collector);
    // A normal navigation, not WebDriver's refresh: Firefox's refresh bypasses the service
    // worker like a shift-reload, which no user does to open an offline app.
    await open(session, `http://127.0.0.1:${port}/`);
    for (const row of golden.rows.slice(0, 10)) await send('score', { rows: row, features: row.length });
    const { status: offline } = await send('status');
    assert.equal(offline.outbox.queued + offline.outbox.inflight_records, 10);

    collector = await startCollector({ port, db });
    await waitFor('outbox to drain', async () => {
      await send('online');
      const { status } = await send('status');
      return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
    });
    const stats = await api(port, '/api/stats');
    assert.equal(stats.records, before + 10, 'every record stored exactly once');
  } finally {
    if (session) await session.close();
    gecko.stop();
    await stopCollector(collector);
    clearInterval(keepAlive); // last: closing the session is a WebDriver call in flight too
  }
});
