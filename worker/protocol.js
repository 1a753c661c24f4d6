// Page <-> service worker message protocol, shared by both sides (one source of truth).
// Every message is { v, id, type, ... }; replies are { v, id, ok: true, ... } or
// { v, id, ok: false, error: { code, message } }. Errors carry codes, not strings to parse.
// The worker also posts { v, type: 'ready' } to its clients when it has started.
export const PROTOCOL_VERSION = 1;

export const MSG = Object.freeze({
  // { rows: Float32Array | number[] (row-major), features?, ids?: string[] (one per reading) }
  //   -> { scores: (number|null)[], reasons: (string|null)[], anomalies: boolean[], latencyUs }
  SCORE: 'score',
  STATUS: 'status', // {} -> { status: { device_id, model_*, outbox: {...}, dropped, dead_letters, last_flush } }
  FLUSH: 'flush', // {} -> { outcome }
  ONLINE: 'online', // the page saw `online`: cut backoff short and flush -> { outcome }
  CONFIGURE: 'configure', // { endpoint, token? } -> {}; stored, so a restarted worker keeps it
  SEND_READINGS: 'send-readings', // { on: boolean } -> {}: scored records carry their reading (stored)
  REDRIVE: 'redrive', // {} -> { records } moved from dead letters back to the queue
  CHECK_UPDATE: 'check-update', // {} -> { update: { state, version?, error? } }: look for a newer signed model now
  ROLLBACK: 'rollback', // {} -> { rolledBack: boolean, version? }: back to the previous model
  READY: 'ready', // worker -> pages, unsolicited: started (pages resend unanswered readings)
});

export const ERR = Object.freeze({
  BAD_MESSAGE: 'BAD_MESSAGE', // not an object with a string type and a number or string id
  VERSION_MISMATCH: 'VERSION_MISMATCH',
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  INIT_FAILED: 'INIT_FAILED',
  BAD_ROWS: 'BAD_ROWS', // rows missing, not numbers, empty or too many
  BAD_FEATURES: 'BAD_FEATURES', // features not a positive integer, or rows not a multiple of it
  OUT_OF_RANGE: 'OUT_OF_RANGE', // a finite value beyond float32's range (it would become Infinity)
  BAD_IDS: 'BAD_IDS', // ids not one short string per reading
  BAD_CONFIG: 'BAD_CONFIG', // endpoint not an http(s) URL, token not a string, on not a boolean
});

/** Largest finite float32; a finite number beyond it would silently become ±Infinity. */
export const F32_MAX = 3.4028234663852886e38;
/** Most values one score request may carry (the engine's batch cap times a generous width). */
export const MAX_VALUES = 1 << 22;
/** Most values per reading. */
export const MAX_FEATURES = 4096;
/** Longest reading id. */
export const MAX_ID_LENGTH = 128;

/** Whether `x` is a finite number that float32 cannot hold. NaN and ±Infinity are not: they
 * are recorded as such (unscored), not rejected. */
export function overflowsF32(x) {
  return Number.isFinite(x) && Math.abs(x) > F32_MAX;
}

export function reply(req, body) {
  return { v: PROTOCOL_VERSION, id: req.id, ok: true, ...body };
}

export function fail(req, code, message) {
  const id = req && typeof req === 'object' && (typeof req.id === 'number' || typeof req.id === 'string') ? req.id : undefined;
  return { v: PROTOCOL_VERSION, id, ok: false, error: { code, message } };
}

/// Converts anything thrown (wasm EdgeAnomalyError with .code, or a plain Error) to { code, message }.
export function errorOf(e, fallback) {
  let message;
  try {
    message = String((e && e.message) || e);
  } catch {
    message = fallback;
  }
  return { code: (e && typeof e.code === 'string' && e.code) || fallback, message };
}

const bad = (req, code, message) => ({ ok: false, reply: fail(req, code, message) });

/** Checks a score request: `{ ok: true, rows: Float32Array, features, ids }` or
 * `{ ok: false, reply }` (a typed failure, also carrying `readings` when the request had a
 * countable number of them). `defaultFeatures` applies when `features` is absent. */
export function parseScoreRequest(req, defaultFeatures) {
  const { rows } = req;
  const isF32 = rows instanceof Float32Array;
  if (!isF32 && !Array.isArray(rows)) return bad(req, ERR.BAD_ROWS, 'rows must be a Float32Array or an array of numbers');
  if (rows.length === 0 || rows.length > MAX_VALUES)
    return bad(req, ERR.BAD_ROWS, `rows must hold 1..${MAX_VALUES} values, got ${rows.length}`);
  const features = req.features === undefined || req.features === null || req.features === 0 ? defaultFeatures : req.features;
  if (!Number.isInteger(features) || features < 1 || features > MAX_FEATURES) {
    return bad(req, ERR.BAD_FEATURES, `features must be an integer in 1..${MAX_FEATURES}`);
  }
  if (rows.length % features !== 0)
    return bad(req, ERR.BAD_FEATURES, `${rows.length} values do not split into readings of ${features}`);
  const readings = rows.length / features;
  if (!isF32) {
    for (let i = 0; i < rows.length; i++) {
      const x = rows[i];
      if (typeof x !== 'number') return bad(req, ERR.BAD_ROWS, `value ${i} is not a number`);
      if (overflowsF32(x)) {
        return { ...bad(req, ERR.OUT_OF_RANGE, `value ${i} (${x}) is beyond float32's range (±${F32_MAX})`), readings };
      }
    }
  }
  let ids = null;
  if (req.ids !== undefined && req.ids !== null) {
    if (
      !Array.isArray(req.ids) ||
      req.ids.length !== readings ||
      !req.ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH)
    ) {
      return bad(req, ERR.BAD_IDS, `ids must be ${readings} non-empty strings of at most ${MAX_ID_LENGTH} characters`);
    }
    ids = req.ids;
  }
  return { ok: true, rows: isF32 ? rows : Float32Array.from(rows), features, ids };
}

/** Checks a configure request: `{ ok: true, endpoint, token }` or `{ ok: false, reply }`. */
export function parseConfigureRequest(req) {
  const { endpoint, token } = req;
  if (typeof endpoint !== 'string' || !/^https?:\/\/[^\s]+$/.test(endpoint)) {
    return bad(req, ERR.BAD_CONFIG, 'endpoint must be an http(s) URL');
  }
  if (token !== undefined && token !== null && typeof token !== 'string')
    return bad(req, ERR.BAD_CONFIG, 'token must be a string');
  return { ok: true, endpoint, token: token || null };
}

/** The envelope every request must have: `{ ok: true }` or `{ ok: false, reply }`. Never throws,
 * whatever `req` is. */
export function checkEnvelope(req) {
  if (
    !req ||
    typeof req !== 'object' ||
    typeof req.type !== 'string' ||
    !(typeof req.id === 'number' || typeof req.id === 'string')
  ) {
    return bad(req, ERR.BAD_MESSAGE, 'message must be an object with a string type and a number or string id');
  }
  if (req.v !== PROTOCOL_VERSION)
    return bad(
      req,
      ERR.VERSION_MISMATCH,
      `worker speaks v${PROTOCOL_VERSION}, got v${typeof req.v === 'number' ? req.v : typeof req.v}`,
    );
  if (!Object.values(MSG).includes(req.type) || req.type === MSG.READY)
    return bad(req, ERR.UNKNOWN_TYPE, `unknown message type ${req.type}`);
  return { ok: true };
}

/** Checks any incoming message: `{ ok: true, type, ... }` with the parsed fields of its type, or
 * `{ ok: false, reply }` with a typed failure to send back. Never throws, whatever `req` is
 * (the property test in tests/e2e/protocol.test.mjs holds it to that). */
export function parseRequest(req, { defaultFeatures } = {}) {
  try {
    const envelope = checkEnvelope(req);
    if (!envelope.ok) return envelope;
    switch (req.type) {
      case MSG.SCORE: {
        const parsed = parseScoreRequest(req, defaultFeatures);
        return parsed.ok ? { ...parsed, type: req.type } : parsed;
      }
      case MSG.CONFIGURE: {
        const parsed = parseConfigureRequest(req);
        return parsed.ok ? { ...parsed, type: req.type } : parsed;
      }
      case MSG.SEND_READINGS:
        if (typeof req.on !== 'boolean') return bad(req, ERR.BAD_CONFIG, 'on must be a boolean');
        return { ok: true, type: req.type, on: req.on };
      default:
        return { ok: true, type: req.type };
    }
  } catch (e) {
    return bad(req, ERR.BAD_MESSAGE, `unreadable message: ${errorOf(e, ERR.BAD_MESSAGE).message}`);
  }
}
