// The dashboard: registers the worker, feeds it readings (replay, typed), and renders what it
// reports. All scoring and storage happen in the service worker; this file only draws.
import { registerWorker, request } from './client.js';
import { MSG } from './protocol.js';
import { drawChannels, drawScores } from './chart.js';

const $ = (id) => document.getElementById(id);
const HISTORY = 300;
let model = null;
let meta = { features: [], normalization: {} };
let storage = 'best-effort';
const points = []; // { score, t }
const latencies = []; // µs per reading, recent
const stamps = []; // arrival times, for readings/s
let latest = null;

function quantile(xs, q) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function score(row, label) {
  const r = await request(MSG.SCORE, { rows: Float32Array.from(row), features: row.length });
  const s = r.scores[0], now = performance.now();
  points.push({ score: s, t: now }); if (points.length > HISTORY) points.shift();
  latencies.push(r.latencyUs); if (latencies.length > 500) latencies.shift();
  stamps.push(now); while (stamps.length && now - stamps[0] > 5000) stamps.shift();
  latest = row;
  if (s > model.threshold) {
    const li = document.createElement('li');
    li.textContent = `${new Date().toLocaleTimeString()} score ${s.toPrecision(3)}${label === undefined ? '' : label ? ' (labelled anomaly)' : ' (labelled normal)'}`;
    $('alerts').prepend(li);
    while ($('alerts').children.length > 50) $('alerts').lastChild.remove();
  }
  return r;
}

function render() {
  drawScores($('scores'), points, model ? model.threshold : NaN);
  drawChannels($('channels'), meta.features, latest, meta.normalization.mean, meta.normalization.std);
  $('t-latency').textContent = latencies.length
    ? `${quantile(latencies, 0.5).toFixed(0)} / ${quantile(latencies, 0.99).toFixed(0)} µs` : '–';
  const span = stamps.length > 1 ? (stamps.at(-1) - stamps[0]) / 1000 : 0;
  $('t-rate').textContent = span > 0 ? ((stamps.length - 1) / span).toFixed(1) : '0';
}

function renderOutbox(s) {
  const o = s.outbox, f = s.last_flush;
  $('t-online').textContent = navigator.onLine ? 'online' : 'offline';
  $('t-queued').textContent = String(o.queued + o.inflight_records);
  $('t-dead').textContent = String(o.dead_letter_records);
  $('t-sent').textContent = String(o.sent_records_total);
  $('t-last').textContent = f ? f.status : '–';
  $('t-model').textContent = s.model_loaded ? s.model_version : 'none';
  $('sync').textContent = `device ${s.device_id} · storage ${storage} · evicted ${o.evicted_total}` +
    (o.rejected_records_total ? ` · rejected by collector ${o.rejected_records_total}` : '') +
    (f && f.last_error ? ` · last error: ${f.last_error}` : '');
}

async function refreshOutbox() {
  try { renderOutbox((await request(MSG.STATUS)).status); } catch { /* worker restarting */ }
}

async function main() {
  await registerWorker();
  // Ask the browser not to evict the outbox under storage pressure (Window-only API). Not
  // awaited: Firefox may hold the promise open behind a permission prompt.
  if (navigator.storage && navigator.storage.persist) {
    navigator.storage.persist().then((p) => { storage = p ? 'persistent' : 'best-effort'; }, () => {});
  }
  meta = await (await fetch('models/metadata.json')).json();
  const { status } = await request(MSG.STATUS);
  model = { features: status.features, version: status.model_version, threshold: status.threshold };
  $('nfeat').textContent = `${model.features}: ${status.feature_names.join(', ')}`;
  $('status').textContent = status.model_loaded
    ? `Scoring on this device with model ${model.version} (threshold ${model.threshold.toPrecision(3)}).`
    : 'No model loaded: readings are queued raw for cloud scoring.';
  renderOutbox(status);
  render();
  document.body.dataset.ready = 'true';
  setInterval(refreshOutbox, 1000);
  setInterval(render, 250);
}

$('one').addEventListener('submit', async (e) => {
  e.preventDefault();
  const values = $('reading').value.split(',').map((s) => Number(s.trim()));
  try {
    const r = await score(values);
    const s = r.scores[0];
    $('one-result').textContent = `score ${s.toPrecision(4)} — ${s > model.threshold ? 'ANOMALY' : 'normal'} (${r.latencyUs.toFixed(0)} µs)`;
  } catch (err) {
    $('one-result').textContent = `error ${err.code}: ${err.message}`;
  }
  $('one-result').dataset.done = 'true';
});

let timer = null, scored = 0, flagged = 0;
$('replay').addEventListener('click', async () => {
  if (timer) { clearInterval(timer); timer = null; $('replay').textContent = 'Start replay'; return; }
  const text = await (await fetch('models/sample.csv')).text();
  const rows = text.trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
  $('replay').textContent = 'Stop replay';
  timer = setInterval(async () => {
    const row = rows[scored % rows.length];
    scored++;
    try {
      const r = await score(row.slice(0, -1), row.at(-1));
      if (r.scores[0] > model.threshold) flagged++;
    } catch (err) { $('replay-stats').textContent = `error ${err.code}`; return; }
    $('replay-stats').textContent = `${scored} scored, ${flagged} flagged`;
  }, 1000 / Math.max(1, Number($('rate').value)));
});

// A new worker took over (it activates at once and keeps answering this page): offer a reload.
navigator.serviceWorker.addEventListener('controllerchange', () => {
  if (document.body.dataset.ready === 'true') $('update').hidden = false;
});
$('reload').addEventListener('click', () => location.reload());

let installPrompt = null;
window.addEventListener('beforeinstallprompt', (e) => { e.preventDefault(); installPrompt = e; $('install').hidden = false; });
$('install').addEventListener('click', async () => {
  if (!installPrompt) return;
  installPrompt.prompt();
  await installPrompt.userChoice;
  installPrompt = null; $('install').hidden = true;
});

window.addEventListener('online', () => request(MSG.ONLINE).then(refreshOutbox, () => {}));
window.addEventListener('offline', refreshOutbox);
$('flush').addEventListener('click', () => request(MSG.FLUSH).then(refreshOutbox, refreshOutbox));
$('redrive').addEventListener('click', () => request(MSG.REDRIVE).then(refreshOutbox, refreshOutbox));

main().catch((e) => { $('status').textContent = `Failed to start: ${e.code || ''} ${e.message}`; });
