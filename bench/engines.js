// The two engines behind one scorer shape { engine, api, features, isAsync, score(rows, n), free() }
// (ours adds explain(rows, n) and repair(row, centres, spreads)):
// ours (the wasm-bindgen AnomalyEngine) and onnxruntime-web (wasm EP, one thread, SIMD).
// Modules are passed in, so the service worker can import them statically and the dedicated
// worker dynamically (cold start times the import of the engine under test only).

import { scoreIntoReused } from './measure.js';

export const OUR_GLUE = '/target/bench/pkg/edge_anomaly.js';
export const OUR_WASM = '/target/bench/pkg/edge_anomaly_bg.wasm';
export const ORT_DIR = '/node_modules/onnxruntime-web/dist/';
export const ORT_MODULE = `${ORT_DIR}ort.wasm.min.mjs`;

/** Starts our wasm once per context (wasm-bindgen's init). */
export async function initOurs(glue) {
  await glue.default({ module_or_path: new URL(OUR_WASM, self.location.origin) });
}

/** Configures onnxruntime-web: wasm files from node_modules, one thread, SIMD (its default). */
export function configureOrt(ort) {
  ort.env.wasm.wasmPaths = new URL(ORT_DIR, self.location.origin).href;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
}

/** Our engine with `bytes` loaded. Uses scoreInto (no allocation per call) when the build has it. */
export function ours(glue, bytes) {
  const e = new glue.AnomalyEngine(0);
  try {
    e.load(bytes);
  } catch (err) {
    e.free();
    throw new Error(`our engine failed to load the model: ${err.code || ''} ${err.message || err}`, { cause: err });
  }
  const features = e.features;
  const into = typeof e.scoreInto === 'function';
  const detail = 'dequantizedMatmuls' in e ? { dequantized_matmuls: e.dequantizedMatmuls } : {};
  const explained = new Map();
  const buffers = (n) => {
    let b = explained.get(n);
    if (!b)
      explained.set(n, (b = { scores: new Float32Array(n), shares: new Float32Array(n * features), guard: new Float32Array(n) }));
    return b;
  };
  return {
    engine: 'ours',
    api: into ? 'scoreInto' : 'score',
    detail,
    features,
    isAsync: false,
    score: into ? scoreIntoReused(e) : (rows) => e.score(rows),
    // Contributions, where the build has them: scores plus every column's share (buffers reused
    // per batch size, like scoreInto's), and the repair search of one flagged reading.
    explain:
      typeof e.explainInto === 'function'
        ? (rows, n) => {
            const b = buffers(n);
            e.explainInto(rows, b.scores, b.shares, b.guard);
            return b;
          }
        : null,
    repair: typeof e.repair === 'function' ? (row, centres, spreads) => e.repair(row, centres, spreads) : null,
    free: () => e.free(),
  };
}

/**
 * onnxruntime-web's session options, spelled out: its documented defaults. (Left out, the two
 * memory options reach the wasm session as false; on or off measured the same.) Other
 * optimization levels, the parallel executor, a reused input tensor or a preallocated output
 * moved these models' rates by less than the noise either (see bench/README.md). Recorded in the
 * results.
 */
export const ORT_SESSION_OPTIONS = {
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  enableCpuMemArena: true,
  enableMemPattern: true,
};

/** An onnxruntime-web session for `bytes`; input and output names come from the session. */
export async function ortSession(ort, bytes, features) {
  let s;
  try {
    s = await ort.InferenceSession.create(bytes, { ...ORT_SESSION_OPTIONS }); // create() adds to the object it is given
  } catch (err) {
    throw new Error(`onnxruntime-web failed to load the model: ${err.message || err}`, { cause: err });
  }
  const input = s.inputNames[0];
  const output = s.outputNames[0];
  return {
    engine: 'ort',
    api: 'InferenceSession.run',
    detail: { session_options: ORT_SESSION_OPTIONS },
    features,
    isAsync: true,
    score: async (rows, n) => (await s.run({ [input]: new ort.Tensor('float32', rows, [n, features]) }))[output].data,
    free: () => s.release(),
  };
}
