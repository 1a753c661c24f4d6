// The page's side of the worker protocol: request/response over postMessage with ids.
import { PROTOCOL_VERSION } from './protocol.js';

let nextId = 1;
const pending = new Map();

navigator.serviceWorker.addEventListener('message', (event) => {
  const msg = event.data;
  const p = msg && pending.get(msg.id);
  if (!p) return;
  pending.delete(msg.id);
  if (msg.v !== PROTOCOL_VERSION) {
    p.reject(Object.assign(new Error(`worker speaks v${msg.v}, page v${PROTOCOL_VERSION}`), { code: 'VERSION_MISMATCH' }));
  } else if (msg.ok) p.resolve(msg);
  else p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
});

export async function registerWorker() {
  await navigator.serviceWorker.register('sw.js', { type: 'module', scope: './' });
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) =>
      navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  }
}

export function request(type, body = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    navigator.serviceWorker.controller.postMessage({ v: PROTOCOL_VERSION, id, type, ...body });
  });
}
