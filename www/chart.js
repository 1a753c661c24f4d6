// Canvas charts for the dashboard: scores over time with the threshold and anomalies, the
// latest reading per channel as standardized bars, the score distribution against the
// training one, and which channels an alert's score is about. Drawn, not tabled; no library
// needed.

function setup(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  if (canvas.width !== Math.round(width * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const css = getComputedStyle(document.documentElement);
  return {
    ctx,
    width,
    height,
    fg: css.getPropertyValue('--fg').trim(),
    accent: css.getPropertyValue('--accent').trim(),
    alert: css.getPropertyValue('--alert').trim(),
    grid: css.getPropertyValue('--grid').trim(),
  };
}

/** Scores on a log scale (they span 1e-4 .. 1e2), threshold dashed, anomalies (as the worker
 * flagged them) as red dots. */
export function drawScores(canvas, points, threshold) {
  const { ctx, width, height, fg, accent, alert, grid } = setup(canvas);
  const pad = { l: 48, r: 8, t: 8, b: 18 };
  const w = width - pad.l - pad.r,
    h = height - pad.t - pad.b;
  const lo = -4,
    hi = 2; // log10 range
  const y = (s) => pad.t + h * (1 - (Math.log10(Math.max(s, 1e-4)) - lo) / (hi - lo));
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = fg;
  ctx.strokeStyle = grid;
  ctx.lineWidth = 1;
  for (let e = lo; e <= hi; e++) {
    const yy = y(10 ** e);
    ctx.beginPath();
    ctx.moveTo(pad.l, yy);
    ctx.lineTo(width - pad.r, yy);
    ctx.stroke();
    ctx.fillText(`1e${e}`, 4, yy + 4);
  }
  if (Number.isFinite(threshold)) {
    ctx.strokeStyle = alert;
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(pad.l, y(threshold));
    ctx.lineTo(width - pad.r, y(threshold));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = alert;
    ctx.fillText('threshold', width - pad.r - 56, y(threshold) - 4);
  }
  if (!points.length) return;
  const n = points.length,
    x = (i) => pad.l + (w * i) / Math.max(1, n - 1);
  ctx.strokeStyle = accent;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p.score)) : ctx.moveTo(x(i), y(p.score))));
  ctx.stroke();
  ctx.fillStyle = alert;
  points.forEach((p, i) => {
    if (p.anomaly) {
      ctx.beginPath();
      ctx.arc(x(i), y(p.score), 3, 0, 2 * Math.PI);
      ctx.fill();
    }
  });
}

/** Latest reading per channel, as z-scores against the training normalization (±6σ shown). */
export function drawChannels(canvas, names, values, mean, std) {
  const { ctx, width, height, fg, accent, alert, grid } = setup(canvas);
  if (!values) return;
  const n = values.length,
    bw = width / n,
    mid = (height - 16) / 2,
    scale = mid / 6;
  ctx.strokeStyle = grid;
  ctx.beginPath();
  ctx.moveTo(0, mid);
  ctx.lineTo(width, mid);
  ctx.stroke();
  ctx.font = '11px system-ui, sans-serif';
  values.forEach((v, i) => {
    const z = std && std[i] ? (v - mean[i]) / std[i] : 0;
    const c = Math.max(-6, Math.min(6, z));
    ctx.fillStyle = Math.abs(z) > 3 ? alert : accent;
    ctx.fillRect(i * bw + bw * 0.2, Math.min(mid, mid - c * scale), bw * 0.6, Math.abs(c * scale));
    ctx.fillStyle = fg;
    ctx.fillText(names[i] || `c${i}`, i * bw + bw * 0.3, height - 2);
  });
}

/** Score drift: per bin of the training score quantiles, the share of this device's scores
 * (filled) beside the share the training's held-out normal data had (outlined). A model that
 * still fits its data has the two alike; a shift shows as mass moving to the right-hand bins. */
export function drawDrift(canvas, drift) {
  const { ctx, width, height, fg, accent, alert, grid } = setup(canvas);
  if (!drift || !drift.count) return;
  const total = drift.bucket_counts.reduce((a, b) => a + b, 0) || 1;
  const observed = drift.bucket_counts.map((c) => c / total);
  const expected = drift.expected_shares;
  const n = observed.length,
    pad = { l: 36, b: 16, t: 6 };
  const bw = (width - pad.l) / n,
    h = height - pad.b - pad.t;
  const top = Math.max(0.05, ...observed, ...expected);
  const y = (v) => pad.t + h * (1 - v / top);
  ctx.font = '11px system-ui, sans-serif';
  ctx.strokeStyle = grid;
  ctx.fillStyle = fg;
  for (const v of [0, top / 2, top]) {
    ctx.beginPath();
    ctx.moveTo(pad.l, y(v));
    ctx.lineTo(width, y(v));
    ctx.stroke();
    ctx.fillText(`${Math.round(v * 100)}%`, 2, y(v) + 4);
  }
  observed.forEach((share, i) => {
    const x = pad.l + i * bw;
    // The last bin lies above every training quantile: mass there is what the model calls unusual.
    ctx.fillStyle = i === n - 1 ? alert : accent;
    ctx.fillRect(x + bw * 0.15, y(share), bw * 0.35, y(0) - y(share));
    ctx.strokeStyle = fg;
    ctx.strokeRect(x + bw * 0.5, y(expected[i] || 0), bw * 0.35, y(0) - y(expected[i] || 0));
  });
  ctx.fillStyle = fg;
  ctx.fillText('low scores', pad.l, height - 2);
  ctx.fillText('high scores', width - 64, height - 2);
}

/** One alert's channels as horizontal bars, largest share first: `channels` is
 * `[{ channel, share }]` as the worker reports it (shares in 0..1). */
export function drawContributions(canvas, channels) {
  const { ctx, width, height, fg, accent, alert, grid } = setup(canvas);
  if (!channels || !channels.length) return;
  const shown = channels.slice(0, 8);
  const pad = { l: 72, r: 44 },
    row = height / shown.length,
    w = width - pad.l - pad.r;
  ctx.font = '11px system-ui, sans-serif';
  ctx.strokeStyle = grid;
  ctx.beginPath();
  ctx.moveTo(pad.l, 0);
  ctx.lineTo(pad.l, height);
  ctx.stroke();
  shown.forEach(({ channel, share }, i) => {
    const y = i * row,
      bar = Math.max(1, w * Math.min(1, Math.max(0, share)));
    ctx.fillStyle = i === 0 ? alert : accent;
    ctx.fillRect(pad.l, y + row * 0.2, bar, row * 0.6);
    ctx.fillStyle = fg;
    ctx.fillText(channel.length > 11 ? `${channel.slice(0, 10)}…` : channel, 2, y + row * 0.65);
    ctx.fillText(`${(100 * share).toFixed(0)}%`, pad.l + bar + 4, y + row * 0.65);
  });
}
