#!/usr/bin/env node
// The product's own cold start, in its service worker (worker/sw.js over a built `dist/`, served
// by the real collector), for one or more builds side by side in one headless Chromium:
//   - first visit: a fresh browser context opens the app; from navigation to the first score
//     (registration, install, the engine fetched and compiled, the outbox opened, the bundled
//     model verified: nothing cached);
//   - restart: the worker is stopped (CDP ServiceWorker.stopAllWorkers) and the page sends one
//     reading; from sending it to its score (a fresh worker starting from the shell cache), and
//     the worker's own `worker_ready_ms` (its script's start → the app ready to score).
// Builds take turns within each repetition (who goes first swaps), so load from the rest of the
// machine reaches each alike.
//   node bench/sw_start.mjs --dist before=DIR --dist after=DIR [--reps 9] [--restarts 3]
// Writes target/bench/sw-start-<time>.json.
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { launchChromium, message, startCollector, stopCollector, tempDir } from '../tests/e2e/harness.mjs';
import { median } from './measure.js';
import { saveRaw } from './report.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const ROW = { rows: [50, 0, 80, 0, 40, 0, 40, 40, 0], features: 9 };

const { values: opt } = parseArgs({
  options: {
    dist: { type: 'string', multiple: true, default: [] },
    reps: { type: 'string', default: '9' },
    restarts: { type: 'string', default: '3' },
  },
});
const builds = (opt.dist.length ? opt.dist : [`dist=${join(ROOT, 'dist')}`]).map((d) => {
  const [label, dir] = d.includes('=') ? d.split(/=(.*)/s) : [d, d];
  return { label, dir: resolve(dir) };
});

/** One repetition of build `b`: a first visit, then `restarts` restarts of its worker. */
async function once(browser, port) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('body[data-ready=true]', { timeout: 60_000 });
    const first = await message(page, 'score', ROW);
    if (first.scores?.length !== 1) throw new Error(`first score: ${JSON.stringify(first)}`);
    const firstVisit = Date.now() - t0;
    const { status } = await message(page, 'status');
    const cdp = await context.newCDPSession(page);
    await cdp.send('ServiceWorker.enable');
    const restarts = [];
    for (let i = 0; i < Number(opt.restarts); i++) {
      await cdp.send('ServiceWorker.stopAllWorkers');
      const t = await page.evaluate(async (row) => {
        const { request } = await import('./client.js');
        const start = performance.now();
        const r = await request('score', { rows: Float32Array.from(row.rows), features: row.features });
        if (r.scores?.length !== 1) throw new Error(`score after restart: ${JSON.stringify(r)}`);
        return performance.now() - start;
      }, ROW);
      const { status: s } = await message(page, 'status');
      restarts.push({ score_ms: t, worker_ready_ms: s.worker_ready_ms });
    }
    return { first_visit_ms: firstVisit, first_worker_ready_ms: status.worker_ready_ms, simd: status.engine_simd, restarts };
  } finally {
    await context.close();
  }
}

const raw = { date: new Date().toISOString(), load: [loadavg()[0]], reps: Number(opt.reps), builds: {} };
const servers = [];
const browser = await launchChromium();
raw.chromium = browser.version();
try {
  for (const [i, b] of builds.entries()) {
    const port = 24_000 + Math.floor(Math.random() * 1000) + i * 1000;
    servers.push({
      ...b,
      port,
      proc: await startCollector({ port, db: join(tempDir('edge-swstart-'), 'telemetry.sqlite'), staticDir: b.dir }),
    });
    raw.builds[b.label] = [];
  }
  for (let r = 0; r < raw.reps; r++) {
    const order = r % 2 ? [...servers].reverse() : servers;
    for (const s of order) raw.builds[s.label].push(await once(browser, s.port));
    console.error(`bench: repetition ${r + 1}/${raw.reps}, load ${loadavg()[0].toFixed(2)}`);
  }
} finally {
  await browser.close();
  for (const s of servers) await stopCollector(s.proc);
}
raw.load.push(loadavg()[0]);
const file = saveRaw(join(ROOT, 'target/bench'), 'sw-start', raw.date, raw);

const ms = (xs) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
console.log(
  `Chromium ${raw.chromium}, ${raw.date}, ${raw.reps} repetitions, load ${raw.load.map((l) => l.toFixed(2)).join(' → ')}; raw: ${file}`,
);
console.log(
  `median (min–max), ms\n\n| build | first visit → first score | its worker: script → ready | restart → score | restarted worker: script → ready |\n|---|---|---|---|---|`,
);
for (const [label, runs] of Object.entries(raw.builds)) {
  const restarts = runs.flatMap((r) => r.restarts);
  console.log(
    `| ${label} (${runs[0].simd}) | ${ms(runs.map((r) => r.first_visit_ms))} | ${ms(runs.map((r) => r.first_worker_ready_ms))} | ${ms(restarts.map((r) => r.score_ms))} | ${ms(restarts.map((r) => r.worker_ready_ms))} |`,
  );
}
