// The two engine builds in a real service worker (headless Chromium, real collector): the app
// starts on the small build and never fetches the full one while its models are dense; a signed
// release that only tract runs (tests/fixtures/releases/5.0.0-general) makes the worker fetch the
// full build, verify the release there and take over, scoring with tract; restarted with the
// collector down, the worker goes straight back to that release on the full build from its cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, ROOT, message, openApp, startCollector, stopCollector, tempDir } from './harness.mjs';

const COLLECTOR = process.env.COLLECTOR_BIN || join(ROOT, 'target/debug/collector');
const GENERAL = join(ROOT, 'tests/fixtures/releases/5.0.0-general');
const ROW = [50, 0, 80, 0, 40, 2, 40, 45, 5];

test('a model only tract runs switches the worker to the full engine, offline restarts too', { timeout: 300_000 }, async () => {
  const port = 24_000 + Math.floor(Math.random() * 2000);
  const db = join(tempDir('edge-general-'), 'telemetry.sqlite');
  const releases = join(tempDir('edge-general-releases-'), 'releases');
  const profile = tempDir('edge-general-profile-');
  const launch = () =>
    chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
    });
  let collector = await startCollector({ port, db, args: ['--releases', releases] });
  let context = await launch();
  const fullFetches = [];
  const watch = (ctx) =>
    ctx.on('requestfinished', (r) => {
      if (new URL(r.url()).pathname === '/edge-anomaly-full_bg.wasm') fullFetches.push(r.url());
    });
  watch(context);
  try {
    let { page } = await openApp(context, port);
    let { status } = await message(page, 'status');
    assert.equal(status.engine_build, 'small');
    assert.equal(status.engine_backend, 'dense');
    const before = await message(page, 'score', { rows: ROW, features: 9 });
    assert.equal(before.scores.length, 1);
    assert.equal(fullFetches.length, 0, 'the full engine is not fetched while the models are dense');

    execFileSync(COLLECTOR, ['publish-model', GENERAL, '--releases', releases], { encoding: 'utf8' });
    const { update } = await message(page, 'check-update');
    assert.equal(update.state, 'activated', JSON.stringify(update));
    ({ status } = await message(page, 'status'));
    assert.equal(status.engine_build, 'full');
    assert.equal(status.engine_backend, 'tract');
    assert.match(status.model.version, /^5\.0\.0\+/);
    assert.equal(fullFetches.length, 1, 'fetched once, when the release needed it');
    const after = await message(page, 'score', { rows: ROW, features: 9 });
    // The release is the same network with an Identity in front: tract scores what the kernel did.
    assert.ok(
      Math.abs(after.scores[0] - before.scores[0]) <= 1e-4 * Math.max(1, before.scores[0]),
      `tract ${after.scores[0]} vs dense ${before.scores[0]}`,
    );

    // Restart offline: the worker restores the release and runs it on the cached full build.
    await context.close();
    await stopCollector(collector);
    collector = null;
    context = await launch();
    watch(context);
    ({ page } = await openApp(context, port));
    ({ status } = await message(page, 'status'));
    assert.equal(status.engine_build, 'full');
    assert.match(status.model.version, /^5\.0\.0\+/);
    const offline = await message(page, 'score', { rows: ROW, features: 9 });
    assert.equal(offline.scores[0], after.scores[0]);
    assert.equal(fullFetches.length, 1, 'no network fetch of the full engine after the restart');
  } finally {
    await context.close();
    if (collector) await stopCollector(collector);
  }
});
