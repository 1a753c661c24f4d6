// The core scenario, for the browsers driven through plain WebDriver (Firefox ESR through
// geckodriver, WebKit through WebKitWebDriver; Chromium's suites use Playwright): the app loads
// from the collector, the module service worker scores the golden rows like onnxruntime; with the
// collector stopped, a reload still shows the app (from the worker's cache) and scoring goes on
// into the outbox; when the collector is back the outbox drains, every record once. Neither
// engine has Background Sync, so the drain exercises the other flush triggers (worker start,
// the page's `online` message, writes while the collector answers). Then signed model updates:
// the bundled model was verified before it scored; v2 published at the collector is downloaded,
// verified and activated; a tampered release is refused with its reason while v2 keeps scoring.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RELAXED_SIMD_PROBE, ROOT, api, startCollector, stopCollector, tempDir, waitFor } from './harness.mjs';
import { BROWSERS, Session, startDriver } from './webdriver.mjs';

const COLLECTOR = process.env.COLLECTOR_BIN || join(ROOT, 'target/debug/collector');
const FIXTURES = join(ROOT, 'tests/fixtures/releases');
const publish = (dir, releases) =>
  JSON.parse(execFileSync(COLLECTOR, ['publish-model', dir, '--releases', releases], { encoding: 'utf8' }));
const golden = JSON.parse(readFileSync(join(ROOT, 'models/shuttle/golden.json'), 'utf8'));

/**
 * Navigates and polls until the *new* document says it is ready. With pageLoadStrategy none the
 * navigate call returns at once, so the old document is marked first: it may still answer a poll
 * (ready, then "Document was unloaded") before the navigation replaces it.
 */
async function open(session, url) {
  await session.cmd('POST', '/execute/sync', { script: 'window.__e2eLeaving = true', args: [] }).catch(() => {});
  await session.navigate(url);
  return waitFor(
    'app ready',
    async () => {
      const script = "return !window.__e2eLeaving && !!(document.body && document.body.dataset.ready === 'true')";
      const ready = await session.cmd('POST', '/execute/sync', { script, args: [] }).catch(() => false);
      return { done: ready === true };
    },
    60_000,
    200,
  );
}
const SEND = `const [type, body] = args;
  const { request } = await import('./client.js');
  if (body.rows) body.rows = Float32Array.from(body.rows);
  const r = await request(type, body);
  if (r.scores) r.scores = Array.from(r.scores);
  return r;`;

/** Registers the scenario as a test in `browser` (a key of `BROWSERS`). */
export function coreScenario(browser) {
  test(
    `${BROWSERS[browser].name}: scores like onnxruntime, works offline, drains exactly once`,
    { timeout: 300_000 },
    async () => {
      // Node's test runner cancels a test when only unref'd work is pending (a child starting, a
      // WebDriver call in flight); this timer keeps the loop alive until the test ends.
      const keepAlive = setInterval(() => {}, 1000);
      const port = 22_000 + Math.floor(Math.random() * 2000);
      const driverPort = port + 1;
      const db = join(tempDir(`edge-${browser}-`), 'telemetry.sqlite');
      let collector = await startCollector({ port, db });
      const driver = await startDriver(browser, driverPort);
      let session;
      try {
        session = await Session.create(driverPort, tempDir(`edge-${browser}-profile-`), browser);
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
        // Those scores came from the small engine's compilation this browser can run.
        const relaxed = await session.run('return WebAssembly.validate(new Uint8Array(args[0]));', RELAXED_SIMD_PROBE);
        const { status: engine } = await send('status');
        assert.equal(engine.engine_build, 'small');
        assert.equal(engine.engine_simd, relaxed ? 'relaxed-simd' : 'simd128');
        console.log(`${browser}: small engine, ${engine.engine_simd}`);
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

        const releases = join(tempDir(`edge-${browser}-releases-`), 'releases');
        collector = await startCollector({ port, db, args: ['--releases', releases] });
        await waitFor('outbox to drain', async () => {
          await send('online');
          const { status } = await send('status');
          return { done: status.outbox.queued === 0 && status.outbox.inflight_records === 0, status };
        });
        const stats = await api(port, '/api/stats');
        assert.equal(stats.records, before + 10, 'every record stored exactly once');

        // Signed model updates.
        assert.equal(offline.model.version, '1.0.0+8d0b1cd9', 'the bundled model, verified');
        publish(join(FIXTURES, '2.0.0'), releases);
        const { update } = await send('check-update');
        assert.equal(update.state, 'activated', JSON.stringify(update));
        const tampered = publish(join(FIXTURES, '2.5.0'), releases);
        const modelPath = join(releases, tampered.version, 'model.int8.onnx');
        const bytes = readFileSync(modelPath);
        bytes[300] ^= 0x10;
        writeFileSync(modelPath, bytes);
        const refused = (await send('check-update')).update;
        assert.equal(refused.state, 'refused');
        assert.match(refused.error, /MODEL_FILE_DIGEST/);
        const { status: updated } = await send('status');
        assert.equal(updated.model.version, '2.0.0+8d0b1cd9', 'v2 keeps scoring');
        const { scores } = await send('score', { rows: golden.rows[0], features: 9 });
        assert.ok(scores[0] !== null);
      } finally {
        if (session) await session.close();
        driver.stop();
        await stopCollector(collector);
        clearInterval(keepAlive); // last: closing the session is a WebDriver call in flight too
      }
    },
  );
}
