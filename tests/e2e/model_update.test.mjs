// Signed model updates end to end, in headless Chromium against the real collector, while the
// page streams readings: publish v2 (collector publish-model) → the worker downloads, verifies
// and activates it, and the next records carry v2; a release signed by a key the device does not
// trust, a tampered one and an older one are each refused with their reason on the dashboard
// while v2 keeps scoring; the browser restarted with the collector down restores v2 from storage;
// a corrupted stored model is detected, discarded, and fetched again; the dashboard's rollback
// goes back to v1; a release that flags every reading is rolled back by the watch.
/* global caches, document -- in the functions given to page.evaluate and page.waitForFunction, which run in the page */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, ROOT, api, message, openApp, startCollector, stopCollector, tempDir, waitFor } from './harness.mjs';

const COLLECTOR = process.env.COLLECTOR_BIN || join(ROOT, 'target/debug/collector');
const FIXTURES = join(ROOT, 'tests/fixtures/releases');
const V1 = '1.0.0+8d0b1cd9',
  V2 = '2.0.0+8d0b1cd9',
  V4 = '4.0.0+8d0b1cd9';

function publish(dir, releases, trust = []) {
  const args = ['publish-model', dir, '--releases', releases, ...trust.flatMap((k) => ['--trust', k])];
  return JSON.parse(execFileSync(COLLECTOR, args, { encoding: 'utf8' }));
}

async function status(page) {
  return (await message(page, 'status')).status;
}

async function checkUpdate(page) {
  return (await message(page, 'check-update')).update;
}

/** Scores `n` readings (a fixed normal-looking one) and returns the replies. */
async function scoreSome(page, n) {
  const row = [50, 0, 80, 0, 40, 2, 40, 45, 5];
  const replies = [];
  for (let i = 0; i < n; i++) replies.push(await message(page, 'score', { rows: row, features: 9 }));
  return replies;
}

async function eventsShown(page) {
  return page.$$eval('#model-events li', (lis) => lis.map((li) => `${li.dataset.kind} ${li.dataset.code}`));
}

test('signed model updates: upgrade, refusals, offline restore, corruption, rollback', { timeout: 300_000 }, async () => {
  const port = 22_000 + Math.floor(Math.random() * 2000);
  const db = join(tempDir('edge-update-'), 'telemetry.sqlite');
  const releases = join(tempDir('edge-releases-'), 'releases');
  const profile = tempDir('edge-update-profile-');
  const launch = () =>
    chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
    });
  let collector = await startCollector({ port, db, args: ['--releases', releases] });
  let context = await launch();
  const summary = {};
  try {
    let { page } = await openApp(context, port);
    let s = await status(page);
    assert.equal(s.model.version, V1, 'the bundled model, verified');
    assert.deepEqual(
      s.model_events.map((e) => e.kind),
      ['activated'],
    );

    // The page streams readings throughout (replay at 20/s).
    await page.fill('#rate', '20');
    await page.click('#replay');

    // v2 published → activated; the next records carry it.
    publish(join(FIXTURES, '2.0.0'), releases);
    assert.equal((await checkUpdate(page)).state, 'activated');
    s = await status(page);
    assert.equal(s.model.version, V2);
    assert.equal(s.previous_model.version, V1);
    const after = await scoreSome(page, 5);
    assert.ok(
      after.every((r) => r.scores[0] !== null),
      'v2 scores',
    );
    await message(page, 'flush');
    const recs = await waitFor(
      'records scored by v2 at the collector',
      async () => {
        const { records } = await api(port, '/api/records?limit=20');
        return { done: records.some((r) => r.model_version === V2), versions: records.map((r) => r.model_version) };
      },
      30_000,
    );
    assert.ok(recs.versions.includes(V2));

    // Refusals: a key the device does not trust (the collector was told to trust it), a
    // tampered release, an older one. v2 keeps scoring.
    publish(join(FIXTURES, '3.0.0-untrusted'), releases, [join(FIXTURES, '3.0.0-untrusted.pub.pem')]);
    let u = await checkUpdate(page);
    assert.equal(u.state, 'refused', JSON.stringify(u));
    assert.match(u.error, /MODEL_SIGNATURE:untrusted_key/);
    const tampered = publish(join(FIXTURES, '2.5.0'), releases);
    const modelPath = join(releases, tampered.version, 'model.int8.onnx');
    const bytes = readFileSync(modelPath);
    bytes[300] ^= 0x10;
    writeFileSync(modelPath, bytes);
    publish(join(FIXTURES, '0.9.0'), releases);
    // 3.0.0 was refused once and is not fetched again; 2.5.0 is the newest wanted release now;
    // 0.9.0 is older than v2 and refused without a download.
    u = await checkUpdate(page);
    assert.equal(u.state, 'refused', JSON.stringify(u));
    assert.match(u.error, /MODEL_FILE_DIGEST/);
    s = await status(page);
    assert.equal(s.model.version, V2, 'v2 still active');
    const codes = s.model_events.map((e) => `${e.kind} ${e.code}${e.version ? ` ${e.version}` : ''}`);
    for (const want of [
      'refused MODEL_SIGNATURE:untrusted_key 3.0.0',
      'refused MODEL_FILE_DIGEST 2.5.0',
      'refused MODEL_NOT_NEWER 0.9.0',
    ]) {
      assert.ok(
        codes.some((c) => c.startsWith(want)),
        `${want} in ${JSON.stringify(codes)}`,
      );
    }
    await page.waitForFunction(() => document.querySelectorAll('#model-events li[data-kind=refused]').length >= 3);
    assert.ok(
      (await scoreSome(page, 3)).every((r) => r.scores[0] !== null),
      'scoring went on',
    );
    mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'artifacts/model-update.png'), fullPage: true });
    summary.events = await eventsShown(page);

    // Browser restarted with the collector down: v2 comes back from the worker's storage.
    await context.close();
    await stopCollector(collector);
    context = await launch();
    // Offline: the page and the engine come from the worker's caches.
    ({ page } = await openApp(context, port));
    s = await status(page);
    assert.equal(s.model.version, V2, 'v2 restored offline');
    assert.ok((await scoreSome(page, 3)).every((r) => r.scores[0] !== null));

    // Corrupt the stored model: the next start discards it and falls back to v1; once the
    // collector is back, v2 is fetched again.
    await page.evaluate(async (v) => {
      const c = await caches.open('edge-anomaly-models');
      const url = new URL(`models-store/${v}/model.int8.onnx`, (await navigator.serviceWorker.ready).scope).href;
      await c.put(url, new Response(new Uint8Array([1, 2, 3])));
    }, V2);
    await context.close();
    context = await launch();
    ({ page } = await openApp(context, port));
    s = await status(page);
    assert.equal(s.model.version, V1, 'corrupted v2 discarded, the bundled v1 scores');
    assert.equal(s.update.discarded, 1, JSON.stringify(s.update));
    assert.ok(
      s.model_events.some((e) => e.kind === 'refused' && e.version === V2),
      JSON.stringify(s.model_events),
    );
    collector = await startCollector({ port, db, args: ['--releases', releases] });
    await waitFor(
      'v2 fetched again',
      async () => {
        await checkUpdate(page);
        const st = await status(page);
        return { done: st.model.version === V2, version: st.model.version, update: st.update };
      },
      60_000,
      1000,
    );

    // Rollback from the dashboard: back to v1.
    await page.waitForFunction(() => !document.querySelector('#rollback').disabled);
    await page.click('#rollback');
    await waitFor(
      'rolled back to v1',
      async () => {
        const st = await status(page);
        return { done: st.model.version === V1, version: st.model.version };
      },
      10_000,
    );
    await page.waitForFunction(() => document.querySelector('#model-events li[data-code=ROLLBACK_MANUAL]'));

    // A release that flags every reading passes every check, then the watch rolls it back.
    publish(join(FIXTURES, '4.0.0-oversensitive'), releases);
    assert.equal((await checkUpdate(page)).state, 'activated');
    assert.equal((await status(page)).model.version, V4);
    let rolled = null;
    for (let i = 0; i < 400 && !rolled; i++) {
      const r = await message(page, 'score', { rows: [50, 0, 80, 0, 40, 2, 40, 45, 5], features: 9 });
      if (r.rolledBack) rolled = { at: i + 1, reason: r.rolledBack };
    }
    assert.ok(rolled, 'rolled back by the watch');
    assert.match(rolled.reason, /anomaly rate/);
    s = await status(page);
    assert.equal(s.model.version, V1);
    assert.ok(s.model_events.some((e) => e.code === 'ROLLBACK_WATCH'));
    summary.watch_rollback_after = rolled.at;
    console.log(JSON.stringify({ scenario: 'model-update', ...summary }));
  } finally {
    await context.close().catch(() => {});
    await stopCollector(collector);
  }
});
