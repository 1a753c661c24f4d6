// The page: registers the worker, scores typed readings and replays the held-out sample.
import { registerWorker, request } from './client.js';
import { MSG } from './protocol.js';

const $ = (id) => document.getElementById(id);
let model = null;
let storage = 'best-effort';

async function main() {
  await registerWorker();
  // Ask the browser not to evict the outbox under storage pressure (Window-only API).
  if (navigator.storage && navigator.storage.persist) {
    storage = (await navigator.storage.persist().catch(() => false)) ? 'persistent' : 'best-effort';
  }
  const { status } = await request(MSG.STATUS);
  model = { features: status.features, version: status.model_version, threshold: status.threshold };
  $('nfeat').textContent = `${model.features}: ${status.feature_names.join(', ')}`;
  $('status').textContent = status.model_loaded
    ? `Engine ready: model ${model.version}, threshold ${model.threshold.toPrecision(3)}, device ${status.device_id}`
    : 'No model loaded: readings are queued raw for cloud scoring';
  document.body.dataset.ready = 'true';
  renderOutbox(status);
  setInterval(refreshOutbox, 1000);
}

async function refreshOutbox() {
  try { renderOutbox((await request(MSG.STATUS)).status); } catch { /* worker restarting */ }
}

function renderOutbox(s) {
  const o = s.outbox, f = s.last_flush;
  $('sync').textContent = `${navigator.onLine ? 'online' : 'offline'} · storage ${storage} · queued ${o.queued + o.inflight_records}` +
    ` · dead letters ${o.dead_letter_records} · sent ${o.sent_records_total} · evicted ${o.evicted_total}` +
    (f ? ` · last flush ${f.status}${f.last_error ? ` (${f.last_error})` : ''}` : '');
}

// A new worker took over (it activates at once and keeps answering this page): offer a reload.
navigator.serviceWorker.addEventListener('controllerchange', () => {
  if (document.body.dataset.ready === 'true') $('update').hidden = false;
});
$('reload').addEventListener('click', () => location.reload());

window.addEventListener('online', () => request(MSG.ONLINE).then(refreshOutbox, () => {}));
$('flush').addEventListener('click', () => request(MSG.FLUSH).then(refreshOutbox, refreshOutbox));

$('one').addEventListener('submit', async (e) => {
  e.preventDefault();
  const values = $('reading').value.split(',').map((s) => Number(s.trim()));
  try {
    const r = await request(MSG.SCORE, { rows: Float32Array.from(values) });
    const s = r.scores[0];
    $('one-result').textContent = `score ${s.toPrecision(4)} — ${s > model.threshold ? 'ANOMALY' : 'normal'} (${r.latencyUs.toFixed(0)} µs)`;
  } catch (err) {
    $('one-result').textContent = `error ${err.code}: ${err.message}`;
  }
  $('one-result').dataset.done = 'true';
});

let timer = null;
$('replay').addEventListener('click', async () => {
  if (timer) { clearInterval(timer); timer = null; $('replay').textContent = 'Start replay'; return; }
  const text = await (await fetch('models/sample.csv')).text();
  const lines = text.trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
  let i = 0, flagged = 0;
  const tbody = $('replay-rows');
  $('replay').textContent = 'Stop replay';
  timer = setInterval(async () => {
    if (i >= lines.length) { clearInterval(timer); timer = null; return; }
    const n = i++;
    const row = lines[n];
    const r = await request(MSG.SCORE, { rows: Float32Array.from(row.slice(0, -1)) });
    const s = r.scores[0];
    if (s > model.threshold) flagged++;
    const tr = document.createElement('tr');
    for (const v of [n, s.toPrecision(4), s > model.threshold ? 'ANOMALY' : '', row.at(-1) ? 'anomaly' : 'normal']) {
      const td = document.createElement('td'); td.textContent = v; tr.appendChild(td);
    }
    tbody.prepend(tr);
    while (tbody.rows.length > 20) tbody.deleteRow(-1);
    $('replay-stats').textContent = `${n + 1} scored, ${flagged} flagged, last latency ${r.latencyUs.toFixed(0)} µs`;
  }, 1000 / Math.max(1, Number($('rate').value)));
});

main().catch((e) => { $('status').textContent = `Failed to start: ${e.code || ''} ${e.message}`; });
