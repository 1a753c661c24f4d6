// Module service worker for the benchmark: where the product scores. It starts our wasm and
// loads the shuttle models once, then answers { cmd, ... } messages on the MessageChannel port
// sent with each message, inside event.waitUntil (port messages alone would not keep the worker
// alive). Listeners are registered synchronously; no fetch handler, so page loads are untouched.
// The `outbox` command measures the product's EdgeApp (score → IndexedDB outbox → OTLP flush)
// against the bench server's telemetry sink, or the real collector behind the server's `/collector`.
import * as glue from '/target/bench/pkg/edge_anomaly.js';
import { initOurs, ours } from './engines.js';
import { measureOnce, tile, timerResolutionUs, warmUp } from './measure.js';
import { fetchPackage } from '/worker/model_package.js';

/** Single-reading calls pending at once in the streamed write measurement. */
const IN_FLIGHT = 64;

const MODELS = { f32: '/models/shuttle/model.f32.onnx', int8: '/models/shuttle/model.int8.onnx' };

async function start() {
  await initOurs(glue);
  const scorers = { bytes: {} };
  for (const [kind, url] of Object.entries(MODELS)) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    scorers.bytes[kind] = new Uint8Array(await r.arrayBuffer());
    scorers[kind] = ours(glue, scorers.bytes[kind]);
  }
  return scorers;
}
const ready = start();

const handlers = {
  info: () => ({ crossOriginIsolated: self.crossOriginIsolated, timerResolutionUs: timerResolutionUs() }),
  score: (s, { rows }) => s.f32.score(rows, rows.length / s.f32.features),
  scores: (s, { kind, rows }) => Array.from(s[kind].score(rows, rows.length / s[kind].features)),
  /** Warm-up then `cfg.reps` repetitions of the warm measurements, all inside this event. */
  async measure(s, { kind, sample, cfg }) {
    const scorer = s[kind];
    const batches = cfg.batchSizes.map((n) => [n, tile(sample, scorer.features, n)]);
    await warmUp(scorer, sample, cfg.warmupCalls, batches, cfg.warmupBatchMs);
    const reps = [];
    for (let r = 0; r < cfg.reps; r++) reps.push(await measureOnce(scorer, sample, batches, cfg));
    return { api: scorer.api, reps };
  },
  /**
   * One repetition of the outbox path, as the product runs it (int8 model): with the collector
   * away (503), `readings` readings in `score` calls of `chunk`, then `singles` one-reading calls
   * one after another, then `singles` more with up to `IN_FLIGHT` of them pending at once (a page
   * streaming readings faster than a commit: the app records those that arrive during a write
   * together), are scored and written to a fresh IndexedDB outbox; then the endpoint comes back and we flush
   * until the outbox is empty, to `up` (the sink, `/sink/up`, or the real collector, `/collector`).
   * Rates include scoring (the product never writes unscored).
   */
  async outbox(s, { sample, readings, chunk, singles, origin, up = '/sink/up' }) {
    const features = s.int8.features;
    const app = await glue.EdgeApp.open(`bench-outbox-${Date.now()}-${Math.random()}`, `${origin}/sink/down`, 'bench', 0);
    const pkg = await fetchPackage((name) => fetch(`/models/shuttle/${name}`));
    app.loadPackage(pkg.files, pkg.bundle, 'update');
    const queued = async () => {
      const st = await app.status();
      return st.outbox.queued + st.outbox.inflight_records;
    };
    const marks = { start: performance.now() };
    let t = marks.start;
    for (let done = 0; done < readings; done += chunk)
      await app.score(tile(sample, features, Math.min(chunk, readings - done), done), features);
    const chunked_s = (performance.now() - t) / 1000;
    t = marks.batched = performance.now();
    for (let i = 0; i < singles; i++) await app.score(tile(sample, features, 1, i), features);
    const singles_s = (performance.now() - t) / 1000;
    t = marks.singles = performance.now();
    let next = 0;
    const stream = async () => {
      while (next < singles) {
        const i = next++;
        await app.score(tile(sample, features, 1, singles + i), features);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, stream));
    const streamed_s = (performance.now() - t) / 1000;
    marks.streamed = performance.now();
    const total = readings + 2 * singles;
    const before = await queued();
    if (before !== total) throw new Error(`outbox holds ${before} records, expected ${total}`);
    app.configure(`${origin}${up}`, undefined);
    t = marks.configured = performance.now();
    let flushes = 0;
    while ((await queued()) > 0) {
      if (++flushes > 10_000) throw new Error('outbox did not drain');
      await app.networkRestored();
    }
    const flush_s = ((marks.drained = performance.now()) - t) / 1000;
    return {
      marks,
      readings,
      chunk,
      singles,
      flushes,
      up,
      device_id: app.deviceId,
      write_batched_records_per_s: readings / chunked_s,
      write_single_records_per_s: singles / singles_s,
      write_streamed_records_per_s: singles / streamed_s,
      in_flight: IN_FLIGHT,
      flush_records_per_s: total / flush_s,
    };
  },
};

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('message', (event) => {
  const port = event.ports[0];
  const { cmd, ...args } = event.data;
  event.waitUntil(
    ready
      .then((s) => {
        if (!handlers[cmd]) throw new Error(`unknown command ${cmd}`);
        return handlers[cmd](s, args);
      })
      .then(
        (result) => port.postMessage({ ok: true, result }),
        (e) => port.postMessage({ ok: false, error: `sw ${cmd}: ${e && e.stack ? e.stack : e}` }),
      ),
  );
});
