// Service worker shim: registers every listener during the first synchronous evaluation (the
// spec requires it), starts the wasm engine once, and makes each handler wait on that start
// inside event.waitUntil. All logic lives in Rust; this file only routes events.
import init, { AnomalyEngine } from './edge-anomaly.js';
import { MSG, ERR, PROTOCOL_VERSION, reply, fail, errorOf } from './protocol.js';

const MODEL_URL = new URL('models/model.int8.onnx', self.registration.scope).href;
const META_URL = new URL('models/metadata.json', self.registration.scope).href;

async function start() {
  await init();
  const [model, meta] = await Promise.all([fetch(MODEL_URL), fetch(META_URL)]);
  if (!model.ok) throw Object.assign(new Error(`model fetch ${model.status}`), { code: 'MODEL_FETCH' });
  const engine = new AnomalyEngine(0);
  engine.load(new Uint8Array(await model.arrayBuffer()));
  const metadata = meta.ok ? await meta.json() : {};
  return { engine, metadata };
}

// One start per worker lifetime; a failure is remembered and reported to every request.
const ready = start();
ready.catch((e) => console.error('edge-anomaly: start failed', e));

self.addEventListener('install', (event) => {
  event.waitUntil(ready.then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('message', (event) => {
  event.waitUntil(handle(event.data).then((msg) => event.source && event.source.postMessage(msg)));
});

async function handle(req) {
  if (!req || typeof req !== 'object' || typeof req.type !== 'string') {
    return fail(req, ERR.BAD_MESSAGE, 'message must be an object with a type');
  }
  if (req.v !== PROTOCOL_VERSION) {
    return fail(req, ERR.VERSION_MISMATCH, `worker speaks v${PROTOCOL_VERSION}, got v${req.v}`);
  }
  let app;
  try {
    app = await ready;
  } catch (e) {
    return fail(req, ERR.INIT_FAILED, errorOf(e, ERR.INIT_FAILED).message);
  }
  try {
    switch (req.type) {
      case MSG.SCORE: {
        const rows = req.rows instanceof Float32Array ? req.rows : Float32Array.from(req.rows || []);
        const t0 = performance.now();
        const scores = app.engine.score(rows);
        return reply(req, { scores, latencyMs: performance.now() - t0 });
      }
      case MSG.STATUS:
        return reply(req, {
          model: {
            loaded: app.engine.loaded,
            features: app.engine.features,
            version: app.metadata.version,
            threshold: app.metadata.threshold,
            featureNames: app.metadata.features,
          },
        });
      default:
        return fail(req, ERR.UNKNOWN_TYPE, `unknown message type ${req.type}`);
    }
  } catch (e) {
    return fail(req, errorOf(e, 'INTERNAL').code, errorOf(e, 'INTERNAL').message);
  }
}
