#!/usr/bin/env node
// The two engine builds side by side in one run, in headless Chromium: the small engine (the
// crate without tract, wasm-opt -Oz: what the product's worker loads first) and the full one
// (with tract: the previous default, still what the worker fetches for graphs the dense kernel
// does not cover). Per build: wasm size (raw, gzip -9, brotli -q 11), cold start in a fresh
// dedicated worker (import → wasm fetched and compiled → model loaded → first score), with the
// wasm from the network (`no-store`) and from Cache Storage (the product's path, where Chromium
// may reuse compiled code), and warm single-reading and batch rates on the shuttle int8 model.
// Builds alternate within every repetition. Writes target/bench/builds-<time>.json and prints a
// markdown table.
// Usage: node bench/builds.mjs [--skip-build] [--reps 7] [--small-opt Oz|O3|none]
/* global Worker -- in the functions given to page.evaluate, which run in the page */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../tests/e2e/harness.mjs';
import { median } from './measure.js';
import { saveRaw } from './report.mjs';
import { startServer } from './server.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'target/bench');
const CARGO_TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
const BUILDS = {
  small: { pkg: 'pkg-small', features: ['--no-default-features'], shrink: true },
  full: { pkg: 'pkg-full', features: [], shrink: false },
};
const MODEL = 'models/shuttle/model.int8.onnx';

const { values: opt } = parseArgs({
  options: {
    'skip-build': { type: 'boolean', default: false },
    reps: { type: 'string', default: '7' },
    // wasm-opt level for the small build: Oz (what the product ships), O3, or none.
    'small-opt': { type: 'string', default: 'Oz' },
  },
});
const cfg = {
  reps: Number(opt.reps),
  warmupCalls: 200,
  warmupBatchMs: 300,
  singleCalls: 2000,
  batchSizes: [1, 64, 1024, 4096],
  minBatchMs: 300,
};

function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

function run(cmd, args) {
  console.error(`bench: $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 2, 'inherit'], cwd: ROOT });
  if (r.error) die(`${cmd} could not start (${r.error.code}); run scripts/setup.sh first`);
  if (r.status !== 0) die(`${cmd} exited with ${r.status}`);
}

/** Each build as the product ships it (scripts/engine-builds.sh): release, the small one shrunk. */
function build() {
  for (const [name, b] of Object.entries(BUILDS)) {
    run('cargo', ['build', '--locked', '--release', '--lib', '--target', 'wasm32-unknown-unknown', ...b.features]);
    const dir = join(OUT, b.pkg);
    run('wasm-bindgen', [
      '--target',
      'web',
      '--no-typescript',
      '--out-dir',
      dir,
      join(CARGO_TARGET, 'wasm32-unknown-unknown/release/edge_anomaly.wasm'),
    ]);
    if (b.shrink && opt['small-opt'] !== 'none') {
      const wasm = join(dir, 'edge_anomaly_bg.wasm');
      run(join(ROOT, 'scripts/shrink-wasm.sh'), [wasm, opt['small-opt']]);
    }
    console.error(`bench: ${name} build in ${dir}`);
  }
}

function sizes(file) {
  const raw = readFileSync(file);
  return {
    raw: raw.length,
    gzip9: gzipSync(raw, { level: 9 }).length,
    brotli11: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

async function main() {
  if (!opt['skip-build']) build();
  const urls = Object.fromEntries(
    Object.entries(BUILDS).map(([name, b]) => {
      const wasm = join(OUT, b.pkg, 'edge_anomaly_bg.wasm');
      if (!existsSync(wasm)) die(`${wasm} is missing: run without --skip-build`);
      return [
        name,
        {
          glue: `/target/bench/${b.pkg}/edge_anomaly.js`,
          wasm: `/target/bench/${b.pkg}/edge_anomaly_bg.wasm`,
          size: sizes(wasm),
        },
      ];
    }),
  );
  const bytes = [...readFileSync(join(ROOT, MODEL))];
  const [header, ...lines] = readFileSync(join(ROOT, 'models/shuttle/sample.csv'), 'utf8').trim().split('\n');
  const features = JSON.parse(readFileSync(join(ROOT, 'models/shuttle/metadata.json'), 'utf8')).features;
  const idx = features.map((f) => header.split(',').indexOf(f));
  const sample = lines.slice(0, 2000).flatMap((l) => {
    const v = l.split(',');
    return idx.map((i) => Number(v[i]));
  });
  const row = sample.slice(0, features.length);

  const server = await startServer(ROOT);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const raw = {
    date: new Date().toISOString(),
    chromium: browser.version(),
    cfg,
    smallOpt: opt['small-opt'],
    sizes: {},
    cold: {},
    warm: {},
  };
  try {
    // Every cold start in a browser context of its own: no compiled code of another instance
    // of the same wasm in the renderer.
    const fresh = async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/bench/index.html`);
      return { context, page };
    };
    const inWorker = (page, calls) =>
      page.evaluate(async (calls) => {
        const w = new Worker('/bench/builds.worker.js', { type: 'module' });
        const ask = (cmd, args, t0) =>
          new Promise((ok, fail) => {
            w.onmessage = ({ data }) => (data.ok ? ok(data.result) : fail(new Error(data.error)));
            w.postMessage({ id: 1, cmd, ...args, t0 });
          });
        const results = [];
        for (const [cmd, args] of calls) {
          const t0 = performance.timeOrigin + performance.now();
          results.push(await ask(cmd, args, t0));
        }
        w.terminate();
        return results;
      }, calls);
    for (const name of Object.keys(BUILDS)) raw.cold[name] = { network: [], cache: [] };
    for (let r = 0; r < cfg.reps; r++) {
      const order = r % 2 ? ['full', 'small'] : ['small', 'full'];
      for (const name of order) {
        const u = urls[name];
        for (const from of ['network', 'cache']) {
          const { context, page } = await fresh();
          const calls = from === 'cache' ? [['precache', { wasm: u.wasm }]] : [];
          if (calls.length) await inWorker(page, calls);
          const [t] = await inWorker(page, [['cold', { glue: u.glue, wasm: u.wasm, from, bytes, row }]]);
          raw.cold[name][from].push({
            backend: t.backend,
            worker_ms: t.evaluated - t.start,
            import_ms: t.imported - t.start,
            runtime_ms: t.runtime - t.start,
            loaded_ms: t.loaded - t.start,
            first_score_ms: t.firstScore - t.start,
          });
          await context.close();
          console.error(
            `bench: rep ${r + 1} ${name} ${from}: first score ${(t.firstScore - t.start).toFixed(1)} ms (${t.backend})`,
          );
        }
      }
    }
    const { context, page } = await fresh();
    for (const name of Object.keys(BUILDS)) raw.warm[name] = [];
    for (let r = 0; r < Math.min(cfg.reps, 3); r++) {
      for (const name of r % 2 ? ['full', 'small'] : ['small', 'full']) {
        const u = urls[name];
        const [, warm] = await inWorker(page, [
          ['cold', { glue: u.glue, wasm: u.wasm, from: 'network', bytes, row }],
          ['warm', { sample, features: features.length, cfg }],
        ]);
        raw.warm[name].push(warm);
      }
    }
    await context.close();
    for (const [name, u] of Object.entries(urls)) raw.sizes[name] = u.size;
  } finally {
    await browser.close();
    await server.close();
  }
  const file = saveRaw(OUT, 'builds', raw.date, raw);
  console.error(`bench: raw results in ${file}`);
  console.log(table(raw));
}

function table(raw) {
  const f = (v, d = 1) => v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const kb = (b) => `${f(b / 1000, 0)} kB`;
  const med = (xs, k) => median(xs.map((x) => x[k]));
  const lines = ['| figure | small engine | full engine (previous) | small / full |', '|---|---|---|---|'];
  const row = (label, s, fu, d = 1, unit = '') =>
    lines.push(`| ${label} | ${f(s, d)}${unit} | ${f(fu, d)}${unit} | ${f(s / fu, 2)} |`);
  for (const k of ['raw', 'gzip9', 'brotli11'])
    lines.push(
      `| wasm, ${k} | ${kb(raw.sizes.small[k])} | ${kb(raw.sizes.full[k])} | ${f(raw.sizes.small[k] / raw.sizes.full[k], 2)} |`,
    );
  for (const from of ['network', 'cache']) {
    for (const k of ['runtime_ms', 'loaded_ms', 'first_score_ms']) {
      row(
        `cold (${from}): ${k.replace('_ms', '')}, ms (median of ${raw.cfg.reps})`,
        med(raw.cold.small[from], k),
        med(raw.cold.full[from], k),
      );
    }
  }
  const warm = (name, pick) => median(raw.warm[name].map(pick));
  row(
    'single reading, block mean, µs',
    warm('small', (w) => w.single.block_mean_us),
    warm('full', (w) => w.single.block_mean_us),
    2,
  );
  for (const n of raw.cfg.batchSizes) {
    row(`batch of ${n}, M rows/s`, warm('small', (w) => w.batch[n]) / 1e6, warm('full', (w) => w.batch[n]) / 1e6, 2);
  }
  return `Chromium ${raw.chromium}, ${raw.date}, small engine wasm-opt: ${raw.smallOpt}\n\n${lines.join('\n')}`;
}

main().catch((e) => die(e.stack || e));
