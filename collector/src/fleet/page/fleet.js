// The fleet page: devices a page at a time from /api/fleet, and the selected device's scores
// over time from /api/devices/{id}/series, drawn with the dashboard's own chart.
import { drawScores } from './chart.js';

const PAGE_SIZE = 50;
const SERIES_POINTS = 500;
const PSI_SHIFT = 0.25;

const body = document.querySelector('#devices tbody');
const prev = document.getElementById('prev');
const next = document.getElementById('next');
const pageLabel = document.getElementById('page');
const error = document.getElementById('error');
const auth = document.getElementById('auth');

/** Cursors of the pages seen so far: `cursors[i]` is the `after` that loads page i. */
const cursors = [null];
let pageIndex = 0;
let selected = null;

function headers() {
  const token = sessionStorage.getItem('edge-token');
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function getJson(url) {
  const response = await fetch(url, { headers: headers() });
  if (response.status === 401) {
    auth.hidden = false;
    throw new Error('the collector wants its token');
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

function showError(e) {
  error.textContent = String(e.message || e);
  error.hidden = false;
}

const percent = (x) => `${(100 * x).toFixed(2)} %`;
const when = (ms) => (ms == null ? '—' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19));

/** The figures shown per device, computed from one /api/fleet entry. */
export function figures(d) {
  const scored = d.count - d.unscored + d.cloud_scored;
  const anomalies = d.anomalies + d.cloud_anomalies;
  return {
    device: d.device_id ?? '(none)',
    lastSeen: when(d.last_seen),
    readings: String(d.count),
    anomalyRate: scored > 0 ? percent(anomalies / scored) : '—',
    model: d.model_version ?? '—',
    drift: d.drift_psi == null ? '—' : d.drift_psi.toFixed(3),
    unscored: String(Math.max(0, d.unscored - d.cloud_scored - d.cloud_failed)),
    cloudScored: String(d.cloud_scored),
    deadLettered: String(d.conflicts),
    missing: String(d.unexplained_missing),
  };
}

function cell(text, key, numeric, warn) {
  const td = document.createElement('td');
  td.textContent = text;
  td.dataset.key = key;
  if (numeric) td.classList.add('num');
  if (warn) td.classList.add('warn');
  return td;
}

function render(page) {
  body.replaceChildren();
  for (const d of page.devices) {
    const f = figures(d);
    const tr = document.createElement('tr');
    tr.dataset.device = d.device_id ?? '';
    tr.tabIndex = 0;
    tr.append(
      cell(f.device, 'device'),
      cell(f.lastSeen, 'lastSeen'),
      cell(f.readings, 'readings', true),
      cell(f.anomalyRate, 'anomalyRate', true),
      cell(f.model, 'model'),
      cell(f.drift, 'drift', true, d.drift_psi != null && d.drift_psi > PSI_SHIFT),
      cell(f.unscored, 'unscored', true),
      cell(f.cloudScored, 'cloudScored', true),
      cell(f.deadLettered, 'deadLettered', true, d.conflicts > 0),
      cell(f.missing, 'missing', true, d.unexplained_missing > 0),
    );
    const open = () => select(d.device_id ?? '', tr);
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (e) => (e.key === 'Enter' ? open() : undefined));
    body.append(tr);
  }
  prev.disabled = pageIndex === 0;
  next.disabled = page.next_after == null;
  if (page.next_after != null) cursors[pageIndex + 1] = page.next_after;
  pageLabel.textContent = `page ${pageIndex + 1}`;
  document.body.dataset.loaded = 'true';
}

async function load(index) {
  const after = cursors[index];
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (after != null) query.set('after', after);
  try {
    const page = await getJson(`/api/fleet?${query}`);
    pageIndex = index;
    error.hidden = true;
    render(page);
  } catch (e) {
    showError(e);
  }
}

async function select(device, row) {
  for (const tr of body.querySelectorAll('tr')) tr.setAttribute('aria-selected', String(tr === row));
  selected = device;
  const section = document.getElementById('detail');
  section.hidden = false;
  document.getElementById('detail-title').textContent = `Scores of ${device || '(no device id)'}`;
  try {
    const query = new URLSearchParams({ limit: String(SERIES_POINTS) });
    const series = await getJson(`/api/devices/${encodeURIComponent(device)}/series?${query}`);
    if (selected !== device) return;
    const points = series.points.filter((p) => p.score != null).reverse();
    const canvas = document.getElementById('series');
    canvas.dataset.points = String(points.length);
    canvas.dataset.cloudPoints = String(points.filter((p) => p.scored_by === 'cloud').length);
    drawScores(canvas, points, Number.NaN);
    const waiting = series.points.length - points.length;
    document.getElementById('series-note').textContent =
      `${points.length} newest scored readings (${canvas.dataset.cloudPoints} scored by the collector)` +
      (waiting ? `, ${waiting} not scored yet` : '') +
      '; anomalies in red.';
  } catch (e) {
    showError(e);
  }
}

prev.addEventListener('click', () => load(pageIndex - 1));
next.addEventListener('click', () => load(pageIndex + 1));
auth.addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem('edge-token', document.getElementById('token').value);
  auth.hidden = true;
  load(pageIndex);
});
load(0);
