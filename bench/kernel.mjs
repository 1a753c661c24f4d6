#!/usr/bin/env node
// Batch scoring rates of several builds of our engine side by side, for work on the dense
// kernel: every build and both shipped model shapes (shuttle f32, 9 features; the seed16 model
// run.mjs generates, 16 features) in one dedicated worker of one headless Chromium, timed in
// blocks of ≥ `--block-ms` that rotate between the builds (who goes first changes each round),
// so load from the rest of the machine reaches every build alike. Reports rows/s per build
// (rows over time of its blocks) and each build's ratio to the first, as the median of the
// per-round ratios. Builds are wasm-bindgen `--target web` output directories, built elsewhere:
//   node bench/kernel.mjs --pkg before=DIR --pkg after=DIR [--rounds 20] [--block-ms 50]
//                         [--sizes 1024,4096]
// Writes target/bench/kernel-<time>.json.
/* global Worker, window -- in the functions given to page.evaluate, which run in the page */
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../tests/e2e/harness.mjs';
import { median } from './measure.js';
import { saveRaw } from './report.mjs';
import { startServer } from './server.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'target/bench');

const { values: opt } = parseArgs({
  options: {
    pkg: { type: 'string', multiple: true, default: [] },
    rounds: { type: 'string', default: '20' },
    'block-ms': { type: 'string', default: '50' },
    sizes: { type: 'string', default: '1024,4096' },
    'warmup-ms': { type: 'string', default: '300' },
  },
});

function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(1);
}

function model(name, dir) {
  const meta = JSON.parse(readFileSync(join(ROOT, dir, 'metadata.json'), 'utf8'));
  const [header, ...lines] = readFileSync(join(ROOT, dir, 'sample.csv'), 'utf8')
    .trim()
    .split('\n');
  const idx = meta.features.map((f) => header.split(',').indexOf(f));
  if (idx.includes(-1)) die(`${dir}/sample.csv lacks some of the model's features`);
  const sample = lines.slice(0, 2000).flatMap((l) => {
    const v = l.split(',');
    return idx.map((i) => Number(v[i]));
  });
  return { name, features: meta.features.length, sample, url: `/${dir}/model.f32.onnx` };
}

async function main() {
  const sizes = opt.sizes.split(',').map(Number);
  const rounds = Number(opt.rounds);
  const blockMs = Number(opt['block-ms']);
  if (opt.pkg.length < 1) die('give builds as --pkg LABEL=DIR (at least one)');
  if (!existsSync(join(ROOT, 'target/bench/models/seed16/model.f32.onnx')))
    die('target/bench/models/seed16 is missing: run bench/run.mjs once');
  // The server only serves the repository: copy each build under target/bench/kernel/.
  const builds = opt.pkg.map((p) => {
    const [label, dir] = p.split('=');
    if (!dir || !existsSync(join(dir, 'edge_anomaly_bg.wasm'))) die(`--pkg ${p}: no edge_anomaly_bg.wasm there`);
    const to = join(OUT, 'kernel', label);
    rmSync(to, { recursive: true, force: true });
    cpSync(resolve(dir), to, { recursive: true });
    return {
      label,
      dir: resolve(dir),
      glue: `/target/bench/kernel/${label}/edge_anomaly.js`,
      wasm: `/target/bench/kernel/${label}/edge_anomaly_bg.wasm`,
    };
  });
  const models = [model('shuttle', 'models/shuttle'), model('seed16', 'target/bench/models/seed16')];
  const server = await startServer(ROOT);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const raw = {
    date: new Date().toISOString(),
    chromium: browser.version(),
    builds,
    sizes,
    rounds,
    blockMs,
    loadavg: [loadavg()],
    blocks: [],
  };
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}/bench/index.html`);
    await page.evaluate(() => {
      const w = new Worker('/bench/kernel.worker.js', { type: 'module' });
      let next = 0;
      const pending = new Map();
      w.onmessage = ({ data }) => {
        const p = pending.get(data.id);
        pending.delete(data.id);
        data.ok ? p.ok(data.result) : p.fail(new Error(data.error));
      };
      window.ask = (cmd, args) =>
        new Promise((ok, fail) => {
          const id = next++;
          pending.set(id, { ok, fail });
          w.postMessage({ id, cmd, ...args });
        });
    });
    const ask = (cmd, args) => page.evaluate(([cmd, args]) => window.ask(cmd, args), [cmd, args]);
    raw.backends = await ask('setup', { builds, models, sizes, warmupMs: Number(opt['warmup-ms']) });
    // How far each build's scores are from the first build's, over the largest batch.
    raw.agreement = {};
    const n = Math.max(...sizes);
    for (const m of models) {
      const ref = await ask('scores', { build: builds[0].label, model: m.name, n });
      for (const b of builds.slice(1)) {
        const got = await ask('scores', { build: b.label, model: m.name, n });
        raw.agreement[`${b.label}/${m.name}`] = Math.max(
          ...got.map((v, i) => Math.abs(v - ref[i]) / Math.max(Math.abs(ref[i]), 1e-12)),
        );
      }
    }
    for (let r = 0; r < rounds; r++) {
      const order = builds.map((_, i) => builds[(i + r) % builds.length].label);
      for (const m of models) {
        for (const n of sizes) {
          for (const build of order) {
            const t = await ask('block', { build, model: m.name, n, ms: blockMs });
            raw.blocks.push({ round: r, build, model: m.name, n, ...t });
          }
        }
      }
      if (r % 5 === 4) console.error(`bench: round ${r + 1}/${rounds}, load ${loadavg()[0].toFixed(2)}`);
    }
    raw.loadavg.push(loadavg());
  } finally {
    await browser.close();
    await server.close();
  }
  const file = saveRaw(OUT, 'kernel', raw.date, raw);
  console.error(`bench: raw results in ${file}`);
  console.log(table(raw, models));
}

function table(raw, models) {
  const f = (v, d) => v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const labels = raw.builds.map((b) => b.label);
  const head = `| model | rows | ${labels.map((l) => `${l}, M rows/s`).join(' | ')} | ${labels
    .slice(1)
    .map((l) => `${l} / ${labels[0]}`)
    .join(' | ')} |`;
  const lines = [head, `|${'---|'.repeat(2 + 2 * labels.length - 1)}`];
  for (const m of models) {
    for (const n of raw.sizes) {
      const of = (b) => raw.blocks.filter((x) => x.build === b && x.model === m.name && x.n === n);
      const rate = (xs) => xs.reduce((s, x) => s + x.rows, 0) / (xs.reduce((s, x) => s + x.ms, 0) / 1000);
      const rates = labels.map((b) => rate(of(b)));
      const ratios = labels.slice(1).map((b) =>
        median(
          Array.from({ length: raw.rounds }, (_, r) => {
            const pick = (l) => of(l).filter((x) => x.round === r);
            return rate(pick(b)) / rate(pick(labels[0]));
          }),
        ),
      );
      lines.push(
        `| ${m.name} | ${n} | ${rates.map((v) => f(v / 1e6, 3)).join(' | ')} | ${ratios.map((v) => `${f(v, 3)}×`).join(' | ')} |`,
      );
    }
  }
  const agree = Object.entries(raw.agreement)
    .map(([k, v]) => `${k} ${v.toExponential(1)}`)
    .join(', ');
  return (
    `Chromium ${raw.chromium}, ${raw.date}, ${raw.rounds} rounds of ${raw.blockMs} ms blocks, load ${raw.loadavg.map((l) => l[0].toFixed(2)).join(' → ')}\n` +
    `max relative score difference from ${labels[0]} over ${Math.max(...raw.sizes)} rows: ${agree || '-'}\n\n${lines.join('\n')}`
  );
}

main().catch((e) => die(e.stack || e));
