// The page's side of the worker protocol: request/response over postMessage with ids.
//
// A reading must be neither lost nor recorded twice when the worker is stopped while it handles
// it (the browser may stop an idle-looking worker at any time; an update replaces it). So each
// reading gets an id of the page's own (`${session}-${counter}`), every request stays pending
// until its reply arrives, and pending requests are sent again, unchanged, when a new worker takes
// control, when the worker says it (re)started, or when a score reply is overdue. The worker's
// outbox recognises a reading it already recorded by its id and answers normally.
import { MSG, PROTOCOL_VERSION } from './protocol.js';

/** How long a score reply may take before the request is sent again. */
export const SCORE_RESEND_MS = 4000;

const session = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');
let nextReading = 0;
let nextId = 1;
const pending = new Map(); // request id -> { msg, resolve, reject, sentAt }

/** A fresh reading id, unique to this page load. */
export function readingId() {
  return `${session}-${nextReading++}`;
}

function send(entry) {
  const worker = navigator.serviceWorker.controller;
  entry.sentAt = performance.now();
  if (worker) worker.postMessage(entry.msg);
}

/** Sends every unanswered request again (same request id, same reading ids). */
export function resendPending() {
  for (const entry of pending.values()) send(entry);
}

/** Requests still waiting for a reply. */
export function pendingCount() {
  return pending.size;
}

navigator.serviceWorker.addEventListener('message', (event) => {
  const msg = event.data;
  if (msg && msg.type === MSG.READY && msg.id === undefined) {
    resendPending();
    return;
  }
  const p = msg && pending.get(msg.id);
  if (!p) return;
  pending.delete(msg.id);
  if (msg.v !== PROTOCOL_VERSION) {
    p.reject(Object.assign(new Error(`worker speaks v${msg.v}, page v${PROTOCOL_VERSION}`), { code: 'VERSION_MISMATCH' }));
  } else if (msg.ok) p.resolve(msg);
  else p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
});
navigator.serviceWorker.addEventListener('controllerchange', resendPending);
setInterval(() => {
  const now = performance.now();
  for (const entry of pending.values()) {
    if (entry.msg.type === MSG.SCORE && now - entry.sentAt > SCORE_RESEND_MS) send(entry);
  }
}, 1000);

export async function registerWorker() {
  await navigator.serviceWorker.register('sw.js', { type: 'module', scope: './' });
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  }
}

/** Sends `type` with `body` and resolves to the reply. A score request gets one reading id per
 * reading unless it carries its own `ids`. */
export function request(type, body = {}) {
  const id = nextId++;
  const msg = { v: PROTOCOL_VERSION, id, type, ...body };
  if (type === MSG.SCORE && !msg.ids && msg.rows && msg.features > 0) {
    msg.ids = Array.from({ length: Math.floor(msg.rows.length / msg.features) }, readingId);
  }
  return new Promise((resolve, reject) => {
    const entry = { msg, resolve, reject, sentAt: 0 };
    pending.set(id, entry);
    send(entry);
  });
}
