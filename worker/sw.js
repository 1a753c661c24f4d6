// Service worker shim: registers every listener during the first synchronous evaluation (the
// spec requires it), starts the wasm app (again, after a backoff, if a start failed), and makes
// each handler wait on that start inside event.waitUntil. Scoring, the outbox, the sync policy
// and the flush schedule (after writes, on a timer, on reconnect) live in Rust (EdgeApp); this
// file only routes events to it.
import { SMALL_WASM, describeBuild, loadBuild, needsGeneralEngine } from './engine.js';
import { MSG, ERR, PROTOCOL_VERSION, reply, fail, errorOf, checkEnvelope, parseRequest } from './protocol.js';
import { retryingStart } from './start_retry.js';
import { fetchPackage } from './model_package.js';
import { discard, loadStored, readPointer, saveActive, setActive } from './model_store.js';

const APP_VERSION = '0.1.0';
const DB_NAME = 'edge-anomaly-outbox';
const SYNC_TAG = 'edge-outbox-flush';
const UPDATE_TIMER_MS = 10 * 60_000;
/** Largest model release the worker downloads (all its files). */
const MAX_RELEASE_BYTES = 32 * 1024 * 1024;
const CACHE = `edge-anomaly-shell-${APP_VERSION}`;
const scoped = (path) => new URL(path, self.registration.scope).href;
// The app shell: everything the page and the engine need to load and score with no network.
// Of the small engine, only the compilation this browser runs (SMALL_WASM). The full engine's wasm
// (edge-anomaly-full_bg.wasm) is not in it: it is cached the first time a model needs it.
const SHELL = [
  './',
  'index.html',
  'app.js',
  'client.js',
  'protocol.js',
  'start_retry.js',
  'model_package.js',
  'model_store.js',
  'engine.js',
  'style.css',
  'chart.js',
  'sources.js',
  'edge-anomaly.js',
  SMALL_WASM,
  'edge-anomaly-full.js',
  'manifest.webmanifest',
  'models/model.int8.onnx',
  'models/metadata.json',
  'models/golden.json',
  'models/model.sig',
  'models/sample.csv',
  'icons/icon-192.png',
  'icons/icon-512.png',
  'icons/icon-maskable-512.png',
].map(scoped);

// The model update channel: what the dashboard shows of it.
const update = { state: 'idle', version: null, received: 0, total: 0, error: null, checkedAt: null, discarded: 0 };
let checking = null;

// Shell files this worker has fetched into the cache (or is fetching), by URL. On a first visit
// the worker starts (and needs the engine) while install is caching the shell: both wait on the
// one download instead of fetching the engine twice.
const fetching = new Map();

/** Resolves once `url`, fetched fresh (`cache: 'reload'` bypasses the HTTP cache, so a new
 * version never caches stale files), is in the shell cache; once per worker. */
function cacheFresh(url) {
  let done = fetching.get(url);
  if (!done) {
    done = fetch(new Request(url, { cache: 'reload' })).then(async (res) => {
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      await (await caches.open(CACHE)).put(url, res);
    });
    done.catch(() => fetching.delete(url));
    fetching.set(url, done);
  }
  return done;
}

/** From the shell cache; on a miss (first start, before install finished) through the cache,
 * so install finds the file there; the network as it is if caching fails. */
async function cachedFetch(url) {
  const hit = await caches.match(url, { cacheName: CACHE });
  if (hit) return hit;
  try {
    await cacheFresh(url);
    const cached = await caches.match(url, { cacheName: CACHE });
    if (cached) return cached;
  } catch (e) {
    console.warn(`edge-anomaly: ${url} not cached`, e);
  }
  return fetch(url);
}

/** Starts the app on engine build `kind` ('small' first; 'full' when a model needs tract):
 * opens the outbox, installs the bundled model and the release that was active, then starts the
 * flush timer. */
async function start(kind = 'small') {
  // The bundled model's files are read while the engine's wasm compiles (its failure is handled
  // where the package is used, below).
  const bundledPackage = fetchPackage((name) => cachedFetch(scoped(`models/${name}`)));
  bundledPackage.catch(() => {});
  // The wasm comes from the cache too, so a worker restarted offline still starts.
  const EdgeApp = await loadBuild(kind, (file) => cachedFetch(scoped(file)));
  const app = await EdgeApp.open(DB_NAME, new URL(self.registration.scope).origin, APP_VERSION, 0);
  let metadata = {};
  let bundled = null;
  try {
    // The bundled model is verified like any update: signature, digests, contract, golden rows.
    const pkg = await bundledPackage;
    app.loadPackage(pkg.files, pkg.bundle, 'update');
    metadata = pkg.metadata;
    bundled = pkg.metadata.version;
  } catch (e) {
    if (kind === 'small' && needsGeneralEngine(e)) return startFull(app);
    // No model (or one refused, in status().model_events): readings are still recorded, raw
    // and flagged for cloud scoring.
    console.error('edge-anomaly: model not loaded', e);
  }
  if ((await restoreActive(app, bundled)) === 'general' && kind === 'small') return startFull(app);
  app.startTimer();
  // Pages resend the readings they sent and got no answer for (this worker may have been
  // stopped while handling them); the outbox recognises the ones already recorded by their id.
  self.clients
    .matchAll({ includeUncontrolled: true })
    .then((clients) => clients.forEach((c) => c.postMessage({ v: PROTOCOL_VERSION, type: MSG.READY })))
    .catch(() => {});
  // Since this worker's script began to run (the service worker's time origin).
  const readyMs = Math.round(performance.now() * 10) / 10;
  return { app, metadata, bundled, kind, readyMs };
}

/** Drops the small build's app (nothing used it yet) and starts on the full build. */
function startFull(small) {
  small.free();
  return start('full');
}

/** Reinstalls the release that was active before this worker started, verified again; one
 * that no longer verifies (corrupted in storage) is discarded, and the channel fetches the
 * newest release again. One that needs the general engine is kept: 'general' says so. */
async function restoreActive(app, bundled) {
  let pointer;
  try {
    pointer = await readPointer();
  } catch {
    return null;
  }
  if (!pointer.active || pointer.active === bundled) return null;
  const pkg = await loadStored(pointer.active).catch(() => null);
  try {
    if (!pkg) throw Object.assign(new Error(`stored release ${pointer.active} is incomplete`), { code: 'MODEL_FILE_MISSING' });
    app.loadPackage(pkg.files, pkg.bundle, 'restore');
  } catch (e) {
    if (needsGeneralEngine(e)) return 'general';
    update.error = `${errorOf(e, 'MODEL_STORED').code}: stored release ${pointer.active} discarded (${errorOf(e, '').message})`;
    update.discarded = (update.discarded || 0) + 1;
    await discard(pointer.active).catch(() => {});
  }
  return null;
}

/** Looks for a newer signed release at the collector (`/releases/manifest.json`) and, if the
 * app wants it, downloads it (size-capped, progress in `update`), has the app verify and
 * activate it, then stores it and switches the stored pointer. One check at a time. */
function checkForUpdate() {
  if (!checking) {
    checking = started()
      .then(({ app }) => runCheck(app))
      .catch((e) => {
        update.state = 'failed';
        update.error = `${errorOf(e, 'UPDATE').code}: ${errorOf(e, '').message}`;
      })
      .finally(() => {
        checking = null;
        update.checkedAt = Date.now();
      });
  }
  return checking;
}

async function runCheck(app) {
  update.state = 'checking';
  const status = await app.status();
  const base = new URL('/releases/', status.endpoint || self.registration.scope);
  const r = await fetch(new URL('manifest.json', base), { cache: 'no-store', redirect: 'error' });
  if (!r.ok) throw Object.assign(new Error(`manifest: HTTP ${r.status}`), { code: 'UPDATE_MANIFEST' });
  const { releases = [] } = await r.json();
  // Every release is considered (an older one is logged as refused, once); the newest wanted
  // one is downloaded.
  const wanted = releases.filter((rel) => app.considerRelease(String(rel.version), String(rel.min_app_version || '0.0.0')));
  const release = wanted.at(-1);
  if (!release) {
    update.state = 'current';
    update.version = null;
    return;
  }
  const total = (release.files || []).reduce((n, f) => n + (Number(f.bytes) || 0), 0);
  Object.assign(update, { state: 'downloading', version: release.version, received: 0, total, error: null });
  if (total > MAX_RELEASE_BYTES) {
    throw Object.assign(new Error(`release ${release.version} is ${total} bytes, over ${MAX_RELEASE_BYTES}`), {
      code: 'MODEL_TOO_LARGE',
    });
  }
  const files = new URL(release.base, base);
  const pkg = await fetchPackage(
    async (name) => {
      const res = await fetch(new URL(name, files), { cache: 'no-store', redirect: 'error' });
      const bytes = await res
        .clone()
        .arrayBuffer()
        .then(
          (b) => b.byteLength,
          () => 0,
        );
      update.received += bytes;
      return res;
    },
    { maxBytes: MAX_RELEASE_BYTES },
  );
  update.state = 'verifying';
  try {
    try {
      app.loadPackage(pkg.files, pkg.bundle, 'update');
    } catch (e) {
      if (!needsGeneralEngine(e)) throw e;
      await switchToFull(pkg);
    }
  } catch (e) {
    update.state = 'refused';
    update.error = `${errorOf(e, 'MODEL').code}${e && e.detail && e.detail !== e.code ? `:${e.detail}` : ''}: ${errorOf(e, '').message}`;
    return;
  }
  await saveActive(release.version, pkg);
  update.state = 'activated';
}

/** After the app rolled back (the watch, or the user), the stored pointer follows it. */
async function followRollback(app, bundled) {
  const version = app.modelVersion;
  await setActive(version && version !== bundled ? version : null).catch(() => {});
}

// The app, started on first use; a failed start is retried by the next event after a backoff.
let current = retryingStart(() => start());
const started = () => current();

/** A release the small build cannot run: the full build starts (with the bundled and restored
 * models, as at a worker start), verifies the release, and takes over from the small build's
 * app, whose timer stops. Throws, leaving the small build running, if the full build refuses it
 * too. */
async function switchToFull(pkg) {
  const previous = await started();
  if (previous.kind === 'full') throw Object.assign(new Error('the full engine refused the model'), { code: 'GENERAL_ENGINE' });
  const next = await start('full');
  try {
    next.app.loadPackage(pkg.files, pkg.bundle, 'update');
  } catch (e) {
    next.app.retire();
    throw e;
  }
  const taken = Promise.resolve(next);
  current = () => taken;
  previous.app.retire();
}

function flushSoon(reason) {
  return started()
    .then(({ app }) => app.flush())
    .catch((e) => console.warn(`flush (${reason})`, e));
}

// Events that ask for a flush: worker start, Background Sync where the browser has it and the
// page's `online` message; EdgeApp's own schedule adds the timer and the flush after writes.
flushSoon('start');
checkForUpdate();
setInterval(() => checkForUpdate(), UPDATE_TIMER_MS);

let lastSyncRegistration = 0;
function requestBackgroundSync() {
  const now = Date.now();
  if (!self.registration.sync || now - lastSyncRegistration < 5_000) return;
  lastSyncRegistration = now;
  self.registration.sync.register(SYNC_TAG).catch(() => {});
}

self.addEventListener('install', (event) => {
  // Every shell file fetched fresh by this worker (the ones its start already fetched are not
  // fetched again); one that fails fails the install.
  event.waitUntil(
    Promise.all(SHELL.map(cacheFresh))
      .then(() => started())
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(keys.filter((k) => k.startsWith('edge-anomaly-shell-') && k !== CACHE).map((k) => caches.delete(k))),
      )
      .then(() => self.clients.claim()),
  );
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
  event.waitUntil(
    started()
      .then(({ app }) => app.flush())
      .then((o) => {
        if (o.status === 'Backoff' || o.status === 'AlreadyRunning' || o.last_error) {
          throw new Error(o.last_error || o.status);
        }
      }),
  );
});

self.addEventListener('message', (event) => {
  event.waitUntil(handle(event.data).then((msg) => event.source && event.source.postMessage(msg)));
});

async function handle(req) {
  const envelope = checkEnvelope(req);
  if (!envelope.ok) return envelope.reply;
  let app, metadata, bundled, kind, readyMs;
  try {
    ({ app, metadata, bundled, kind, readyMs } = await started());
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
        if (r.rolledBack) await followRollback(app, bundled);
        requestBackgroundSync();
        return reply(req, r);
      }
      case MSG.STATUS:
        return reply(req, {
          status: {
            ...(await app.status()),
            ...describeBuild(kind),
            worker_ready_ms: readyMs,
            feature_names: metadata.features || [],
            update: { ...update },
          },
        });
      case MSG.FLUSH:
        return reply(req, { outcome: await app.flush() });
      case MSG.ONLINE:
        return reply(req, { outcome: await app.networkRestored() });
      case MSG.CONFIGURE:
        await app.configure(parsed.endpoint, parsed.token || undefined);
        flushSoon('configure');
        return reply(req, {});
      case MSG.SEND_READINGS:
        await app.setSendReadings(parsed.on);
        return reply(req, {});
      case MSG.CHECK_UPDATE:
        await checkForUpdate();
        return reply(req, { update: { ...update } });
      case MSG.ROLLBACK: {
        const rolledBack = app.rollBack();
        if (rolledBack) await followRollback(app, bundled);
        return reply(req, { rolledBack, version: app.modelVersion });
      }
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
