// The dashboard: registers the worker, feeds it readings (replay, typed), and renders what it
// reports. All scoring and storage happen in the service worker; this file only draws.
import { registerWorker, request } from './client.js';
import { MSG } from './protocol.js';
import { drawChannels, drawContributions, drawDrift, drawScores } from './chart.js';
import { deviceMotion, parseCsv, parseReading, replay, synthetic } from './sources.js';

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

/**
 * The latency tile's text for `xs` (µs per reading, as the worker measured them). Where the
 * worker's clock is coarse (WebKit's service workers tick in 1 ms steps, a page that is not
 * cross-origin isolated in 100 µs steps) every figure is a whole number of steps, and a 20 µs
 * call reads 0 or 1,000: the median and p99 would show the clock, not the engine. The mean of
 * many such readings is still right (each reading starts at a random point of a step), so that
 * is what the tile shows then, with the step.
 */
function latencyText(xs) {
  if (!xs.length) return '–';
  const steps = xs.filter((x) => x > 0);
  const step = steps.length ? Math.min(...steps) : 0;
  const coarse = step >= 100 && xs.every((x) => Math.abs(x / step - Math.round(x / step)) < 1e-6);
  if (!coarse) return `${quantile(xs, 0.5).toFixed(0)} / ${quantile(xs, 0.99).toFixed(0)} µs`;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return `≈ ${mean.toFixed(0)} µs mean (worker clock: ${step.toFixed(0)} µs steps)`;
}

async function score(row, label) {
  const r = await request(MSG.SCORE, { rows: Float32Array.from(row), features: row.length });
  const s = r.scores[0],
    now = performance.now();
  latest = row;
  // A reading recorded unscored (a missing value, no model) has no score to draw.
  if (s === null) return r;
  points.push({ score: s, t: now, anomaly: r.anomalies[0] });
  if (points.length > HISTORY) points.shift();
  latencies.push(r.latencyUs);
  if (latencies.length > 500) latencies.shift();
  stamps.push(now);
  while (stamps.length && now - stamps[0] > 5000) stamps.shift();
  if (r.anomalies[0]) addAlert(s, label, r.contributions ? r.contributions[0] : null);
  return r;
}

/** What the share of a channel means, per way the worker computed it. */
const ATTRIBUTION = {
  repair: 'share of the score that repairing the channel alone removes, scaled to 100%',
  terms: "the channel's part of the reconstruction error",
};

/** `"f3 71% · f1 18%"`: an alert's top channels, or '' when the model cannot say. */
function topChannels(c, k = 3) {
  if (!c || !c.channels.length) return '';
  return c.channels
    .slice(0, k)
    .map(({ channel, share }) => `${channel} ${(100 * share).toFixed(0)}%`)
    .join(' · ');
}

/** Adds an alert to the list (newest first); the newest is selected unless the user picked one. */
function addAlert(score, label, contributions) {
  const li = document.createElement('li');
  const top = topChannels(contributions);
  li.textContent =
    `${new Date().toLocaleTimeString()} score ${score.toPrecision(3)}` +
    (top ? ` — ${top}` : '') +
    (label === undefined ? '' : label ? ' (labelled/injected anomaly)' : ' (labelled normal)');
  li.tabIndex = 0;
  li.dataset.channel = contributions && contributions.channels.length ? contributions.channels[0].channel : '';
  li.contributions = contributions;
  const pick = () => selectAlert(li, true);
  li.addEventListener('click', pick);
  li.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      pick();
    }
  });
  $('alerts').prepend(li);
  $('alerts').dataset.total = String(Number($('alerts').dataset.total || 0) + 1);
  while ($('alerts').children.length > 50) $('alerts').lastChild.remove();
  const chosen = $('alerts').querySelector('[aria-current="true"]');
  if (!chosen || !chosen.dataset.pinned) selectAlert(li, false);
}

/** Shows `li`'s channels in the bar chart; `pinned` keeps it selected as new alerts arrive. */
function selectAlert(li, pinned) {
  for (const other of $('alerts').children) {
    other.removeAttribute('aria-current');
    delete other.dataset.pinned;
  }
  li.setAttribute('aria-current', 'true');
  if (pinned) li.dataset.pinned = 'true';
  const c = li.contributions;
  $('why').dataset.channel = li.dataset.channel;
  $('why-info').textContent =
    c && c.channels.length
      ? `${li.textContent.split(' — ')[0]}: ${ATTRIBUTION[c.method] || c.method}`
      : 'this model cannot break its score down by channel';
  drawContributions($('why'), c ? c.channels : null);
}

/** "REASON n, REASON n" for a { reason: count } map, or "0". */
function reasons(counts) {
  const parts = Object.entries(counts || {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`);
  return parts.length ? parts.join(', ') : '0';
}

function render() {
  drawScores($('scores'), points, model ? model.threshold : NaN);
  drawChannels($('channels'), meta.features, latest, meta.normalization.mean, meta.normalization.std);
  $('t-latency').textContent = latencyText(latencies);
  const span = stamps.length > 1 ? (stamps.at(-1) - stamps[0]) / 1000 : 0;
  $('t-rate').textContent = span > 0 ? ((stamps.length - 1) / span).toFixed(1) : '0';
}

function renderOutbox(s) {
  const o = s.outbox,
    f = s.last_flush;
  if (document.activeElement !== $('send-readings')) $('send-readings').checked = s.send_readings;
  $('t-online').textContent = navigator.onLine ? 'online' : 'offline';
  $('t-queued').textContent = String(o.queued + o.inflight_records);
  $('t-dead').textContent = String(o.dead_letter_records);
  $('t-sent').textContent = String(o.sent_records_total);
  $('t-last').textContent = f ? f.status : '–';
  $('t-dropped').textContent = reasons(s.dropped);
  // The collector refused our credentials: the queue is held (not dead-lettered) until a token
  // is given.
  const auth = Boolean(f && f.status === 'AuthNeeded');
  $('auth').hidden = !auth;
  if (auth) $('t-last').textContent = 'authentication needed';
  const build = s.engine_build === 'full' ? ', full engine' : '';
  $('t-model').textContent = s.model_loaded ? `${s.model_version} (${s.engine_backend}${build})` : 'none';
  renderModel(s);
  renderDrift(s.drift);
  const waiting = o.queued + o.inflight_records + o.dead_letter_records;
  $('storage-warning').hidden = storage === 'persistent' || standalone() || waiting === 0;
  $('sync').textContent =
    `device ${s.device_id} · storage ${storage} · evicted ${o.evicted_total}` +
    (o.rejected_records_total ? ` · rejected by collector ${o.rejected_records_total}` : '') +
    (f && f.last_error ? ` · last error: ${f.last_error}` : '');
}

/** How the active model's scores compare with its training distribution: PSI (0 = the same;
 * above 0.25 conventionally a significant shift), the anomaly rate against the expected one,
 * and the per-bin plot. */
function renderDrift(d) {
  if (!d || !d.count) {
    $('drift-info').textContent = 'no scores from the active model yet';
  } else {
    const pct = (v) => `${(100 * v).toFixed(2)}%`;
    const level = !d.bounds.length
      ? 'the model states no training distribution'
      : d.psi > 0.25
        ? 'significant shift'
        : d.psi > 0.1
          ? 'moderate shift'
          : 'stable';
    $('drift-info').textContent =
      `${d.model_version}: ${d.count} scores · PSI ${d.psi.toFixed(3)} (${level})` +
      ` · anomaly rate ${pct(d.anomaly_rate)} (expected ${pct(d.expected_anomaly_rate)})` +
      (d.mean !== null ? ` · mean score ${d.mean.toPrecision(3)}` : '');
  }
  $('drift').dataset.psi = d ? String(d.psi) : '';
  drawDrift($('drift'), d);
}

/** The line under the title: which model scores. */
function headline(s) {
  $('status').textContent = s.model_loaded
    ? `Scoring on this device with model ${s.model_version} (threshold ${s.threshold.toPrecision(3)}).`
    : 'No model loaded: readings are queued raw for cloud scoring.';
}

/** The model section: what is active (signed, its subject digest), the update channel's state
 * with download progress, and every activation, refusal and rollback with its reason. */
function renderModel(s) {
  if (model && (model.version !== s.model_version || model.threshold !== s.threshold)) {
    Object.assign(model, { version: s.model_version, threshold: s.threshold });
    headline(s);
  }
  const u = s.update || {};
  const progress =
    u.state === 'downloading' && u.total ? ` ${Math.round((100 * u.received) / u.total)}% of ${u.total} bytes` : '';
  const active = s.model
    ? `active ${s.model.version}, signed (subject ${s.model.subject_sha256.slice(0, 12)}…)`
    : 'no verified model: readings are recorded unscored';
  $('model-info').textContent =
    `${active}` +
    (s.previous_model ? ` · previous ${s.previous_model.version}` : '') +
    ` · update: ${u.state || 'idle'}${u.version ? ` ${u.version}` : ''}${progress}` +
    (u.error ? ` · ${u.error}` : '');
  $('model-info').dataset.state = u.state || 'idle';
  $('rollback').disabled = !s.previous_model;
  const events = s.model_events || [];
  const list = $('model-events');
  if (list.dataset.count !== String(events.length) || list.dataset.last !== String(events.at(-1)?.at_ms)) {
    list.replaceChildren(
      ...events
        .slice()
        .reverse()
        .map((e) => {
          const li = document.createElement('li');
          li.dataset.kind = e.kind;
          li.dataset.code = e.code;
          li.textContent = `${new Date(e.at_ms).toLocaleTimeString()} ${e.kind} ${e.version || ''} — ${e.code}: ${e.reason}`;
          return li;
        }),
    );
    list.dataset.count = String(events.length);
    list.dataset.last = String(events.at(-1)?.at_ms);
  }
}

async function refreshOutbox() {
  try {
    renderOutbox((await request(MSG.STATUS)).status);
  } catch {
    /* worker restarting */
  }
}

async function main() {
  await registerWorker();
  // Ask the browser not to evict the outbox under storage pressure (Window-only API). Not
  // awaited: Firefox may hold the promise open behind a permission prompt.
  if (navigator.storage && navigator.storage.persist) {
    navigator.storage.persist().then(
      (p) => {
        storage = p ? 'persistent' : 'best-effort';
      },
      () => {},
    );
  }
  meta = await (await fetch('models/metadata.json')).json();
  const { status } = await request(MSG.STATUS);
  model = { features: status.features, version: status.model_version, threshold: status.threshold };
  $('nfeat').textContent = `${model.features}: ${status.feature_names.join(', ')}`;
  headline(status);
  renderOutbox(status);
  render();
  document.body.dataset.ready = 'true';
  setInterval(refreshOutbox, 1000);
  setInterval(render, 250);
}

$('one').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const values = parseReading($('reading').value, model.features);
    const r = await score(values);
    const s = r.scores[0];
    $('one-result').textContent =
      s === null
        ? `recorded unscored (${r.reasons[0]})`
        : `score ${s.toPrecision(4)} — ${r.anomalies[0] ? 'ANOMALY' : 'normal'} (${r.latencyUs.toFixed(0)} µs)`;
  } catch (err) {
    $('one-result').textContent = err.code ? `error ${err.code}: ${err.message}` : `not sent: ${err.message}`;
  }
  $('one-result').dataset.done = 'true';
});

$('auth').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const { status } = await request(MSG.STATUS);
    await request(MSG.CONFIGURE, { endpoint: status.endpoint, token: $('token').value });
    $('token').value = '';
    await request(MSG.FLUSH);
  } catch (err) {
    $('sync').textContent = `cannot set the token: ${err.code || ''} ${err.message}`;
  }
  refreshOutbox();
});

$('send-readings').addEventListener('change', async (e) => {
  try {
    await request(MSG.SEND_READINGS, { on: e.target.checked });
  } catch (err) {
    $('sync').textContent = `cannot change what is sent: ${err.code || ''} ${err.message}`;
  }
  refreshOutbox();
});

let timer = null,
  source = null,
  scored = 0,
  flagged = 0;
let sampleRows = null;

async function loadSample() {
  if (!sampleRows) sampleRows = parseCsv(await (await fetch('models/sample.csv')).text(), meta.features);
  return sampleRows;
}

async function makeSource(kind) {
  switch (kind) {
    case 'replay':
      return replay(await loadSample());
    case 'synthetic':
      return synthetic(
        (await loadSample()).filter((r) => r.label === 0),
        meta.normalization.std,
      );
    case 'csv': {
      const file = $('csv').files[0];
      if (!file) throw new Error('choose a CSV file first');
      return replay(parseCsv(await file.text(), meta.features));
    }
    case 'motion':
      if (!('DeviceMotionEvent' in window)) throw new Error('this browser exposes no motion sensor');
      if (model.features !== 3)
        throw new Error(
          `the loaded model takes ${model.features} features; motion gives 3 (train one on your accelerometer CSV)`,
        );
      return deviceMotion();
    default:
      throw new Error(`unknown source ${kind}`);
  }
}

function stop() {
  clearInterval(timer);
  timer = null;
  if (source && source.stop) source.stop();
  source = null;
  $('replay').textContent = 'Start';
}

$('source').addEventListener('change', () => {
  stop();
  $('csv-controls').hidden = $('source').value !== 'csv';
  $('inject').hidden = $('source').value !== 'synthetic';
});
$('inject').addEventListener('click', () => {
  if (source && source.inject) $('replay-stats').textContent = `anomaly injected on ${meta.features[source.inject()]}`;
});

// A click while a source is still being prepared (a CSV being read) is ignored, so two sources
// never run at once and the button always says what the next click does.
let starting = false;
$('replay').addEventListener('click', async () => {
  if (timer) {
    stop();
    return;
  }
  if (starting) return;
  starting = true;
  $('replay').textContent = 'Starting…';
  try {
    source = await makeSource($('source').value);
  } catch (err) {
    $('replay-stats').textContent = `cannot start: ${err.message}`;
    $('replay').textContent = 'Start';
    return;
  } finally {
    starting = false;
  }
  $('replay').textContent = 'Stop';
  timer = setInterval(
    async () => {
      const reading = source && source.next();
      if (!reading) return;
      scored++;
      try {
        const r = await score(reading.row, reading.label);
        if (r.anomalies[0]) flagged++;
      } catch (err) {
        $('replay-stats').textContent = `error ${err.code}: ${err.message}`;
        return;
      }
      $('replay-stats').textContent = `${scored} scored, ${flagged} flagged`;
    },
    1000 / Math.max(1, Number($('rate').value)),
  );
});

// A new worker took over (it activates at once and keeps answering this page): offer a reload.
navigator.serviceWorker.addEventListener('controllerchange', () => {
  if (document.body.dataset.ready === 'true') $('update').hidden = false;
});
$('reload').addEventListener('click', () => location.reload());

/** Whether the app runs installed (Home Screen / Dock / an app window), not in a browser tab. */
function standalone() {
  return matchMedia('(display-mode: standalone)').matches || navigator.standalone === true;
}

let installPrompt = null;
window.addEventListener('beforeinstallprompt', (e) => {
  e.preventDefault();
  installPrompt = e;
  $('install').hidden = false;
  $('install-hint').hidden = true;
});
// Safari (and Firefox) never offer an install prompt: say where their install command is.
setTimeout(() => {
  $('install-hint').hidden = standalone() || installPrompt !== null;
}, 3000);
$('install').addEventListener('click', async () => {
  if (!installPrompt) return;
  installPrompt.prompt();
  await installPrompt.userChoice;
  installPrompt = null;
  $('install').hidden = true;
});

window.addEventListener('online', () => request(MSG.ONLINE).then(refreshOutbox, () => {}));
window.addEventListener('offline', refreshOutbox);
$('flush').addEventListener('click', () => request(MSG.FLUSH).then(refreshOutbox, refreshOutbox));
$('redrive').addEventListener('click', () => request(MSG.REDRIVE).then(refreshOutbox, refreshOutbox));
$('check-update').addEventListener('click', () => request(MSG.CHECK_UPDATE).then(refreshOutbox, refreshOutbox));
$('rollback').addEventListener('click', () => request(MSG.ROLLBACK).then(refreshOutbox, refreshOutbox));

main().catch((e) => {
  $('status').textContent = `Failed to start: ${e.code || ''} ${e.message}`;
});
