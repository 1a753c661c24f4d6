// The outbox end to end: headless Chromium scores 10,000 held-out shuttle readings in the
// service worker while the collector is down; the collector comes back and ends with exactly
// 10,000 unique records. Then again with 503 + Retry-After, 429, and connection resets (the
// collector stores the batch but the acknowledgement is lost) injected during the flush.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT,
  api,
  launchChromium,
  message,
  openApp,
  setFault,
  startCollector,
  stopCollector,
  tempDir,
  waitFor,
} from './harness.mjs';

const N = Number(process.env.E2E_READINGS || 10_000);
const CHUNK = 100;

function sampleRows() {
  const lines = readFileSync(join(ROOT, 'models/shuttle/sample.csv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => l.split(',').slice(0, -1).map(Number));
}

async function scoreReadings(page, rows, n) {
  let scored = 0;
  for (let i = 0; scored < n; i++) {
    const take = Math.min(CHUNK, n - scored);
    const chunk = [];
    for (let j = 0; j < take; j++) chunk.push(...rows[(scored + j) % rows.length]);
    const r = await message(page, 'score', { rows: chunk, features: 9 });
    assert.equal(r.scores.length, take);
    scored += take;
  }
}

async function drain(page, port, faults) {
  const pending = [...faults];
  return waitFor('outbox to drain', async () => {
    // Arm the next fault once the previous one is used up, so each kind hits a live flush.
    if (pending.length && (await api(port, '/admin/faults')).mode === 'none') {
      await setFault(port, pending.shift());
    }
    await message(page, 'online'); // what the page does on `online`: cut backoff, flush
    const { status } = await message(page, 'status');
    const o = status.outbox;
    return { done: !pending.length && o.queued === 0 && o.inflight_records === 0, o, last: status.last_flush };
  });
}

async function scenario(name, faults, { n = N, args = [] } = {}) {
  const port = 18_000 + Math.floor(Math.random() * 2000);
  const db = join(tempDir('edge-e2e-'), 'telemetry.sqlite');
  let collector = await startCollector({ port, db, faults: true, args });
  const browser = await launchChromium();
  try {
    const { page } = await openApp(browser, port);
    await stopCollector(collector); // offline from here on
    const t0 = performance.now();
    await scoreReadings(page, sampleRows(), n);
    const writeSecs = (performance.now() - t0) / 1000;
    const { status } = await message(page, 'status');
    assert.equal(status.outbox.queued + status.outbox.inflight_records, n, 'all readings queued while offline');
    assert.equal(status.outbox.sent_records_total, 0);

    collector = await startCollector({ port, db, faults: true, args });
    const t1 = performance.now();
    const { o, last } = await drain(page, port, faults);
    const flushSecs = (performance.now() - t1) / 1000;
    const stats = await api(port, '/api/stats');
    assert.equal(stats.records, n, `${name}: collector holds exactly ${n} records`);
    assert.equal(stats.unique_devices, 1);
    assert.equal(stats.missing_seqs, 0, 'no gaps');
    assert.equal(o.dead_letter_records, 0, 'nothing dead-lettered');
    assert.equal(o.sent_records_total, n);
    console.log(
      JSON.stringify({
        scenario: name,
        readings: n,
        write_records_per_s: Math.round(n / writeSecs),
        flush_records_per_s: Math.round(n / flushSecs),
        collector: stats,
      }),
    );
    return { stats, o, last };
  } finally {
    await browser.close();
    await stopCollector(collector);
  }
}

test('10,000 readings scored offline reach the collector exactly once', { timeout: 600_000 }, async () => {
  await scenario('collector down, then back', []);
});

test('still exactly once with 503 + Retry-After, 429 and connection resets during the flush', { timeout: 600_000 }, async () => {
  const { stats } = await scenario('faults during flush', [
    { mode: 'status', status: 503, retry_after: 1, count: 2 },
    { mode: 'status', status: 429, retry_after: 1, count: 2 },
    { mode: 'reset', count: 3 }, // stored, acknowledgement lost: the retry must dedupe
    { mode: 'status', status: 502, count: 1 },
    { mode: 'reset_before_store', count: 2 },
  ]);
  assert.ok(stats.requests.faulted >= 10, `all faults were injected: ${JSON.stringify(stats.requests)}`);
  assert.ok(stats.duplicates_ignored + (stats.idempotent_replays || 0) >= 1, 'a lost ack was replayed and deduped');
});

test('a collector with a small body limit gets every record, in batches it takes', { timeout: 600_000 }, async () => {
  // 64 KiB of (inflated) body, about 95 of these records: a batch over it is refused as too
  // large (413) and cut in halves until the collector takes it, nothing is dead-lettered, and
  // the batches after it stay that small.
  const { stats } = await scenario('small body limit', [], { n: 3_000, args: ['--max-body-bytes', '65536'] });
  const { ok, rejected } = stats.requests;
  assert.ok(rejected >= 1, `the collector refused some batches as too large: ${JSON.stringify(stats.requests)}`);
  assert.ok(ok >= (3_000 * 689) / 65_536, `every batch it took was under its limit: ${JSON.stringify(stats.requests)}`);
});
