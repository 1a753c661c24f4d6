// Input sources for the dashboard. Each yields readings (arrays of F numbers) on demand; the
// page pulls one per tick at the chosen rate and sends it to the worker.

import { F32_MAX, overflowsF32 } from './protocol.js';

/** One value as typed or read from a CSV cell: a number, or `NaN` for a missing value written
 * as `NaN` (recorded unscored, like a sensor that dropped out). Returns an error message for
 * anything else, including a number float32 cannot hold (it would become Infinity). */
export function parseValue(cell) {
  const text = cell === undefined ? '' : cell.trim();
  if (text === 'NaN') return { value: NaN };
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) return { error: `${JSON.stringify(text)} is not a number` };
  if (!Number.isFinite(value) || overflowsF32(value)) {
    return { error: `${text} is beyond the range a reading can hold (±${F32_MAX.toPrecision(8)})` };
  }
  return { value };
}

/** Parses one typed reading (comma-separated values); throws with the position of a bad value. */
export function parseReading(text, features) {
  const cells = text.split(',');
  if (features && cells.length !== features) throw new Error(`expected ${features} values, got ${cells.length}`);
  return cells.map((cell, i) => {
    const { value, error } = parseValue(cell);
    if (error) throw new Error(`value ${i + 1}: ${error}`);
    return value;
  });
}

/** Parses CSV text into numeric rows of the model's features. Columns are matched by name when
 * the header has them, else the first F numeric columns are used. Throws with the line number. */
export function parseCsv(text, featureNames) {
  const lines = text
    .replace(/\r/g, '')
    .split('\n')
    .filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new Error('CSV needs a header row and at least one reading');
  const header = lines[0].split(',').map((h) => h.trim());
  let idx = featureNames.map((f) => header.indexOf(f));
  if (idx.some((i) => i < 0)) idx = featureNames.map((_, i) => i);
  const label = header.indexOf('anomaly');
  return lines.slice(1).map((line, n) => {
    const cells = line.split(',');
    const row = idx.map((i, j) => {
      const { value, error } = parseValue(cells[i]);
      if (error) throw new Error(`line ${n + 2}, column ${featureNames[j] || j + 1}: ${error}`);
      return value;
    });
    return { row, label: label >= 0 ? Number(cells[label]) : undefined };
  });
}

/** Replays rows in order, looping. */
export function replay(rows) {
  let i = 0;
  return {
    next: () => rows[i++ % rows.length],
    get count() {
      return i;
    },
  };
}

/** Synthetic multi-channel readings: held-out normal rows with small noise; `inject()` adds a
 * +8σ excursion on one random channel to the next few readings. */
export function synthetic(normalRows, std) {
  let pending = 0,
    channel = 0;
  const gauss = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  return {
    next() {
      const base = normalRows[Math.floor(Math.random() * normalRows.length)].row;
      const row = base.map((v, j) => v + 0.02 * std[j] * gauss());
      let label = 0;
      if (pending > 0) {
        row[channel] += 8 * std[channel];
        pending--;
        label = 1;
      }
      return { row, label };
    },
    inject(n = 5) {
      pending = n;
      channel = Math.floor(Math.random() * std.length);
      return channel;
    },
  };
}

/** Device motion (accelerometer x, y, z) where the browser exposes it; usable only with a model
 * of 3 features, e.g. one trained by the pipeline on the user's own accelerometer CSV. */
export function deviceMotion() {
  let last = null;
  const onMotion = (e) => {
    const a = e.accelerationIncludingGravity;
    if (a && a.x !== null) last = [a.x, a.y, a.z];
  };
  window.addEventListener('devicemotion', onMotion);
  return {
    next: () => (last ? { row: last, label: undefined } : null),
    stop: () => window.removeEventListener('devicemotion', onMotion),
  };
}
