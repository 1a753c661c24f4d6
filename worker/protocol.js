// Page <-> service worker message protocol, shared by both sides (one source of truth).
// Every message is { v, id, type, ... }; replies are { v, id, ok: true, ... } or
// { v, id, ok: false, error: { code, message } }. Errors carry codes, not strings to parse.
export const PROTOCOL_VERSION = 1;

export const MSG = Object.freeze({
  SCORE: 'score', // { rows: Float32Array (row-major), features } -> { scores: Float32Array, latencyUs }
  STATUS: 'status', // {} -> { status: { device_id, model_*, outbox: {...}, dead_letters, last_flush } }
  FLUSH: 'flush', // {} -> { outcome }
  ONLINE: 'online', // the page saw `online`: cut backoff short and flush -> { outcome }
  CONFIGURE: 'configure', // { endpoint, token? } -> {}
  REDRIVE: 'redrive', // {} -> { records } moved from dead letters back to the queue
});

export const ERR = Object.freeze({
  BAD_MESSAGE: 'BAD_MESSAGE',
  VERSION_MISMATCH: 'VERSION_MISMATCH',
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  INIT_FAILED: 'INIT_FAILED',
});

export function reply(req, body) {
  return { v: PROTOCOL_VERSION, id: req.id, ok: true, ...body };
}

export function fail(req, code, message) {
  return { v: PROTOCOL_VERSION, id: req && req.id, ok: false, error: { code, message } };
}

/// Converts anything thrown (wasm EdgeAnomalyError with .code, or a plain Error) to { code, message }.
export function errorOf(e, fallback) {
  return { code: (e && e.code) || fallback, message: String((e && e.message) || e) };
}
