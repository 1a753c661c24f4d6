// Timing loops shared by the dedicated worker and the service worker: single-row latency (each
// call timed, plus a block of untimed calls for the mean), batch throughput, and a timer
// resolution probe. A scorer is { features, isAsync, score(rows, n) } (see engines.js); sync
// and async scorers get separate loops so the sync engine never pays for an `await`.

/** `score(rows, n)` through our engine's `scoreInto`, into an output buffer reused per batch
 * size (no allocation per call). */
export function scoreIntoReused(engine) {
  const outs = new Map();
  return (rows, n) => {
    let o = outs.get(n);
    if (!o) outs.set(n, (o = new Float32Array(n)));
    engine.scoreInto(rows, o);
    return o;
  };
}

/** Quantile of an unsorted numeric array (nearest rank). */
export function quantile(values, q) {
  const s = Float64Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

export const median = (values) => quantile(values, 0.5);

/** Smallest non-zero step of performance.now() seen in a tight loop, in µs. */
export function timerResolutionUs() {
  let best = Infinity;
  for (let i = 0; i < 2000; i++) {
    const a = performance.now();
    let b = performance.now();
    while (b === a) b = performance.now();
    best = Math.min(best, b - a);
  }
  return best * 1000;
}

/** Row-major rows [i, i+n) of `sample` (cycling), as one Float32Array. */
export function tile(sample, features, n, start = 0) {
  const total = sample.length / features;
  const out = new Float32Array(n * features);
  for (let r = 0; r < n; r++) {
    const src = ((start + r) % total) * features;
    out.set(sample.subarray(src, src + features), r * features);
  }
  return out;
}

/** Single rows as views into `sample`, so a timed call does not include slicing. */
function rowViews(sample, features) {
  const rows = [];
  for (let i = 0; i + features <= sample.length; i += features) rows.push(sample.subarray(i, i + features));
  return rows;
}

/**
 * `calls` single-row calls from row `start` on (rows cycle), each timed, then the same calls again
 * as one untimed block: the per-call times and the block's total, in ms. One call before the
 * timing is not counted: the first call after the worker was idle is slower (the page times short
 * chunks of calls, whose first call would otherwise reach the p99).
 */
export async function singleRowTimes(scorer, sample, calls, start = 0) {
  const rows = rowViews(sample, scorer.features);
  const row = (i) => rows[(start + i) % rows.length];
  const per = new Float64Array(calls);
  let block;
  if (scorer.isAsync) {
    await scorer.score(row(0), 1);
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      await scorer.score(row(i), 1);
      per[i] = performance.now() - t;
    }
    const t = performance.now();
    for (let i = 0; i < calls; i++) await scorer.score(row(i), 1);
    block = performance.now() - t;
  } else {
    scorer.score(row(0), 1);
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      scorer.score(row(i), 1);
      per[i] = performance.now() - t;
    }
    const t = performance.now();
    for (let i = 0; i < calls; i++) scorer.score(row(i), 1);
    block = performance.now() - t;
  }
  return { per, blockMs: block };
}

/** p50 and p99 of per-call times and the mean of the untimed calls, in µs (inputs in ms). */
export function latency(per, blockMs, blockCalls) {
  const us = (ms) => ms * 1000;
  return { p50_us: us(quantile(per, 0.5)), p99_us: us(quantile(per, 0.99)), block_mean_us: us(blockMs / blockCalls) };
}

/** Calls score(row) `calls` times (rows cycle), each timed, then once more as an untimed block. */
export async function singleRow(scorer, sample, calls) {
  const { per, blockMs } = await singleRowTimes(scorer, sample, calls);
  return latency(per, blockMs, calls);
}

/** Rows per second scoring `batch` (n rows) repeatedly for at least `minMs`. */
export async function throughput(scorer, batch, n, minMs) {
  let calls = 0;
  const t = performance.now();
  let elapsed;
  if (scorer.isAsync) {
    do {
      await scorer.score(batch, n);
      calls++;
      elapsed = performance.now() - t;
    } while (elapsed < minMs || calls < 3);
  } else {
    do {
      scorer.score(batch, n);
      calls++;
      elapsed = performance.now() - t;
    } while (elapsed < minMs || calls < 3);
  }
  return { rows_per_s: (calls * n) / (elapsed / 1000), calls, ms: elapsed };
}

/**
 * One timed block: score `batch` (n rows) repeatedly for at least `minMs` (≥ 3 calls). The page
 * alternates such blocks between the two engines' workers, so both see the same machine load.
 */
export async function timedBlock(scorer, batch, n, minMs) {
  const { calls, ms } = await throughput(scorer, batch, n, minMs);
  return { rows: calls * n, calls, ms };
}

/** Warm-up: `calls` single rows, then every batch size for `ms` (V8 tiers wasm up on hot code). */
export async function warmUp(scorer, sample, calls, batches, ms) {
  await singleRow(scorer, sample, calls);
  for (const [n, batch] of batches) await throughput(scorer, batch, n, ms);
}

/** One repetition of the warm measurements for one scorer. */
export async function measureOnce(scorer, sample, batches, cfg) {
  const single = await singleRow(scorer, sample, cfg.singleCalls);
  const batch = {};
  for (const [n, rows] of batches) batch[n] = (await throughput(scorer, rows, n, cfg.minBatchMs)).rows_per_s;
  return { single, batch };
}

/**
 * One repetition of contributions against plain scoring (our engine): rows/s of `score` and of
 * `explain` on the same batches, timed in turn (`explainFirst` swaps the order), and the mean µs
 * of one `repair` over the `flagged` readings, cycling.
 */
export async function contributionsOnce(scorer, batches, flagged, axes, cfg, explainFirst) {
  const explainer = { isAsync: false, score: scorer.explain };
  const batch = {};
  for (const [n, rows] of batches) {
    const plain = async () => (await throughput(scorer, rows, n, cfg.minBatchMs)).rows_per_s;
    const explain = async () => (await throughput(explainer, rows, n, cfg.minBatchMs)).rows_per_s;
    batch[n] = explainFirst
      ? { explain_rows_per_s: await explain(), plain_rows_per_s: await plain() }
      : { plain_rows_per_s: await plain(), explain_rows_per_s: await explain() };
  }
  let calls = 0;
  const t = performance.now();
  let elapsed;
  do {
    scorer.repair(flagged[calls % flagged.length], axes.centres, axes.spreads);
    calls++;
    elapsed = performance.now() - t;
  } while (elapsed < cfg.minBatchMs || calls < 10);
  return { batch, repair_us: (elapsed * 1000) / calls, repair_calls: calls };
}
