#!/usr/bin/env node
// The benchmark, one command: builds our wasm (unless --skip-build) and the 16-wide seed model
// (unless present), serves the repository with cross-origin isolation, drives headless Debian
// Chromium through playwright-core, and runs our engine and onnxruntime-web side by side on the
// same models. Writes bench/results/latest.json (+ a dated copy under target/bench/) and prints
// a markdown table (bench/report.mjs).
// Usage: node bench/run.mjs [--skip-build] [--reps 5] [--cold-reps N] [--js-flags=--no-wasm-deopt]
//        node bench/run.mjs --warm-only [--rows uniform]   (only the warm comparison; leaves
//          bench/results/latest.json alone)
//        node bench/run.mjs --table   (reprint the table of bench/results/latest.json)
//        node bench/run.mjs --contributions-only   (explain and repair against plain scoring only;
//          leaves bench/results/latest.json alone)
//        node bench/run.mjs --outbox-only [--collector BIN] [--pkg DIR]   (the outbox only, also drained
//          to the real collector BIN; DIR: another build's wasm-bindgen output; leaves latest.json alone)
// Honours CARGO_TARGET_DIR for the wasm build; the wasm-bindgen output always goes to target/bench/pkg.
/* global window -- in the functions given to page.evaluate, which run in the page */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg as osLoadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../tests/e2e/harness.mjs'; // the e2e tests' launch flags
import {
  aggregate,
  CONTRIBUTIONS_TARGET,
  contributionsMarkdown,
  contributionsSummary,
  markdown,
  medians,
  outboxMarkdown,
  saveRaw,
  warmMarkdown,
  warmSummary,
} from './report.mjs';
import { serviceWorkerProfiler } from './profile.mjs';
import { startServer } from './server.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'target/bench');
const PKG = join(OUT, 'pkg');
const CARGO_TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
const SEED = join(OUT, 'models/seed16');

const { values: opt } = parseArgs({
  options: {
    'skip-build': { type: 'boolean', default: false },
    reps: { type: 'string', default: '5' },
    'cold-reps': { type: 'string' },
    'single-calls': { type: 'string', default: '2000' },
    'rtt-calls': { type: 'string', default: '1000' },
    'outbox-reps': { type: 'string', default: '3' },
    'outbox-readings': { type: 'string', default: '10000' }, // readings written (in calls of 100) before the drain
    headed: { type: 'boolean', default: false },
    'js-flags': { type: 'string', default: '' }, // V8 flags for Chromium, e.g. --no-wasm-deopt
    table: { type: 'boolean', default: false }, // only print the table of bench/results/latest.json
    'contributions-only': { type: 'boolean', default: false },
    'warm-only': { type: 'boolean', default: false }, // only the warm measurements, both engines
    rows: { type: 'string', default: 'sample' }, // 'uniform': synthetic rows instead of the sample's
    'outbox-only': { type: 'boolean', default: false },
    collector: { type: 'string' }, // the collector binary: the outbox is also drained to it
    pkg: { type: 'string' }, // serve this wasm-bindgen output instead of target/bench/pkg (no build)
    profile: { type: 'string' }, // with --outbox-only: CPU profiles of the service worker into this directory
  },
});
if (!['sample', 'uniform'].includes(opt.rows)) die(`--rows is sample or uniform, not ${opt.rows}`);
if (opt.rows !== 'sample' && !opt['warm-only'])
  die('--rows uniform goes with --warm-only (the other measurements need the sample rows)');
const reps = Number(opt.reps);
const cfg = {
  reps,
  coldReps: Number(opt['cold-reps'] || reps),
  warmupCalls: 200,
  warmupBatchMs: 300,
  singleCalls: Number(opt['single-calls']),
  singleChunks: 40,
  batchSizes: [64, 1024, 4096],
  minBatchMs: 300,
  batchBlockMs: 50,
  rows: opt.rows,
  rttCalls: Number(opt['rtt-calls']),
  correctnessRows: 32,
  sampleRows: 2000,
  chromiumJsFlags: opt['js-flags'],
  outbox: { reps: Number(opt['outbox-reps']), readings: Number(opt['outbox-readings']), chunk: 100, singles: 1000 },
  contributions: { batchSizes: [1, 1024, 4096], target: CONTRIBUTIONS_TARGET },
};

function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  console.error(`bench: $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 2, 'inherit'], cwd: ROOT, ...opts }); // keep stdout for the table
  if (r.error) die(`${cmd} could not start (${r.error.code}); run scripts/setup.sh first`);
  if (r.status !== 0) die(`${cmd} exited with ${r.status}`);
}

/** A command's trimmed stdout ('' when it fails). */
const output = (cmd, args, cwd = ROOT) => spawnSync(cmd, args, { cwd, encoding: 'utf8' }).stdout?.trim() ?? '';

function build() {
  run('cargo', ['build', '--release', '--lib', '--target', 'wasm32-unknown-unknown']);
  run('wasm-bindgen', [
    '--target',
    'web',
    '--out-dir',
    PKG,
    join(CARGO_TARGET, 'wasm32-unknown-unknown/release/edge_anomaly.wasm'),
  ]);
}

/** The 16-wide seed model: 16-sample windows over the shuttle's first channel, 3 epochs. */
function seedModel() {
  if (existsSync(join(SEED, 'model.int8.onnx')) && existsSync(join(SEED, 'sample.csv'))) return;
  const py = join(ROOT, 'models/.venv/bin/python');
  if (!existsSync(py)) die('models/.venv is missing: run scripts/setup.sh first');
  // Without --csv the pipeline reads all nine shuttle channels; windows need exactly one column.
  const shuttle = output(py, ['-c', 'from edge_pipeline.data import shuttle_path; print(shuttle_path())'], join(ROOT, 'models'));
  if (!shuttle) die('could not locate the shuttle dataset (river in models/.venv): run scripts/setup.sh');
  run(
    py,
    [
      '-m',
      'edge_pipeline',
      '--csv',
      shuttle,
      '--features',
      'f1',
      '--label',
      'anomaly',
      '--window',
      '16',
      '--epochs',
      '3',
      '--out',
      SEED,
    ],
    { cwd: join(ROOT, 'models') },
  );
}

/** Model description for the page: URLs, feature count, and up to `sampleRows` sample rows. */
function model(name, dir) {
  const meta = JSON.parse(readFileSync(join(ROOT, dir, 'metadata.json'), 'utf8'));
  const [header, ...lines] = readFileSync(join(ROOT, dir, 'sample.csv'), 'utf8')
    .trim()
    .split('\n');
  const cols = header.split(',');
  const idx = meta.features.map((f) => cols.indexOf(f));
  if (idx.includes(-1)) die(`${dir}/sample.csv lacks some of the model's features ${meta.features}`);
  let sample = lines.slice(0, cfg.sampleRows).flatMap((l) => {
    const v = l.split(',');
    return idx.map((i) => Number(v[i]));
  });
  if (cfg.rows === 'uniform') sample = uniformRows(sample.length);
  return {
    name,
    features: meta.features.length,
    sample,
    f32: `/${dir}/model.f32.onnx`,
    int8: `/${dir}/model.int8.onnx`,
    threshold: meta.threshold,
    mean: meta.normalization?.mean,
    std: meta.normalization?.std,
  };
}

/**
 * `count` values uniform in [-1, 1) from a fixed seed: synthetic rows, to see how an engine's rate
 * depends on the rows (onnxruntime-web's does, see bench/README.md). In raw units most columns
 * of these models then clip to the same value, so the rows are nearly identical.
 */
function uniformRows(count) {
  let x = 0x2545f491;
  return Array.from({ length: count }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5; // xorshift32
    return (x >>> 0) / 2 ** 31 - 1;
  });
}

/** Runs one page step; a step that hangs fails the run instead of waiting forever. */
async function step(page, label, fn, arg, timeoutMs = 300_000) {
  console.error(`bench: ${label}`);
  let timer;
  const timeout = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${label}: timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([page.evaluate(fn, arg), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts the real collector `bin` on a free port with a fresh SQLite file; resolves to { url, stop }. */
async function startCollector(bin) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-collector-'));
  const child = spawn(
    bin,
    [
      '--addr',
      '127.0.0.1:0',
      '--db',
      join(dir, 'telemetry.sqlite'),
      '--static',
      join(dir, 'none'),
      '--releases',
      join(dir, 'releases'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise((ok, fail) => {
    let seen = '';
    child.once('exit', (code) => fail(new Error(`collector exited with ${code}`)));
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const m = seen.match(/listening on (http:\/\/[^/\s]+)/);
      if (m) ok(m[1]);
    });
  });
  child.removeAllListeners('exit');
  const stop = () =>
    new Promise((ok) => {
      child.once('exit', ok);
      child.kill('SIGTERM');
    }).then(() => rmSync(dir, { recursive: true, force: true }));
  return { url, stop };
}

/** Records the collector has stored, all devices. */
async function collectorStored(url) {
  const r = await fetch(`${url}/api/stats`);
  if (!r.ok) throw new Error(`collector /api/stats: HTTP ${r.status}`);
  const stats = await r.json();
  if (typeof stats.records !== 'number') throw new Error(`collector /api/stats has no record count: ${JSON.stringify(stats)}`);
  return stats.records;
}

/** `cfg.outbox.reps` repetitions of the outbox measurement: to the sink, then (with a collector) to it. */
async function outboxReps(page, server, collector, profiler) {
  const out = { sink: [], collector: [] };
  /** One repetition, drained to `up`; profiled into `--profile DIR` when given. */
  const rep = async (label, up) => {
    await profiler?.start();
    const res = await step(page, label, (u) => window.bench.swOutbox(u), up);
    if (profiler) {
      const { start, batched, singles, streamed, configured, drained } = res.marks;
      const name = `${label.replace(/[^a-z0-9]+/gi, '-')}`;
      res.profile = await profiler.stop(join(resolve(opt.profile), `${name}.cpuprofile`), {
        write_100_per_call: [start, batched],
        write_1_per_call: [batched, singles],
        write_1_per_call_64_pending: [singles, streamed],
        drain: [configured, drained],
      });
      writeFileSync(join(resolve(opt.profile), `${name}.json`), JSON.stringify(res.profile, null, 1));
    }
    return res;
  };
  for (let r = 0; r < cfg.outbox.reps; r++) {
    server.resetSink();
    const rep_ = await rep(`outbox write and flush to the sink ${r + 1}/${cfg.outbox.reps}`, '/sink/up');
    rep_.sink = server.sinkStats();
    const total = rep_.readings + (rep_.write_streamed_records_per_s ? 2 : 1) * rep_.singles;
    if (rep_.sink.distinct !== total)
      throw new Error(`the sink received ${rep_.sink.distinct} distinct records, expected ${total}`);
    out.sink.push(rep_);
    if (!collector) continue;
    const before = await collectorStored(collector.url);
    const real = await rep(`outbox write and flush to the collector ${r + 1}/${cfg.outbox.reps}`, '/collector');
    real.stored = (await collectorStored(collector.url)) - before;
    if (real.stored !== total) throw new Error(`the collector stored ${real.stored} new records, expected ${total}`);
    out.collector.push(real);
  }
  return out;
}

async function measure(models) {
  const collector = opt.collector ? await startCollector(resolve(opt.collector)) : null;
  const server = await startServer(ROOT, 0, { collector: collector?.url, pkgDir: opt.pkg && resolve(opt.pkg) });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, ...(opt['js-flags'] ? [`--js-flags=${opt['js-flags']}`] : [])],
    headless: !opt.headed,
  });
  /** The benchmark page in a fresh browser context (its own renderer process), set up. */
  async function openPage(label) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.text().startsWith('[bench]')) console.error(`  ${m.text()}`);
    });
    page.on('pageerror', (e) => console.error(`bench: page error: ${e.message}`));
    await page.goto(`${server.url}/bench/index.html`);
    await page.waitForSelector('body[data-ready=true]', { timeout: 30_000 });
    const setup = await step(page, `${label}: page setup`, (c) => window.bench.setup(c), { models, cfg });
    return { context, page, setup };
  }
  try {
    const raw = { chromium: browser.version(), cold: {} };
    if (opt['contributions-only']) {
      const { page } = await openPage('contributions');
      raw.contributions = await step(page, 'contributions against plain scoring (dedicated workers)', () =>
        window.bench.contributions(),
      );
      return raw;
    }
    if (opt['warm-only']) {
      const { page, setup } = await openPage('warm');
      raw.setup = setup;
      ({ results: raw.warm, worker: raw.setup.worker } = await step(
        page,
        'warm measurements (dedicated workers)',
        () => window.bench.warmRun(),
        null,
        600_000,
      ));
      return raw;
    }
    if (opt['outbox-only']) {
      const { page } = await openPage('outbox');
      raw.sw = { info: await step(page, 'service worker registration', () => window.bench.swSetup()) };
      if (opt.profile) mkdirSync(resolve(opt.profile), { recursive: true });
      const profiler = opt.profile ? await serviceWorkerProfiler(browser) : null;
      ({ sink: raw.outbox, collector: raw.outbox_collector } = await outboxReps(page, server, collector, profiler));
      return raw;
    }
    // Cold starts first, in a process of their own: a live instance of an engine's wasm elsewhere
    // in the renderer lets V8 reuse its compiled code, which would make that engine's start warm.
    const cold = await openPage('cold start');
    for (const kind of ['f32', 'int8']) {
      for (const engine of ['ours', 'ort']) {
        raw.cold[`${engine}/shuttle/${kind}`] = await step(
          cold.page,
          `cold start ${engine} shuttle/${kind}`,
          ([e, k]) => window.bench.cold(e, 'shuttle', k),
          [engine, kind],
        );
      }
    }
    await cold.context.close();
    const { page, setup } = await openPage('warm');
    raw.setup = setup;
    ({
      results: raw.warm,
      fetched: raw.fetched,
      worker: raw.setup.worker,
    } = await step(page, 'warm measurements (dedicated workers)', () => window.bench.warmRun(), null, 600_000));
    raw.contributions = await step(page, 'contributions against plain scoring (dedicated workers)', () =>
      window.bench.contributions(),
    );
    raw.sw = { info: await step(page, 'service worker registration', () => window.bench.swSetup()) };
    raw.rtt = { worker: [], sw: [] };
    for (let r = 0; r < reps; r++) {
      raw.rtt.worker.push(
        await step(page, `round trips to the dedicated worker ${r + 1}/${reps}`, () => window.bench.rttWorker()),
      );
      raw.rtt.sw.push(await step(page, `round trips to the service worker ${r + 1}/${reps}`, () => window.bench.rttSw()));
    }
    for (const kind of ['f32', 'int8']) {
      raw.sw[kind] = await step(
        page,
        `our engine inside the service worker, shuttle/${kind}`,
        (k) => window.bench.swMeasure(k),
        kind,
      );
    }
    ({ sink: raw.outbox, collector: raw.outbox_collector } = await outboxReps(page, server, collector));
    return raw;
  } finally {
    await browser.close();
    await server.close();
    await collector?.stop();
  }
}

const machine = (raw) => ({
  cpus: cpus().length,
  model_name: (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) || [])[1] || 'unknown',
  chromium: raw.chromium,
  node: process.version,
});

/** 1, 5 and 15 minute load averages at the end of the run: the machine is shared. */
const loadavg = () => osLoadavg().map((x) => Number(x.toFixed(2)));

async function main() {
  if (opt.table) return console.log(markdown(JSON.parse(readFileSync(join(ROOT, 'bench/results/latest.json'), 'utf8'))));
  if (!existsSync(join(ROOT, 'node_modules/onnxruntime-web/dist'))) die('node_modules/onnxruntime-web is missing: run npm ci');
  if (!existsSync('/usr/bin/chromium') && !process.env.CHROMIUM) die('/usr/bin/chromium is missing: run scripts/setup.sh');
  if (!opt['skip-build'] && !opt.pkg) build();
  const pkg = opt.pkg ? resolve(opt.pkg) : PKG;
  if (!existsSync(join(pkg, 'edge_anomaly_bg.wasm'))) die(`${pkg}/edge_anomaly_bg.wasm is missing: run without --skip-build`);
  if (opt.collector && !existsSync(opt.collector)) die(`${opt.collector} is missing: cargo build --release -p collector`);
  const only = opt['contributions-only'] || opt['outbox-only']; // both use the shuttle model alone
  const ortConfig = {
    ort_web: JSON.parse(readFileSync(join(ROOT, 'node_modules/onnxruntime-web/package.json'), 'utf8')).version,
    ort_options: {
      executionProviders: ['wasm'],
      numThreads: 1,
      simd: 'default (on)',
      proxy: false,
      session: 'results.warm.*.ort.session_options',
      input: 'a new ort.Tensor per call',
    },
  };
  if (!only) seedModel();
  const models = [model('shuttle', 'models/shuttle'), ...(only ? [] : [model('seed16', 'target/bench/models/seed16')])];
  const started = Date.now();
  const raw = await measure(models);
  const modelList = models.map(({ name, features, f32, int8 }) => ({ name, features, f32, int8 }));
  if (opt['contributions-only']) {
    return writePartial(
      'contributions',
      raw,
      { config: cfg, contributions: contributionsSummary(raw.contributions) },
      contributionsMarkdown,
    );
  }
  if (opt['warm-only']) {
    return writePartial(
      'warm',
      raw,
      {
        config: { ...cfg, models: modelList, ...ortConfig },
        isolation: { dedicated_worker: raw.setup.worker },
        ...warmSummary(raw.warm),
      },
      warmMarkdown,
    );
  }
  if (opt['outbox-only']) {
    const outbox = (reps) => (reps?.length ? { median: medians(reps), reps } : null);
    return writePartial(
      'outbox',
      raw,
      { pkg, config: cfg, results: { outbox: outbox(raw.outbox), outbox_collector: outbox(raw.outbox_collector) } },
      outboxMarkdown,
    );
  }
  const status = output('git', ['status', '--porcelain', '--untracked-files=no']);
  const result = {
    machine: machine(raw),
    date: new Date().toISOString(),
    commit: output('git', ['rev-parse', '--short', 'HEAD']),
    worktree_dirty: status !== '',
    duration_s: Math.round((Date.now() - started) / 1000),
    loadavg: loadavg(),
    config: { ...cfg, models: modelList, ...ortConfig },
    ...aggregate(raw, ROOT),
  };
  const json = `${JSON.stringify(result, null, 2)}\n`;
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/latest.json'), json);
  saveRaw(OUT, 'results', result.date, result);
  console.log(markdown(result));
  console.error(`bench: wrote bench/results/latest.json (${result.duration_s} s in the browser)`);
}

/** Writes a partial run (`--contributions-only`, `--warm-only`, `--outbox-only`) to
 * target/bench/<kind>-<date>.json, leaving bench/results/latest.json alone, and prints its table. */
function writePartial(kind, raw, fields, toMarkdown) {
  const result = {
    machine: machine(raw),
    date: new Date().toISOString(),
    commit: output('git', ['rev-parse', '--short', 'HEAD']),
    worktree_dirty: output('git', ['status', '--porcelain', '--untracked-files=no']) !== '',
    loadavg: loadavg(),
    ...fields,
  };
  const file = saveRaw(OUT, kind, result.date, result);
  console.log(toMarkdown(result));
  console.error(`bench: wrote ${file}`);
}

main().catch((e) => die(e.stack || e.message));
