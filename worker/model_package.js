// Fetches a signed model package: its signature bundle (model.sig), metadata.json, golden.json
// and the model file metadata.json names. The bytes are only carried here; the wasm app
// verifies all of it (signature, digests, contract, golden scores) before scoring with it.
// `fetchFn(path)` resolves to a Response for a path relative to the package's base.
export const SIGNATURE_FILE = 'model.sig';

export async function fetchPackage(fetchFn, { maxBytes = 32 * 1024 * 1024 } = {}) {
  let total = 0;
  const bytes = async (name) => {
    const r = await fetchFn(name);
    if (!r.ok) throw Object.assign(new Error(`${name}: HTTP ${r.status}`), { code: 'MODEL_FETCH' });
    const b = new Uint8Array(await r.arrayBuffer());
    total += b.length;
    if (total > maxBytes) {
      throw Object.assign(new Error(`model package is over ${maxBytes} bytes`), { code: 'MODEL_TOO_LARGE' });
    }
    return b;
  };
  const [bundle, metadata, golden] = await Promise.all([bytes(SIGNATURE_FILE), bytes('metadata.json'), bytes('golden.json')]);
  // Which model file runs is read here only to know what to download; the app re-reads the
  // signed metadata and refuses a file the signature does not cover.
  const meta = JSON.parse(new TextDecoder().decode(metadata));
  const model = ((meta.models && (meta.models.int8 || meta.models.f32)) || {}).file;
  if (typeof model !== 'string' || model.includes('/')) {
    throw Object.assign(new Error('metadata.json names no model file'), { code: 'MODEL_METADATA' });
  }
  const files = { 'metadata.json': metadata, 'golden.json': golden, [model]: await bytes(model) };
  return { bundle, files, metadata: meta };
}
