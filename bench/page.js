// The benchmark page: owns the workers and the service worker and exposes `window.bench`, whose
// steps bench/run.mjs calls one by one through playwright. It returns raw repetitions; medians,
// ratios and the table are computed in Node (run.mjs). Progress goes to the console.
import { latency, quantile, timerResolutionUs } from './measure.js';

const log = (...a) => console.log('[bench]', ...a);
const nowAbs = () => performance.timeOrigin + performance.now();
let config;
const bytes = new Map(); // `${model}/${kind}` -> ArrayBuffer
const workers = new Map(); // `${engine}/${model}/${kind}` -> worker (warm measurements)

/** A module worker with request/response over postMessage; any error event rejects loudly. */
function spawn() {
  const w = new Worker('./bench.worker.js', { type: 'module' });
  const pending = new Map();
  let nextId = 1;
  const failAll = (msg) => {
    for (const p of pending.values()) p.reject(new Error(msg));
    pending.clear();
  };
  w.onerror = (e) => failAll(`worker error: ${e.message || 'script failed to load'} (${e.filename || ''}:${e.lineno || ''})`);
  w.onmessageerror = () => failAll('worker message could not be deserialized');
  w.onmessage = ({ data }) => {
    const p = pending.get(data.id);
    if (!p) return;
    pending.delete(data.id);
    if (data.ok) p.resolve(data.result);
    else p.reject(new Error(data.error));
  };
  const call = (cmd, args = {}, transfer = []) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      w.postMessage({ id, cmd, ...args }, transfer);
    });
  return { worker: w, call };
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

function modelFor(name) {
  const m = config.models.find((x) => x.name === name);
  return {
    name,
    features: m.features,
    sample: Float32Array.from(m.sample),
    threshold: m.threshold,
    mean: m.mean,
    std: m.std,
    bytes: { f32: bytes.get(`${name}/f32`), int8: bytes.get(`${name}/int8`) },
  };
}

async function setup(cfg) {
  config = cfg;
  for (const m of config.models) {
    for (const kind of ['f32', 'int8']) bytes.set(`${m.name}/${kind}`, await fetchBytes(m[kind]));
  }
  return { page: { crossOriginIsolated: self.crossOriginIsolated, timerResolutionUs: timerResolutionUs() } };
}

/** Warm measurements. Each (engine, model) pair gets a worker of its own, as a product runs one
 * model, so no engine's heap or JIT state is shaped by another's. Engines are interleaved within
 * a repetition. */
async function warmRun() {
  const { cfg } = config;
  const out = {};
  const combos = [];
  for (const m of config.models) for (const kind of ['f32', 'int8']) combos.push([m.name, kind]);
  let worker;
  for (const [model, kind] of combos) {
    out[`${model}/${kind}`] = {};
    for (const engine of ['ours', 'ort']) {
      log(`prepare ${engine} ${model}/${kind}`);
      const w = spawn();
      workers.set(`${engine}/${model}/${kind}`, w);
      worker = await w.call('setup', { engines: [engine], modelList: [modelFor(model)] });
      const { api, detail } = await w.call('prepare', { engine, model, kind, cfg });
      const scores = await w.call('scores', { engine, model, kind, n: cfg.correctnessRows });
      out[`${model}/${kind}`][engine] = { api, detail, scores, reps: [], load: [] };
    }
  }
  for (let r = 0; r < cfg.reps; r++) {
    for (const [model, kind] of combos) {
      log(`rep ${r + 1}/${cfg.reps} ${model}/${kind}`);
      const order = r % 2 ? ['ort', 'ours'] : ['ours', 'ort'];
      const call = (engine, cmd, args = {}) =>
        workers.get(`${engine}/${model}/${kind}`).call(cmd, { engine, model, kind, cfg, ...args });
      const rep = { ours: { batch: {} }, ort: { batch: {} } };
      // Single rows in chunks of the calls, alternating between the engines as the batches below do.
      const single = { ours: { per: [], blockMs: 0 }, ort: { per: [], blockMs: 0 } };
      const chunk = Math.ceil(cfg.singleCalls / cfg.singleChunks);
      for (let round = 0; round < cfg.singleChunks; round++) {
        for (const engine of round % 2 ? [...order].reverse() : order) {
          const t = await call(engine, 'single', { calls: chunk, start: round * chunk });
          single[engine].per.push(...t.per);
          single[engine].blockMs += t.blockMs;
        }
      }
      for (const engine of order)
        rep[engine].single = latency(single[engine].per, single[engine].blockMs, single[engine].per.length);
      for (const n of cfg.batchSizes) {
        // Timed blocks of the same rows, alternating between the engines (who goes first swaps
        // every round) until each has run ≥ minBatchMs: a burst of load from elsewhere on the
        // machine lands on both, not on whichever engine happened to be running.
        const sum = { ours: { rows: 0, ms: 0 }, ort: { rows: 0, ms: 0 } };
        for (let round = 0; sum.ours.ms < cfg.minBatchMs || sum.ort.ms < cfg.minBatchMs; round++) {
          for (const engine of round % 2 ? [...order].reverse() : order) {
            const b = await call(engine, 'block', { n });
            sum[engine].rows += b.rows;
            sum[engine].ms += b.ms;
          }
        }
        for (const engine of order) rep[engine].batch[n] = sum[engine].rows / (sum[engine].ms / 1000);
      }
      for (const engine of order) out[`${model}/${kind}`][engine].reps.push(rep[engine]);
    }
  }
  // Model load with the runtime up (a second engine in the same worker), after the timed loops.
  for (let r = 0; r < cfg.reps; r++) {
    for (const [model, kind] of combos) {
      for (const engine of r % 2 ? ['ort', 'ours'] : ['ours', 'ort']) {
        out[`${model}/${kind}`][engine].load.push(
          await workers.get(`${engine}/${model}/${kind}`).call('load', { engine, model, kind }),
        );
      }
    }
  }
  const fetched = [];
  for (const w of workers.values()) fetched.push(...(await w.call('fetched')));
  for (const [key, w] of workers)
    if (key !== 'ours/shuttle/f32') {
      w.worker.terminate();
      workers.delete(key);
    }
  return { results: out, fetched, worker };
}

/** Contributions against plain scoring, our engine on the shuttle models: a worker per model. */
async function contributions() {
  const { cfg } = config;
  const out = {};
  for (const kind of ['f32', 'int8']) {
    log(`contributions shuttle/${kind}`);
    const w = spawn();
    await w.call('setup', { engines: ['ours'], modelList: [modelFor('shuttle')] });
    await w.call('prepare', { engine: 'ours', model: 'shuttle', kind, cfg });
    out[`shuttle/${kind}`] = await w.call('contributions', { model: 'shuttle', kind, cfg });
    w.worker.terminate();
  }
  return out;
}

/** Fresh worker per repetition: page `new Worker()` -> model loaded -> first score. */
async function cold(engine, model, kind) {
  const m = config.models.find((x) => x.name === model);
  const reps = [];
  for (let r = 0; r < config.cfg.coldReps; r++) {
    const buf = bytes.get(`${model}/${kind}`).slice(0);
    const t0 = nowAbs();
    const w = spawn();
    const t = await w.call('cold', { engine, bytes: buf, features: m.features, row: m.sample.slice(0, m.features) }, [buf]);
    const received = nowAbs();
    w.worker.terminate();
    reps.push({
      worker_to_loaded_ms: t.loaded - t0,
      worker_to_first_score_ms: t.firstScore - t0,
      worker_to_reply_ms: received - t0,
      script_start_ms: t.start - t0,
      runtime_start_ms: t.runtime - t.start,
      load_ms: t.loaded - t.runtime,
      first_score_ms: t.firstScore - t.loaded,
    });
    await new Promise((ok) => setTimeout(ok, 200)); // let the terminated worker go
  }
  return reps;
}

/** Times `calls` sequential round trips of `send(row)`; p50/p99 in µs, after a short warm-up. */
async function roundTrips(send, calls) {
  const m = config.models.find((x) => x.name === 'shuttle');
  const rows = [];
  for (let i = 0; i < 100; i++) rows.push(Float32Array.from(m.sample.slice(i * 9, i * 9 + 9)));
  for (let i = 0; i < 100; i++) await send(rows[i % rows.length]);
  const per = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await send(rows[i % rows.length]);
    per[i] = performance.now() - t;
  }
  return { p50_us: quantile(per, 0.5) * 1000, p99_us: quantile(per, 0.99) * 1000 };
}

const rttWorker = () => roundTrips((rows) => workers.get('ours/shuttle/f32').call('echo', { rows }), config.cfg.rttCalls);

let sw;
/** One message to the service worker with a fresh MessageChannel; resolves with its reply. */
function swCall(cmd, args = {}) {
  return new Promise((resolve, reject) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = ({ data }) => {
      ch.port1.close();
      if (data.ok) resolve(data.result);
      else reject(new Error(data.error));
    };
    ch.port1.onmessageerror = () => reject(new Error('service worker reply could not be deserialized'));
    sw.postMessage({ cmd, ...args }, [ch.port2]);
  });
}

async function swSetup() {
  let reg;
  try {
    reg = await navigator.serviceWorker.register('./bench.sw.js', { type: 'module', scope: './' });
  } catch (e) {
    throw new Error(`service worker registration failed: ${e.message}`, { cause: e });
  }
  const worker = reg.installing || reg.waiting || reg.active;
  if (worker.state !== 'activated') {
    await new Promise((ok, fail) =>
      worker.addEventListener('statechange', () => {
        if (worker.state === 'activated') ok();
        if (worker.state === 'redundant') fail(new Error('service worker became redundant (install failed: see its console)'));
      }),
    );
  }
  sw = reg.active;
  return swCall('info');
}

const rttSw = () => roundTrips((rows) => swCall('score', { rows }), config.cfg.rttCalls);

async function swMeasure(kind) {
  const m = config.models.find((x) => x.name === 'shuttle');
  const n = config.cfg.correctnessRows;
  const scores = await swCall('scores', { kind, rows: Float32Array.from(m.sample.slice(0, n * m.features)) });
  const res = await swCall('measure', { kind, sample: Float32Array.from(m.sample), cfg: config.cfg });
  return { ...res, scores };
}

/** One repetition of the outbox measurement in the service worker (shuttle sample rows), drained to `up`. */
function swOutbox(up) {
  const m = config.models.find((x) => x.name === 'shuttle');
  const { readings, chunk, singles } = config.cfg.outbox;
  return swCall('outbox', { sample: Float32Array.from(m.sample), readings, chunk, singles, origin: location.origin, up });
}

window.bench = { setup, warmRun, contributions, cold, rttWorker, swSetup, rttSw, swMeasure, swOutbox };
document.body.dataset.ready = 'true';
