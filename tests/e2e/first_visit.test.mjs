// A first visit in a fresh Chromium profile, everything the browser fetches until the app has
// scored a reading: the small engine once, in the compilation this browser runs (the worker's
// start and its install share its download; the full engine is not fetched for the shipped
// model), compressed where the collector has a compressed copy, and the bytes on the wire, at
// most 1.5 MB.
// `E2E_DIST` serves another build (e.g. a release `trunk build --release --dist …`) than dist/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RELAXED_SIMD_PROBE, launchChromium, message, startCollector, stopCollector, tempDir } from './harness.mjs';

const DIST = process.env.E2E_DIST ? { staticDir: process.env.E2E_DIST } : {};

test('a first visit fetches the engine once, compressed, until the first score', { timeout: 180_000 }, async () => {
  const port = 20_000 + Math.floor(Math.random() * 2000);
  const db = join(tempDir('edge-first-'), 'telemetry.sqlite');
  const collector = await startCollector({ port, db, ...DIST });
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    // The page's requests and the service worker's (Chromium reports both on the context).
    const fetched = [];
    const reading = [];
    const record = async (request) => {
      const response = await request.response();
      const sizes = await request.sizes();
      fetched.push({
        path: new URL(request.url()).pathname,
        fromWorker: Boolean(request.serviceWorker()),
        encoding: response ? (await response.allHeaders())['content-encoding'] || 'identity' : '',
        bytes: sizes.responseBodySize + sizes.responseHeadersSize,
      });
    };
    context.on('requestfinished', (request) => reading.push(record(request).catch((e) => e)));
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('body[data-ready=true]', { timeout: 60_000 });
    const { scores } = await message(page, 'score', { rows: [50, 0, 80, 0, 40, 0, 40, 40, 0], features: 9 });
    assert.equal(scores.length, 1);
    // Install has finished (the worker controls the page): nothing more is fetched for the shell.
    await page.evaluate(() => navigator.serviceWorker.ready);
    await Promise.all(reading);
    const statics = fetched.filter(
      (f) => !f.path.startsWith('/v1/') && !f.path.startsWith('/api/') && !f.path.startsWith('/releases/'),
    );
    const engine = statics.filter((f) => f.path.endsWith('_bg.wasm'));
    assert.equal(engine.length, 1, `the engine fetched once: ${JSON.stringify(engine)}`);
    assert.ok(engine[0].fromWorker, 'by the worker');
    assert.equal(engine[0].encoding, 'br', 'brotli, the collector has a precompressed copy');
    // Chromium runs relaxed SIMD, so the worker picked the small engine's relaxed compilation
    // (and cached only that one).
    assert.equal(await page.evaluate((probe) => WebAssembly.validate(new Uint8Array(probe)), RELAXED_SIMD_PROBE), true);
    assert.equal(engine[0].path, '/edge-anomaly-relaxed_bg.wasm');
    const { status } = await message(page, 'status');
    assert.equal(status.engine_simd, 'relaxed-simd');
    // The page's own files come once for the page and once more for the worker's precache
    // (fetched fresh, so an update never caches stale files); they are small and compressed.
    const again = statics.filter((f, i) => statics.findIndex((g) => g.path === f.path) !== i);
    const againBytes = again.reduce((n, f) => n + f.bytes, 0);
    assert.ok(againBytes < 64 * 1024, `files fetched again: ${JSON.stringify(again)}`);
    const total = statics.reduce((n, f) => n + f.bytes, 0);
    // The small engine only (the full one is fetched when a model needs it): 0.49 MB release,
    // 0.72 MB debug. Bytes, not time, so the bound holds on any machine.
    assert.ok(!statics.some((f) => f.path.endsWith('edge-anomaly-full_bg.wasm')), 'the full engine is not fetched');
    assert.ok(total <= 1_500_000, `a first visit of ${total} bytes, over 1.5 MB`);
    console.log(`fetched again: ${again.length} files, ${againBytes} bytes`);
    console.log(
      `first visit: ${statics.length} requests, ${total} bytes on the wire, engine ${engine[0].bytes} bytes (${engine[0].encoding})`,
    );
    for (const f of statics.sort((a, b) => b.bytes - a.bytes).slice(0, 6))
      console.log(`  ${f.bytes} ${f.encoding} ${f.fromWorker ? 'worker' : 'page'} ${f.path}`);
  } finally {
    await browser.close();
    await stopCollector(collector);
  }
});
