// Service worker shim: registers every listener during the first synchronous evaluation (the
// spec requires it), starts the wasm app (again, after a backoff, if a start failed), and makes
// each handler wait on that start inside event.waitUntil. Scoring, the outbox and the sync policy live in Rust (EdgeApp); this
// file only routes events and decides *when* to flush (the triggers), never *how*.
import init, { EdgeApp } from './edge-anomaly.js';
import { MSG, ERR, PROTOCOL_VERSION, reply, fail, errorOf, checkEnvelope, parseRequest } from './protocol.js';
import { retryingStart } from './start_retry.js';
import { fetchPackage } from './model_package.js';

const APP_VERSION = '0.1.0';
const DB_NAME = 'edge-anomaly-outbox';
const SYNC_TAG = 'edge-outbox-flush';
const FLUSH_TIMER_MS = 10_000;
const CACHE = `edge-anomaly-shell-${APP_VERSION}`;
const scoped = (path) => new URL(path, self.registration.scope).href;
// The app shell: everything the page and the engine need to load and score with no network.
const SHELL = ['./', 'index.html', 'app.js', 'client.js', 'protocol.js', 'start_retry.js', 'model_package.js',
  'style.css', 'chart.js', 'sources.js', 'edge-anomaly.js', 'edge-anomaly_bg.wasm', 'manifest.webmanifest',
  'models/model.int8.onnx', 'models/metadata.json', 'models/golden.json', 'models/model.sig', 'models/sample.csv', 'icons/icon-192.png', 'icons/icon-512.png',
  'icons/icon-maskable-512.png'].map(scoped);

/// From the shell cache when there, else the network (first start, before install finished).
async function cachedFetch(url) {
  const hit = await caches.match(url, { cacheName: CACHE });
  return hit || fetch(url);
}

async function start() {
  // The wasm comes from the cache too, so a worker restarted offline still starts.
  await init({ module_or_path: cachedFetch(scoped('edge-anomaly_bg.wasm')) });
  const app = await EdgeApp.open(DB_NAME, new URL(self.registration.scope).origin, APP_VERSION, 0);
  let metadata = {};
  try {
    // The bundled model is verified like any update: signature, digests, contract, golden rows.
    const pkg = await fetchPackage((name) => cachedFetch(scoped(`models/${name}`)));
    app.loadPackage(pkg.files, pkg.bundle, false);
    metadata = pkg.metadata;
  } catch (e) {
    // No model (or one refused, in status().model_events): readings are still recorded, raw
    // and flagged for cloud scoring.
    console.error('edge-anomaly: model not loaded', e);
  }
  // Pages resend the readings they sent and got no answer for (this worker may have been
  // stopped while handling them); the outbox recognises the ones already recorded by their id.
  self.clients.matchAll({ includeUncontrolled: true })
    .then((clients) => clients.forEach((c) => c.postMessage({ v: PROTOCOL_VERSION, type: MSG.READY })))
    .catch(() => {});
  return { app, metadata };
}

// The app, started on first use; a failed start is retried by the next event after a backoff.
const started = retryingStart(start);

function flushSoon(reason) {
  return started().then(({ app }) => app.flush()).catch((e) => console.warn(`flush (${reason})`, e));
}

// Flush triggers: worker start, a timer while the worker is alive, Background Sync where the
// browser has it, the page's `online` message, and (inside EdgeApp) after writes while the
// endpoint answers.
flushSoon('start');
setInterval(() => flushSoon('timer'), FLUSH_TIMER_MS);

let lastSyncRegistration = 0;
function requestBackgroundSync() {
  const now = Date.now();
  if (!self.registration.sync || now - lastSyncRegistration < 5_000) return;
  lastSyncRegistration = now;
  self.registration.sync.register(SYNC_TAG).catch(() => {});
}

self.addEventListener('install', (event) => {
  // `cache: 'reload'` bypasses the HTTP cache so a new version never precaches stale files.
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' }))))
    .then(() => started())
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys
      .filter((k) => k.startsWith('edge-anomaly-shell-') && k !== CACHE)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  // Shell: cache first. Navigations fall back to the cached page. Everything else (the
  // collector's API, telemetry) goes to the network untouched.
  const url = req.mode === 'navigate' ? scoped('./') : req.url.split('#')[0];
  if (req.mode !== 'navigate' && !SHELL.includes(url)) return;
  event.respondWith(caches.match(url, { cacheName: CACHE }).then((hit) => hit || fetch(req)));
});

self.addEventListener('sync', (event) => {
  if (event.tag !== SYNC_TAG) return;
  // Rejecting tells the browser to retry the sync later.
  event.waitUntil(started().then(({ app }) => app.flush()).then((o) => {
    if (o.status === 'Backoff' || o.status === 'AlreadyRunning' || o.last_error) {
      throw new Error(o.last_error || o.status);
    }
  }));
});

self.addEventListener('message', (event) => {
  event.waitUntil(handle(event.data).then((msg) => event.source && event.source.postMessage(msg)));
});

async function handle(req) {
  const envelope = checkEnvelope(req);
  if (!envelope.ok) return envelope.reply;
  let app, metadata;
  try {
    ({ app, metadata } = await started());
  } catch (e) {
    return fail(req, ERR.INIT_FAILED, errorOf(e, ERR.INIT_FAILED).message);
  }
  const parsed = parseRequest(req, { defaultFeatures: (metadata.features || []).length });
  if (!parsed.ok) {
    // A reading refused here is not recorded: it is counted like every other such reading.
    if (parsed.readings) await app.countDropped(parsed.reply.error.code, parsed.readings).catch(() => {});
    return parsed.reply;
  }
  try {
    switch (parsed.type) {
      case MSG.SCORE: {
        const r = await app.score(parsed.rows, parsed.features, parsed.ids || undefined);
        requestBackgroundSync();
        return reply(req, r);
      }
      case MSG.STATUS:
        return reply(req, { status: { ...(await app.status()), feature_names: metadata.features || [] } });
      case MSG.FLUSH:
        return reply(req, { outcome: await app.flush() });
      case MSG.ONLINE:
        return reply(req, { outcome: await app.networkRestored() });
      case MSG.CONFIGURE:
        await app.configure(parsed.endpoint, parsed.token || undefined);
        flushSoon('configure');
        return reply(req, {});
      case MSG.REDRIVE:
        return reply(req, { records: await app.redriveAll() });
      default:
        return fail(req, ERR.UNKNOWN_TYPE, `unknown message type ${parsed.type}`);
    }
  } catch (e) {
    const err = errorOf(e, 'INTERNAL');
    return fail(req, err.code, err.message);
  }
}
