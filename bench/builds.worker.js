// Dedicated module worker for bench/builds.mjs: one engine build per worker. `cold` runs in a
// fresh worker: import the build's glue, fetch and compile its wasm (from the network with
// `no-store`, or from Cache Storage as the product's service worker does), load a model, score
// one reading. `warm` then measures single-reading calls and batches on the same instance.
import { measureOnce, scoreIntoReused, tile, warmUp } from './measure.js';

const now = () => performance.timeOrigin + performance.now(); // comparable with the page's clock
/** When this worker's module began to run (the worker has started and fetched this script). */
const evaluated = now();
const CACHE = 'bench-builds';
let scorer = null;

async function wasmSource(url, from) {
  if (from === 'network') return new URL(url, self.location.origin);
  // The product's path: the response comes from Cache Storage (streamed into the compiler).
  const cache = await caches.open(CACHE);
  let hit = await cache.match(url);
  if (!hit) {
    await cache.add(url);
    hit = await cache.match(url);
  }
  return hit;
}

const handlers = {
  async cold({ glue, wasm, from, bytes, row, t0 }) {
    const t = { start: t0, evaluated };
    const g = await import(glue);
    t.imported = now();
    await g.default({ module_or_path: await wasmSource(wasm, from) });
    t.runtime = now();
    const e = new g.AnomalyEngine(0);
    e.load(new Uint8Array(bytes));
    t.loaded = now();
    e.scoreInto(Float32Array.from(row), new Float32Array(1));
    t.firstScore = now();
    scorer = { engine: 'ours', api: 'scoreInto', isAsync: false, features: e.features, score: scoreIntoReused(e) };
    return { ...t, backend: e.backend };
  },

  /** Caches the build's wasm once, so the `cache` cold starts read it from Cache Storage. */
  async precache({ wasm }) {
    await (await caches.open(CACHE)).add(wasm);
    return true;
  },

  async warm({ sample, features, cfg }) {
    const rows = Float32Array.from(sample);
    const batches = cfg.batchSizes.map((n) => [n, tile(rows, features, n)]);
    await warmUp(scorer, rows, cfg.warmupCalls, batches, cfg.warmupBatchMs);
    return measureOnce(scorer, rows, batches, cfg);
  },
};

self.onmessage = async ({ data: { id, cmd, ...args } }) => {
  try {
    self.postMessage({ id, ok: true, result: await handlers[cmd](args) });
  } catch (e) {
    self.postMessage({ id, ok: false, error: `${cmd}: ${e && e.stack ? e.stack : e}` });
  }
};
