// Module service worker for the benchmark: where the product scores. It starts our wasm and
// loads the shuttle models once, then answers { cmd, ... } messages on the MessageChannel port
// sent with each message, inside event.waitUntil (port messages alone would not keep the worker
// alive). Listeners are registered synchronously; no fetch handler, so page loads are untouched.
import * as glue from '/target/bench/pkg/edge_anomaly.js';
import { initOurs, ours } from './engines.js';
import { measureOnce, tile, timerResolutionUs, warmUp } from './measure.js';

const MODELS = { f32: '/models/shuttle/model.f32.onnx', int8: '/models/shuttle/model.int8.onnx' };

async function start() {
  await initOurs(glue);
  const scorers = {};
  for (const [kind, url] of Object.entries(MODELS)) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    scorers[kind] = ours(glue, new Uint8Array(await r.arrayBuffer()));
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
};

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('message', (event) => {
  const port = event.ports[0];
  const { cmd, ...args } = event.data;
  event.waitUntil(ready
    .then((s) => {
      if (!handlers[cmd]) throw new Error(`unknown command ${cmd}`);
      return handlers[cmd](s, args);
    })
    .then((result) => port.postMessage({ ok: true, result }),
      (e) => port.postMessage({ ok: false, error: `sw ${cmd}: ${e && e.stack ? e.stack : e}` })));
});
