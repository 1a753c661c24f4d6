// Storage pressure, end to end in headless Chromium against the real collector:
// 1. the outbox filled to its cap and well past it while the collector is down: the oldest
//    records are evicted and counted (worker status and dashboard), every score request is
//    still answered, and once the collector is back it receives valid records only (each one a
//    reading the page was answered for, no duplicates, the newest kept) and the outbox drains;
// 2. the same with a small browser storage quota (CDP Storage.overrideQuotaForOrigin, set before
//    the origin opens IndexedDB in the browser session, see openWithQuota): the first quota
//    error evicts a bounded number of the oldest records (counted as evicted_quota_total), every
//    later reading is scored and counted as not recorded (STORE_QUOTA), no score request is
//    refused, and the outbox drains with nothing corrupt read back.
// Sizes by env: PRESSURE_CAPACITY (default 300), PRESSURE_READINGS (default 3 x capacity),
// PRESSURE_QUOTA_READINGS (default 6,000), PRESSURE_QUOTA_HEADROOM bytes (default 1 MiB: the
// quota is reached after about 3,000 readings of about 330 bytes each).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, ROOT, deployFile, launchChromium, message, openApp, tempDir, waitFor } from './harness.mjs';
import { Collector, freePort } from './chaos/collector.mjs';
import { account } from './chaos/ledger.mjs';
import { readingSource, scoreKey } from './chaos/stream.mjs';

const STATIC_DIR = process.env.CHAOS_STATIC_DIR || join(ROOT, 'dist');
const CAPACITY = Number(process.env.PRESSURE_CAPACITY || 300);
const READINGS = Number(process.env.PRESSURE_READINGS || 3 * CAPACITY);
const QUOTA_READINGS = Number(process.env.PRESSURE_QUOTA_READINGS || 6_000);
const QUOTA_HEADROOM = Number(process.env.PRESSURE_QUOTA_HEADROOM || 1024 * 1024);
const CHUNK = 50;
const summary = {};

/** A private copy of the build whose worker opens the outbox with `capacity` records. The
 * page has no setting for it, so the copy's sw.js gets the number in place of its 0
 * ("default"), the way the update test deploys a new version into a copy. */
function siteWithCapacity(capacity) {
  const site = join(tempDir('edge-pressure-site-'), 'dist');
  cpSync(STATIC_DIR, site, { recursive: true });
  const path = join(site, 'sw.js');
  const sw = readFileSync(path, 'utf8');
  const patched = sw.replace(/(EdgeApp\.open\([^;]*?),\s*0\s*\)/, `$1, ${capacity})`);
  assert.notEqual(patched, sw, 'sw.js opens EdgeApp with a literal capacity 0 that the test can replace');
  deployFile(path, patched);
  return site;
}

/** Scores readings `from`..`from + n - 1` through the page client; every request must be
 * answered with a score per reading. Returns the multiset of scores. */
async function score(page, from, n, acked = new Map(), refused = null) {
  const reading = readingSource();
  for (let i = from; i < from + n; i += CHUNK) {
    const take = Math.min(CHUNK, from + n - i);
    const rows = [];
    for (let j = i; j < i + take; j++) rows.push(...reading(j));
    let r;
    try {
      r = await message(page, 'score', { rows, features: 9 });
    } catch (e) {
      if (!refused) throw e;
      refused.push({ from: i, error: e.message.split('\n')[0] });
      continue;
    }
    assert.equal(r.scores.length, take, `readings ${i}..: one score per reading`);
    for (const s of r.scores) acked.set(scoreKey(s), (acked.get(scoreKey(s)) || 0) + 1);
  }
  return acked;
}

async function status(page) {
  return (await message(page, 'status')).status;
}

/** Opens the app in a persistent profile whose origin has a quota of its usage plus
 * `headroom` bytes. Chromium's IndexedDB takes the origin's quota when the origin first opens
 * its databases in a browser session: an override set after that (with the app open) shows in
 * DevTools but refuses no write (200 MB went past a 5 MB one). So the app is installed in one
 * session (service worker, cached shell of about 21 MB, outbox opened) and the browser closed;
 * in the next session the override is set from a blank page before the app's origin loads.
 * `usageAndQuota` reads the DevTools view (the page's `navigator.storage.estimate` does not
 * show the override). */
async function openWithQuota(port, headroom) {
  const dir = tempDir('edge-pressure-profile-');
  const launch = () =>
    chromium.launchPersistentContext(dir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
    });
  const first = await launch();
  try {
    await openApp(first, port);
  } finally {
    await first.close();
  }
  const context = await launch();
  try {
    const origin = `http://127.0.0.1:${port}`;
    const blank = context.pages()[0] || (await context.newPage());
    const cdp = await context.newCDPSession(blank);
    const usageAndQuota = () => cdp.send('Storage.getUsageAndQuota', { origin });
    const { usage } = await usageAndQuota();
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: usage + headroom });
    const { page } = await openApp(context, port);
    return { context, page, usage, usageAndQuota };
  } catch (e) {
    await context.close();
    throw e;
  }
}

async function drain(page) {
  return waitFor(
    'outbox to drain',
    async () => {
      await message(page, 'online');
      const s = await status(page);
      return { done: s.outbox.queued === 0 && s.outbox.inflight_records === 0, outbox: s.outbox };
    },
    90_000,
    500,
  );
}

/** What reached the collector, checked: each record a reading the page was answered for (by
 * score), none twice, one device. */
async function received(collector, acked, sent) {
  const stats = await collector.stats();
  await collector.kill();
  const acct = account(acked, sent, collector.records());
  assert.equal(stats.requests.rejected, 0, `the collector rejected no request: ${JSON.stringify(stats.requests)}`);
  assert.equal(acct.unscored, 0, 'every stored record is scored');
  assert.equal(acct.duplicated, 0, 'every stored record is one acknowledged reading, none twice');
  assert.equal(Object.keys(acct.devices).length, 1, 'one device');
  return { stats, acct };
}

function writeSummary() {
  const path = join(ROOT, 'artifacts/pressure-summary.json');
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `${JSON.stringify(summary, null, 2)}\n`);
}

/** Checks the dashboard shows `evicted` evictions, restarts the collector and waits for the
 * outbox to drain with nothing dead-lettered or rejected. Returns how long the drain took. */
async function showsEvictionThenDrains(page, collector, evicted) {
  await waitFor(
    'dashboard shows the eviction',
    async () => {
      const text = await page.textContent('#sync');
      return { done: text.includes(`evicted ${evicted}`), text };
    },
    10_000,
  );
  await collector.start();
  const d0 = Date.now();
  const { outbox } = await drain(page);
  const drainMs = Date.now() - d0;
  assert.equal(outbox.dead_letter_records, 0, 'nothing dead-lettered');
  assert.equal(outbox.rejected_records_total, 0, 'the collector rejected no record');
  return { drainMs };
}

test(
  `outbox past its cap (${CAPACITY} records, ${READINGS} readings): oldest evicted and counted, scoring goes on, the rest drains`,
  { timeout: 120_000 },
  async () => {
    const site = siteWithCapacity(CAPACITY);
    const port = await freePort();
    const collector = new Collector({ port, db: join(tempDir('edge-pressure-'), 'telemetry.sqlite'), staticDir: site });
    await collector.start();
    const browser = await launchChromium();
    try {
      const { page } = await openApp(browser, port);
      await collector.kill(); // nothing leaves the outbox from here on
      const t0 = Date.now();
      const acked = await score(page, 0, READINGS);
      const full = await status(page);
      const o = full.outbox;
      const held = o.queued + o.inflight_records;
      assert.ok(o.queued <= CAPACITY, `queued ${o.queued} within the cap ${CAPACITY}`);
      assert.ok(o.evicted_total > 0, 'readings past the cap evicted the oldest');
      assert.equal(held + o.evicted_total, READINGS, `every reading is held or counted as evicted: ${JSON.stringify(o)}`);
      const { drainMs } = await showsEvictionThenDrains(page, collector, o.evicted_total);
      const { acct } = await received(collector, acked, READINGS);
      assert.equal(acct.received, held, 'the collector got every record the outbox held');
      const [dev] = Object.values(acct.devices);
      assert.equal(dev.max_seq, READINGS - 1, 'the newest reading was kept');
      summary.cap = {
        capacity: CAPACITY,
        readings: READINGS,
        evicted_total: o.evicted_total,
        held,
        received: acct.received,
        duplicated: acct.duplicated,
        drain_ms: drainMs,
        run_ms: Date.now() - t0,
      };
      console.log(JSON.stringify({ scenario: 'cap', ...summary.cap }));
    } finally {
      await browser.close();
      await collector.kill();
      writeSummary();
    }
  },
);

// Chromium refuses every IndexedDB transaction that writes anything once an origin is over its
// quota, commits those that only delete, and gives the space of deleted records back only when
// the database compacts (not within this test). So the recorder evicts a bounded number of the
// oldest records once and then stops evicting (the rest of the readings are scored and counted
// as STORE_QUOTA); the acknowledgements and batches sent straight from the queue are
// delete-only, so the outbox still drains, with the counts it could not write kept in memory.
test(
  `small storage quota (${QUOTA_READINGS} readings, ${QUOTA_HEADROOM} bytes of headroom): quota evictions counted, scoring goes on, nothing corrupt`,
  { timeout: 120_000 },
  async () => {
    const port = await freePort();
    const collector = new Collector({ port, db: join(tempDir('edge-pressure-'), 'telemetry.sqlite'), staticDir: STATIC_DIR });
    await collector.start();
    let context;
    try {
      let page, usage, usageAndQuota;
      ({ context, page, usage, usageAndQuota } = await openWithQuota(port, QUOTA_HEADROOM));
      await collector.kill();
      const { quota, overrideActive } = await usageAndQuota();
      assert.ok(overrideActive && quota === usage + QUOTA_HEADROOM, `quota override in force: ${quota}`);
      const t0 = Date.now();
      const refused = [];
      const acked = await score(page, 0, QUOTA_READINGS, new Map(), refused);
      const full = await status(page);
      const o = full.outbox;
      // The status's own `dropped` adds the counts not yet written to the store (a full store
      // refuses that write too) to the stored ones in `outbox.dropped`.
      const dropped = full.dropped || o.dropped || {};
      const droppedTotal = Object.values(dropped).reduce((n, v) => n + (typeof v === 'number' ? v : 0), 0);
      summary.quota = {
        readings: QUOTA_READINGS,
        usage_before: usage,
        quota,
        usage_after: (await usageAndQuota()).usage,
        refused_requests: refused.length,
        first_refused: refused[0] || null,
        outbox: o,
        dropped,
      };
      const seen = JSON.stringify(summary.quota);
      assert.equal(typeof o.evicted_quota_total, 'number', `status reports evicted_quota_total: ${seen}`);
      assert.ok(
        o.evicted_quota_total > 0 || refused.length > 0 || (dropped.STORE_QUOTA || 0) > 0,
        `Chromium refused no write past the quota: ${seen}`,
      );
      assert.ok(o.evicted_quota_total > 0, `the quota was reached and evicted the oldest records: ${seen}`);
      assert.ok(
        o.evicted_quota_total <= 7 * CHUNK,
        `eviction that frees nothing stops after bounded rounds (${CHUNK} + ${2 * CHUNK} + ${4 * CHUNK}): ${seen}`,
      );
      assert.equal(refused.length, 0, `every score request answered, none refused for storage: ${seen}`);
      const held = o.queued + o.inflight_records;
      assert.equal(
        held + o.evicted_total + droppedTotal,
        QUOTA_READINGS,
        `every reading is held, counted as evicted, or counted as dropped: ${JSON.stringify({ o, dropped })}`,
      );
      const { drainMs } = await showsEvictionThenDrains(page, collector, o.evicted_total);
      const { acct } = await received(collector, acked, QUOTA_READINGS);
      assert.equal(acct.received, held, 'the collector got every record the outbox held');
      const [dev] = Object.values(acct.devices);
      assert.equal(dev.max_seq + 1, QUOTA_READINGS - droppedTotal, 'the newest reading was kept');
      Object.assign(summary.quota, {
        evicted_total: o.evicted_total,
        evicted_quota_total: o.evicted_quota_total,
        held,
        received: acct.received,
        duplicated: acct.duplicated,
        drain_ms: drainMs,
        run_ms: Date.now() - t0,
      });
      console.log(JSON.stringify({ scenario: 'quota', ...summary.quota }));
    } finally {
      if (context) await context.close();
      await collector.kill();
      writeSummary();
    }
  },
);
