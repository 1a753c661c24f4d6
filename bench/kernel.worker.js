// Dedicated module worker for bench/kernel.mjs: every build under comparison in the same worker
// (each glue module its own wasm instance), each with every model loaded, so that all of them
// run on the same thread under the same load. `block` times one build on one model and batch
// size for at least `ms`; the page alternates blocks between the builds.
import { scoreIntoReused, tile, timedBlock, warmUp } from './measure.js';

const engines = new Map(); // `${build}/${model}` → scorer
const batches = new Map(); // `${model}/${n}` → rows

const handlers = {
  async setup({ builds, models, sizes, warmupMs }) {
    for (const m of models) {
      const rows = Float32Array.from(m.sample);
      for (const n of sizes) batches.set(`${m.name}/${n}`, tile(rows, m.features, n));
    }
    const backends = {};
    for (const b of builds) {
      const g = await import(b.glue);
      await g.default({ module_or_path: new URL(b.wasm, self.location.origin) });
      for (const m of models) {
        const e = new g.AnomalyEngine(0);
        e.load(new Uint8Array(await (await fetch(m.url)).arrayBuffer()));
        const scorer = { isAsync: false, features: e.features, score: scoreIntoReused(e) };
        engines.set(`${b.label}/${m.name}`, scorer);
        backends[`${b.label}/${m.name}`] = e.backend;
        const rows = Float32Array.from(m.sample);
        await warmUp(
          scorer,
          rows,
          200,
          sizes.map((n) => [n, batches.get(`${m.name}/${n}`)]),
          warmupMs,
        );
      }
    }
    return backends;
  },

  /** The scores of the first `n` sample rows, for checking the builds agree. */
  async scores({ build, model, n }) {
    return [...engines.get(`${build}/${model}`).score(batches.get(`${model}/${n}`), n)];
  },

  async block({ build, model, n, ms }) {
    return timedBlock(engines.get(`${build}/${model}`), batches.get(`${model}/${n}`), n, ms);
  },
};

self.onmessage = async ({ data: { id, cmd, ...args } }) => {
  try {
    self.postMessage({ id, ok: true, result: await handlers[cmd](args) });
  } catch (e) {
    self.postMessage({ id, ok: false, error: `${cmd}: ${e && e.stack ? e.stack : e}` });
  }
};
