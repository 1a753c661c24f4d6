// Which build of the wasm app the worker runs. The small build (the dense kernel and its ONNX
// reader, no tract) starts first: it runs the MLP autoencoders the pipeline exports. A model it
// cannot run is refused with the detail code GENERAL_ENGINE, and the worker starts the full build
// (tract, any ONNX graph) instead, fetched on that first need and cached for offline starts.
// Both glue files are imported up front (service workers may not import() later); each fetches
// and compiles its wasm only when initialised.
import initSmall, { EdgeApp as SmallApp } from './edge-anomaly.js';
import initFull, { EdgeApp as FullApp } from './edge-anomaly-full.js';

const BUILDS = {
  small: { init: initSmall, EdgeApp: SmallApp, wasm: 'edge-anomaly_bg.wasm' },
  full: { init: initFull, EdgeApp: FullApp, wasm: 'edge-anomaly-full_bg.wasm' },
};

/** Whether `e` (a refused model package or engine error) asks for the full build. */
export function needsGeneralEngine(e) {
  return Boolean(e) && (e.code === 'GENERAL_ENGINE' || e.detail === 'GENERAL_ENGINE');
}

const ready = new Map();

/** Initialises build `kind` once per worker (`fetchWasm(file)` gives its wasm Response) and
 * resolves to its EdgeApp class. */
export function loadBuild(kind, fetchWasm) {
  let done = ready.get(kind);
  if (!done) {
    const build = BUILDS[kind];
    done = build.init({ module_or_path: fetchWasm(build.wasm) }).then(() => build.EdgeApp);
    done.catch(() => ready.delete(kind));
    ready.set(kind, done);
  }
  return done;
}
