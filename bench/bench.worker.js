// Dedicated module worker: where the warm measurements run. The page sends { id, cmd, ... } and
// gets { id, ok, result } or { id, ok: false, error }. Engines are imported on demand, so a
// fresh worker sent `cold` loads only the engine under test, and the page gives every
// (engine, model) pair a worker of its own (`setup` with one engine and one model).
import { configureOrt, initOurs, ORT_MODULE, OUR_GLUE, ours, ortSession } from './engines.js';
import { contributionsOnce, singleRowTimes, tile, timedBlock, timerResolutionUs, warmUp } from './measure.js';

const now = () => performance.timeOrigin + performance.now(); // comparable with the page's clock
let glue;
let ort;
const scorers = new Map(); // `${engine}/${model}/${kind}` -> scorer
const models = new Map(); // model name -> { features, sample, bytes: { f32, int8 }, threshold, mean, std }

async function loadEngine(engine) {
  if (engine === 'ours' && !glue) {
    const g = await import(OUR_GLUE);
    await initOurs(g);
    glue = g;
  }
  if (engine === 'ort' && !ort) {
    const o = await import(ORT_MODULE);
    configureOrt(o);
    ort = o;
  }
}

async function makeScorer(engine, bytes, features) {
  const copy = new Uint8Array(bytes.slice(0)); // engines may keep or detach what they are given
  return engine === 'ours' ? ours(glue, copy) : ortSession(ort, copy, features);
}

const handlers = {
  /** Cold start: this worker is fresh; import, start the runtime, load, score one row. */
  async cold({ engine, bytes, features, row }) {
    const t = { start: now() };
    await loadEngine(engine);
    t.runtime = now();
    const s = await makeScorer(engine, bytes, features);
    t.loaded = now();
    await s.score(Float32Array.from(row), 1);
    t.firstScore = now();
    return t;
  },

  /** Starts the engines asked for and keeps the models and sample rows for the other commands. */
  async setup({ engines, modelList }) {
    for (const e of engines) await loadEngine(e);
    for (const m of modelList) models.set(m.name, m);
    return { crossOriginIsolated: self.crossOriginIsolated, timerResolutionUs: timerResolutionUs() };
  },

  /** The code files this worker fetched (ORT fetches its wasm on the first session). */
  fetched() {
    return performance
      .getEntriesByType('resource')
      .map((e) => e.name)
      .filter((n) => /\.(wasm|m?js)$/.test(n));
  },

  /** Scorer for (engine, model, kind), created and warmed up on first use. */
  async prepare({ engine, model, kind, cfg }) {
    const key = `${engine}/${model}/${kind}`;
    if (!scorers.has(key)) {
      const m = models.get(model);
      const s = await makeScorer(engine, m.bytes[kind], m.features);
      await warmUp(s, m.sample, cfg.warmupCalls, batchesFor(m, cfg), cfg.warmupBatchMs);
      scorers.set(key, s);
    }
    const { api, detail } = scorers.get(key);
    return { api, detail };
  },

  /** `calls` single-row calls from sample row `start` on: per-call times and an untimed block (ms). */
  async single({ engine, model, kind, calls, start }) {
    const m = models.get(model);
    return singleRowTimes(scorers.get(`${engine}/${model}/${kind}`), m.sample, calls, start);
  },

  /** One timed block of `n`-row batches, ≥ cfg.batchBlockMs; the page alternates the engines. */
  async block({ engine, model, kind, n, cfg }) {
    const m = models.get(model);
    const batch = batchesFor(m, cfg).find(([size]) => size === n)[1];
    return timedBlock(scorers.get(`${engine}/${model}/${kind}`), batch, n, cfg.batchBlockMs);
  },

  /** Model load with the runtime already up: bytes in hand -> ready -> first score (ms). */
  async load({ engine, model, kind }) {
    const m = models.get(model);
    const t0 = performance.now();
    const s = await makeScorer(engine, m.bytes[kind], m.features);
    const t1 = performance.now();
    await s.score(m.sample.subarray(0, m.features), 1);
    const t2 = performance.now();
    s.free();
    return { ready_ms: t1 - t0, first_score_ms: t2 - t0 };
  },

  /** Scores of the first n sample rows as one batch, for the correctness check. */
  async scores({ engine, model, kind, n }) {
    const m = models.get(model);
    return Array.from(await scorers.get(`${engine}/${model}/${kind}`).score(m.sample.subarray(0, n * m.features), n));
  },

  /**
   * Contributions against plain scoring, our engine (prepared first): the sample readings the
   * model flags, a check of explain against score on the first rows, a warm-up, then `cfg.reps`
   * repetitions with the order of the two paths alternated.
   */
  async contributions({ model, kind, cfg }) {
    const m = models.get(model);
    const s = scorers.get(`ours/${model}/${kind}`);
    if (!s.explain || !s.repair) throw new Error('this build of our engine has no explainInto or repair');
    const f = m.features;
    const flagged = [];
    for (let i = 0; i + f <= m.sample.length; i += f) {
      const row = m.sample.slice(i, i + f);
      if (s.score(row, 1)[0] > m.threshold) flagged.push(row);
    }
    if (!flagged.length) throw new Error(`no sample reading of ${model} scores above its threshold`);
    const axes = { centres: Float32Array.from(m.mean), spreads: Float32Array.from(m.std) };
    const batches = cfg.contributions.batchSizes.map((n) => [n, tile(m.sample, f, n)]);
    const n = cfg.correctnessRows;
    const first = m.sample.subarray(0, n * f);
    const plain = Float32Array.from(s.score(first, n));
    const x = s.explain(first, n);
    let scoreDiff = 0;
    let sumDiff = 0;
    let negative = 0;
    for (let i = 0; i < n; i++) {
      scoreDiff = Math.max(scoreDiff, Math.abs(x.scores[i] - plain[i]));
      let total = x.guard[i];
      for (let j = 0; j < f; j++) {
        total += x.shares[i * f + j];
        negative += x.shares[i * f + j] < 0;
      }
      sumDiff = Math.max(sumDiff, Math.abs(total - (x.scores[i] > 0 ? 1 : 0)));
    }
    await contributionsOnce(s, batches, flagged, axes, { minBatchMs: cfg.warmupBatchMs }, false);
    const reps = [];
    for (let r = 0; r < cfg.reps; r++) reps.push(await contributionsOnce(s, batches, flagged, axes, cfg, r % 2 === 1));
    return {
      flagged: flagged.length,
      check: { rows: n, max_abs_score_diff: scoreDiff, max_abs_share_sum_diff: sumDiff, negative_shares: negative },
      reps,
    };
  },

  /** Round-trip target: score the rows with our engine on the shuttle f32 model. */
  echo({ rows }) {
    return scorers.get('ours/shuttle/f32').score(rows, rows.length / 9);
  },
};

const batchCache = new Map();
function batchesFor(m, cfg) {
  const key = `${m.name}/${cfg.batchSizes}`;
  if (!batchCache.has(key))
    batchCache.set(
      key,
      cfg.batchSizes.map((n) => [n, tile(m.sample, m.features, n)]),
    );
  return batchCache.get(key);
}

self.onmessage = async ({ data: { id, cmd, ...args } }) => {
  try {
    const h = handlers[cmd];
    if (!h) throw new Error(`unknown command ${cmd}`);
    const result = await h(args);
    self.postMessage({ id, ok: true, result });
  } catch (e) {
    self.postMessage({ id, ok: false, error: `${cmd}: ${e && e.stack ? e.stack : e}` });
  }
};
