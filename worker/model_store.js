// Where the worker keeps model releases it downloaded and verified: Cache Storage, one entry
// per file under `models-store/<version>/<name>`, and one pointer entry naming the active
// release. Files are written first and the pointer last (one put), so the switch is atomic: a
// worker stopped mid-save still finds the previous pointer and its complete files. Nothing
// here trusts what it reads back: the app verifies a stored package again before scoring.
import { SIGNATURE_FILE } from './model_package.js';

const CACHE = 'edge-anomaly-models';
const POINTER = 'models-store/active.json';
/** Releases kept besides the active one (for rollback after a restart). */
const KEPT = 2;

const key = (path) => new URL(path, self.registration.scope).href;

async function cache() {
  return caches.open(CACHE);
}

/** The stored pointer: `{ active: version | null, versions: [older..newer] }`. */
export async function readPointer() {
  // caches.match with a cache name does not create the cache, as caches.open would.
  const hit = await caches.match(key(POINTER), { cacheName: CACHE });
  if (!hit) return { active: null, versions: [] };
  try {
    const p = await hit.json();
    return { active: typeof p.active === 'string' ? p.active : null, versions: Array.isArray(p.versions) ? p.versions : [] };
  } catch {
    return { active: null, versions: [] };
  }
}

async function writePointer(pointer) {
  const body = JSON.stringify(pointer);
  await (await cache()).put(key(POINTER), new Response(body, { headers: { 'content-type': 'application/json' } }));
}

/** Stores a verified package's files as `version` and makes it the active release. */
export async function saveActive(version, pkg) {
  const c = await cache();
  const entries = [...Object.entries(pkg.files), [SIGNATURE_FILE, pkg.bundle]];
  await Promise.all(entries.map(([name, bytes]) => c.put(key(`models-store/${version}/${name}`), new Response(bytes))));
  const pointer = await readPointer();
  const versions = [...pointer.versions.filter((v) => v !== version), version];
  const dropped = versions.splice(0, Math.max(0, versions.length - (KEPT + 1)));
  await writePointer({ active: version, versions });
  await Promise.all(dropped.map((v) => discard(v, { keepPointer: true })));
}

/** Points the active release at `version` (a stored one, or null for the bundled model). */
export async function setActive(version) {
  const pointer = await readPointer();
  await writePointer({ ...pointer, active: version });
}

/** The stored package of `version`, or null when a file is missing. */
export async function loadStored(version) {
  const read = async (name) => {
    const hit = await caches.match(key(`models-store/${version}/${name}`), { cacheName: CACHE });
    return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
  };
  const [bundle, metadata, golden] = await Promise.all([read(SIGNATURE_FILE), read('metadata.json'), read('golden.json')]);
  if (!bundle || !metadata || !golden) return null;
  let model;
  try {
    const meta = JSON.parse(new TextDecoder().decode(metadata));
    model = ((meta.models && (meta.models.int8 || meta.models.f32)) || {}).file;
  } catch {
    return { bundle, files: { 'metadata.json': metadata, 'golden.json': golden } };
  }
  const bytes = typeof model === 'string' ? await read(model) : null;
  const files = { 'metadata.json': metadata, 'golden.json': golden };
  if (bytes) files[model] = bytes;
  return { bundle, files };
}

/** Deletes a stored release (a corrupt one, or one past the kept count). */
export async function discard(version, { keepPointer = false } = {}) {
  const c = await cache();
  const prefix = key(`models-store/${version}/`);
  const keys = await c.keys();
  await Promise.all(keys.filter((r) => r.url.startsWith(prefix)).map((r) => c.delete(r)));
  if (!keepPointer) {
    const pointer = await readPointer();
    await writePointer({
      active: pointer.active === version ? null : pointer.active,
      versions: pointer.versions.filter((v) => v !== version),
    });
  }
}
