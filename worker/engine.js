// Which build of the wasm app the worker runs. The small build (the dense kernel and its ONNX
// reader, no tract) starts first: it runs the MLP autoencoders the pipeline exports. A model it
// cannot run is refused with the detail code GENERAL_ENGINE, and the worker starts the full build
// (tract, any ONNX graph) instead, fetched on that first need and cached for offline starts.
// Both glue files are imported up front (service workers may not import() later); each fetches
// and compiles its wasm only when initialised.
//
// The small build comes in two compilations of the same code behind the same glue: one whose
// kernel multiplies and adds with relaxed SIMD's `f32x4.relaxed_madd` (one fused instruction
// where the CPU has it), for browsers that validate relaxed SIMD, and one with plain SIMD128 for
// the others. Which one this browser gets is decided once, here, before anything is fetched.
import initSmall, { EdgeApp as SmallApp } from './edge-anomaly.js';
import initFull, { EdgeApp as FullApp } from './edge-anomaly-full.js';

// The smallest module that uses a relaxed SIMD instruction: two i8x16.splat constants into
// i8x16.relaxed_swizzle. Browsers without relaxed SIMD refuse to validate it.
const RELAXED_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2,
  11,
]);

/** Whether this browser runs relaxed SIMD, and so the small build's relaxed compilation. */
export const RELAXED_SIMD = WebAssembly.validate(RELAXED_SIMD_PROBE);

/** The small build's wasm this browser loads (the one the shell caches). */
export const SMALL_WASM = RELAXED_SIMD ? 'edge-anomaly-relaxed_bg.wasm' : 'edge-anomaly_bg.wasm';

const BUILDS = {
  small: { init: initSmall, EdgeApp: SmallApp, wasm: SMALL_WASM },
  full: { init: initFull, EdgeApp: FullApp, wasm: 'edge-anomaly-full_bg.wasm' },
};

/** Whether `e` (a refused model package or engine error) asks for the full build. */
export function needsGeneralEngine(e) {
  return Boolean(e) && (e.code === 'GENERAL_ENGINE' || e.detail === 'GENERAL_ENGINE');
}

/** What the status reports of build `kind`: its name, and the SIMD its kernel uses. */
export function describeBuild(kind) {
  return { engine_build: kind, engine_simd: kind === 'small' && RELAXED_SIMD ? 'relaxed-simd' : 'simd128' };
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
