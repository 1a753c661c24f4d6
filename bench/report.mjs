// Turns the page's raw repetitions into the results JSON (medians of repetitions, sizes,
// correctness, ratios) and the markdown table. Every ratio is named for its direction and reads
// > 1 when our engine is better: `ort_over_ours` for times and sizes, `ours_over_ort` for rates.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Writes `value`, one run's raw results, to `dir`/<kind>-<date>.json (`date`: the run's ISO
 * time) and returns the path. */
export function saveRaw(dir, kind, date, value) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${kind}-${date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
  return file;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** Median of each numeric field over a list of same-shaped objects (recursively); other fields as in the first. */
export function medians(list) {
  const out = {};
  for (const k of Object.keys(list[0])) {
    const v = list[0][k];
    out[k] =
      typeof v === 'number' ? median(list.map((x) => x[k])) : v && typeof v === 'object' ? medians(list.map((x) => x[k])) : v;
  }
  return out;
}

function maxRelDiff(ours, ref) {
  let rel = 0;
  let abs = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    abs = Math.max(abs, d);
    rel = Math.max(rel, d / Math.max(Math.abs(ref[i]), 1e-12));
  }
  return { max_rel_diff: rel, max_abs_diff: abs, rows: ref.length };
}

function size(root, urlPath) {
  const bytes = readFileSync(join(root, urlPath));
  return { file: urlPath.replace(/^\//, ''), raw_bytes: bytes.length, gzip9_bytes: gzipSync(bytes, { level: 9 }).length };
}

/** The warm measurements of both engines: medians over repetitions, ratios, correctness. */
export function warmSummary(rawWarm) {
  const warm = {};
  const correctness = {};
  const ratios = {
    single_row_p50_ort_over_ours: {},
    single_row_p99_ort_over_ours: {},
    single_row_block_mean_ort_over_ours: {},
    batch_rows_per_s_ours_over_ort: {},
    load_to_first_score_ort_over_ours: {},
  };
  for (const [key, engines] of Object.entries(rawWarm)) {
    warm[key] = {};
    for (const [engine, r] of Object.entries(engines)) {
      const m = medians(r.reps);
      const best = Object.fromEntries(Object.keys(m.batch).map((n) => [n, Math.max(...r.reps.map((x) => x.batch[n]))]));
      const worst = Object.fromEntries(Object.keys(m.batch).map((n) => [n, Math.min(...r.reps.map((x) => x.batch[n]))]));
      warm[key][engine] = {
        api: r.api,
        ...r.detail,
        single_row_us: m.single,
        batch_rows_per_s: m.batch,
        batch_rows_per_s_best_rep: best,
        batch_rows_per_s_worst_rep: worst,
        load_ms: medians(r.load),
        load_reps: r.load,
        reps: r.reps,
      };
    }
    const { ours, ort } = warm[key];
    ratios.single_row_p50_ort_over_ours[key] = ort.single_row_us.p50_us / ours.single_row_us.p50_us;
    ratios.single_row_p99_ort_over_ours[key] = ort.single_row_us.p99_us / ours.single_row_us.p99_us;
    ratios.single_row_block_mean_ort_over_ours[key] = ort.single_row_us.block_mean_us / ours.single_row_us.block_mean_us;
    // Per repetition first: within one the engines ran in alternating blocks, under the same load.
    ratios.batch_rows_per_s_ours_over_ort[key] = Object.fromEntries(
      Object.keys(ours.batch_rows_per_s).map((n) => [n, median(ours.reps.map((x, i) => x.batch[n] / ort.reps[i].batch[n]))]),
    );
    ratios.load_to_first_score_ort_over_ours[key] = ort.load_ms.first_score_ms / ours.load_ms.first_score_ms;
    correctness[key] = { ours_vs_ort: maxRelDiff(engines.ours.scores, engines.ort.scores) };
    if (key.endsWith('/int8')) {
      // context: how far each int8 run is from ORT's f32 scores
      const f32 = rawWarm[key.replace(/int8$/, 'f32')].ort.scores;
      correctness[key].ours_vs_ort_f32 = maxRelDiff(engines.ours.scores, f32);
      correctness[key].ort_vs_ort_f32 = maxRelDiff(engines.ort.scores, f32);
    }
  }
  return { results: { warm, correctness }, ratios };
}

export function aggregate(raw, root) {
  const {
    results: { warm, correctness },
    ratios,
  } = warmSummary(raw.warm);
  ratios.cold_worker_to_first_score_ort_over_ours = {};
  const cold = {};
  for (const [key, reps] of Object.entries(raw.cold)) cold[key] = { median: medians(reps), first_rep: reps[0], reps };
  for (const kind of ['f32', 'int8']) {
    ratios.cold_worker_to_first_score_ort_over_ours[`shuttle/${kind}`] =
      cold[`ort/shuttle/${kind}`].median.worker_to_first_score_ms / cold[`ours/shuttle/${kind}`].median.worker_to_first_score_ms;
  }
  const service_worker = { info: raw.sw.info };
  for (const kind of ['f32', 'int8']) {
    const m = medians(raw.sw[kind].reps);
    service_worker[`shuttle/${kind}`] = { api: raw.sw[kind].api, single_row_us: m.single, batch_rows_per_s: m.batch };
    correctness[`shuttle/${kind}`].service_worker_vs_dedicated_worker = maxRelDiff(
      raw.sw[kind].scores,
      raw.warm[`shuttle/${kind}`].ours.scores,
    );
  }
  const round_trip_us = {
    page_service_worker_page: medians(raw.rtt.sw),
    page_dedicated_worker_page: medians(raw.rtt.worker),
    note: 'one reading, scored by our engine (shuttle f32) on the other side; median over repetitions of p50/p99',
  };
  const fetched = [...new Set(raw.fetched.map((u) => new URL(u).pathname))];
  const ortFiles = (re) => fetched.filter((p) => p.includes('onnxruntime-web') && re.test(p)).map((p) => size(root, p));
  const sizes = {
    ours: size(root, '/target/bench/pkg/edge_anomaly_bg.wasm'),
    ort: ortFiles(/\.wasm$/),
    js: { ours: [size(root, '/target/bench/pkg/edge_anomaly.js')], ort: ortFiles(/\.m?js$/) },
  };
  const ortGzip = sizes.ort.reduce((a, s) => a + s.gzip9_bytes, 0);
  const ortRaw = sizes.ort.reduce((a, s) => a + s.raw_bytes, 0);
  ratios.wasm_raw_ort_over_ours = ortRaw / sizes.ours.raw_bytes;
  ratios.wasm_gzip_ort_over_ours = ortGzip / sizes.ours.gzip9_bytes;
  ratios.round_trip_p50_worker_over_service_worker =
    round_trip_us.page_dedicated_worker_page.p50_us / round_trip_us.page_service_worker_page.p50_us;
  const isolation = {
    page: raw.setup.page,
    dedicated_worker: {
      crossOriginIsolated: raw.setup.worker.crossOriginIsolated,
      timerResolutionUs: raw.setup.worker.timerResolutionUs,
    },
    service_worker: raw.sw.info,
  };
  const outbox = raw.outbox?.length ? { median: medians(raw.outbox), reps: raw.outbox } : null;
  const outboxCollector = raw.outbox_collector?.length
    ? { median: medians(raw.outbox_collector), reps: raw.outbox_collector }
    : null;
  const contributions = raw.contributions ? contributionsSummary(raw.contributions) : null;
  return {
    isolation,
    results: {
      warm,
      cold,
      round_trip_us,
      service_worker,
      sizes,
      correctness,
      outbox,
      outbox_collector: outboxCollector,
      contributions,
    },
    ratios,
  };
}

/** The outbox table of a results JSON (`results.outbox`, and `results.outbox_collector` when present). */
export function outboxMarkdown(r) {
  const ob = r.results.outbox;
  const real = r.results.outbox_collector;
  const m = ob.median;
  const L = [
    `Outbox (the product's EdgeApp in the service worker, shuttle int8; median of ${ob.reps.length}): collector away (503), ` +
      `${m.readings.toLocaleString('en-US')} readings in calls of ${m.chunk} and ${m.singles.toLocaleString('en-US')} single-reading calls ` +
      'scored and written to a fresh IndexedDB outbox; then the endpoint answers and the outbox is flushed until empty. ' +
      `The sink decodes each OTLP batch and answers 200 without storing (${m.sink.requests} requests, ` +
      `${human(m.sink.wire_bytes)} on the wire; every record arrived, distinct ids checked)` +
      (real ? `; the real collector stores them in SQLite (every record stored, counted in its \`/api/stats\`).` : '.'),
    '',
  ];
  const both = (k) => (real ? ` | ${f(real.median[k])}` : '');
  L.push(`| outbox | records/s (sink)${real ? ' | records/s (collector run)' : ''} |`, `|---|---${real ? '|---' : ''}|`);
  L.push(
    `| write, ${m.chunk} readings per call (incl. scoring) | ${f(m.write_batched_records_per_s)}${both('write_batched_records_per_s')} |`,
  );
  L.push(
    `| write, 1 reading per call, each awaited (incl. scoring) | ${f(m.write_single_records_per_s)}${both('write_single_records_per_s')} |`,
  );
  if (m.write_streamed_records_per_s) {
    L.push(
      `| write, 1 reading per call, ${m.in_flight} pending at once (group commit; incl. scoring) | ${f(m.write_streamed_records_per_s)}${both('write_streamed_records_per_s')} |`,
    );
  }
  L.push(`| flush until empty (to the sink / to the collector) | ${f(m.flush_records_per_s)}${both('flush_records_per_s')} |`);
  return L.join('\n');
}

/** Slowest `explain` may be, as a share of the plain path's rows/s. */
export const CONTRIBUTIONS_TARGET = 0.75;

/** Per model: medians over repetitions of plain and explain rows/s per batch size, their ratio
 * (explain / plain, of the medians) against the target, and the median µs of one repair. */
export function contributionsSummary(raw) {
  const out = {};
  for (const [key, { flagged, check, reps }] of Object.entries(raw)) {
    const batch = {};
    for (const n of Object.keys(reps[0].batch)) {
      const plain = median(reps.map((r) => r.batch[n].plain_rows_per_s));
      const explain = median(reps.map((r) => r.batch[n].explain_rows_per_s));
      const ratio = explain / plain;
      batch[n] = {
        plain_rows_per_s: plain,
        explain_rows_per_s: explain,
        explain_over_plain: ratio,
        target_met: ratio >= CONTRIBUTIONS_TARGET,
      };
    }
    out[key] = { flagged_sample_readings: flagged, check, batch, repair_us: median(reps.map((r) => r.repair_us)), reps };
  }
  return out;
}

/** The contributions table (see contributionsSummary). */
export function contributionsTable(summary) {
  const L = [
    `Contributions, our engine in dedicated workers: plain \`scoreInto\` and \`explainInto\` on the same batches, timed in turn ` +
      `(order alternated); target: explain ≥ ${CONTRIBUTIONS_TARGET * 100}% of plain rows/s. One \`repair\` per flagged sample reading.`,
    '',
  ];
  L.push('| model | batch | plain rows/s | explain rows/s | explain / plain | target |', '|---|---|---|---|---|---|');
  for (const [key, c] of Object.entries(summary)) {
    for (const [n, b] of Object.entries(c.batch)) {
      L.push(
        `| ${key} | ${n} | ${rate(b.plain_rows_per_s)} | ${rate(b.explain_rows_per_s)} | ${b.explain_over_plain.toFixed(2)} | ${b.target_met ? 'met' : 'missed'} |`,
      );
    }
  }
  L.push('', '| model | flagged sample readings | one repair (µs) | explain check on the first rows |', '|---|---|---|---|');
  for (const [key, c] of Object.entries(summary)) {
    L.push(
      `| ${key} | ${c.flagged_sample_readings} | ${f(c.repair_us)} | scores vs score ≤ ${c.check.max_abs_score_diff.toExponential(1)}, ` +
        `shares + guard off 1 by ≤ ${c.check.max_abs_share_sum_diff.toExponential(1)}, ${c.check.negative_shares} negative |`,
    );
  }
  return L.join('\n');
}

/** The table of a `--contributions-only` run, with its machine line. */
export function contributionsMarkdown(r) {
  return (
    `Machine: ${r.machine.cpus} CPU (${r.machine.model_name}), Chromium ${r.machine.chromium} headless; commit ${r.commit}` +
    `${r.worktree_dirty ? ' (with uncommitted changes)' : ''}, ${r.date.slice(0, 10)}; load average ${r.loadavg.join(' / ')}; ` +
    `median of ${r.config.reps} repetitions, each ≥ ${r.config.minBatchMs} ms.\n\n${contributionsTable(r.contributions)}`
  );
}

const f = (x, d = 1) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(d));
const rate = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(1)} k`);
const ratio = (x) => `${x.toFixed(2)}×`;
const human = (b) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} kB`);

/** The warm table (both engines, dedicated workers) and its notes, as lines. */
function warmTable(r) {
  const { warm } = r.results;
  const c = r.config;
  const L = [];
  L.push(
    '',
    'Warm, in dedicated workers (one per engine and model). Ratio > 1 means ours is better (ORT time / our time, our rate / ORT rate; ' +
      (c.batchBlockMs ? "for batches, the median over repetitions of each repetition's ratio). " : 'of the medians). ') +
      (c.batchBlockMs
        ? `Batches: the same ${c.rows === 'uniform' ? 'synthetic rows (uniform in [-1, 1))' : 'sample rows'} for both engines, ` +
          `timed in blocks of ≥ ${c.batchBlockMs} ms that alternate between the engines until each has run ≥ ${c.minBatchMs} ms per size.`
        : ''),
    '',
  );
  L.push('| model | metric | ours | ORT-web | ratio |', '|---|---|---|---|---|');
  for (const [key, { ours, ort }] of Object.entries(warm)) {
    const row = (metric, a, b, x) => L.push(`| ${key} | ${metric} | ${a} | ${b} | ${ratio(x)} |`);
    for (const [name, k] of [
      ['single row p50 (µs)', 'p50_us'],
      ['single row p99 (µs)', 'p99_us'],
      ['single row mean of block (µs)', 'block_mean_us'],
    ]) {
      row(name, f(ours.single_row_us[k]), f(ort.single_row_us[k]), ort.single_row_us[k] / ours.single_row_us[k]);
    }
    for (const n of Object.keys(ours.batch_rows_per_s)) {
      row(
        `batch ${n} (rows/s)`,
        rate(ours.batch_rows_per_s[n]),
        rate(ort.batch_rows_per_s[n]),
        r.ratios.batch_rows_per_s_ours_over_ort[key][n],
      );
    }
    row(
      'load: bytes → first score (ms)',
      f(ours.load_ms.first_score_ms, 2),
      f(ort.load_ms.first_score_ms, 2),
      ort.load_ms.first_score_ms / ours.load_ms.first_score_ms,
    );
  }
  // Flag wide spreads between repetitions. The engines run in alternating blocks, so load from
  // elsewhere on the machine reaches both: a spread one engine shows and the other does not is its own.
  for (const [key, engines] of Object.entries(warm)) {
    for (const [engine, w] of Object.entries(engines)) {
      const sizes = Object.keys(w.batch_rows_per_s).filter(
        (k) => w.batch_rows_per_s_best_rep[k] / w.batch_rows_per_s_worst_rep[k] > 1.5,
      );
      if (sizes.length) {
        L.push(
          '',
          `Unstable: ${engine === 'ours' ? 'our' : "ORT-web's"} ${key} batch rate ranged over the repetitions ` +
            sizes
              .map(
                (n) =>
                  `${rate(w.batch_rows_per_s_worst_rep[n])}–${rate(w.batch_rows_per_s_best_rep[n])} (batch ${n}, median ${rate(w.batch_rows_per_s[n])})`,
              )
              .join(', ') +
            ' rows/s (see bench/README.md).',
        );
      }
    }
  }
  return L;
}

/** The table of a `--warm-only` run, with its machine line. */
export function warmMarkdown(r) {
  const c = r.config;
  return [
    `Machine: ${r.machine.cpus} CPU (${r.machine.model_name}), Chromium ${r.machine.chromium} headless; commit ${r.commit}` +
      `${r.worktree_dirty ? ' (with uncommitted changes)' : ''}, ${r.date.slice(0, 10)}; load average ${r.loadavg.join(' / ')}. ` +
      `onnxruntime-web ${c.ort_web} (wasm EP, 1 thread, SIMD). Median of ${c.reps} repetitions; ${c.singleCalls} single-row calls.` +
      (c.chromiumJsFlags ? ` V8 flags: \`${c.chromiumJsFlags}\`.` : ' Default V8 flags.'),
    ...warmTable(r),
  ].join('\n');
}

export function markdown(r) {
  const { cold, round_trip_us: rtt, service_worker: sw, sizes, correctness } = r.results;
  const c = r.config;
  const L = [];
  L.push(
    `Machine: ${r.machine.cpus} CPU (${r.machine.model_name}), Chromium ${r.machine.chromium} headless, Node ${r.machine.node}; ` +
      `commit ${r.commit}${r.worktree_dirty ? ' (with uncommitted changes)' : ''}, ${r.date.slice(0, 10)}` +
      `${r.loadavg ? `; load average ${r.loadavg.join(' / ')}` : ''}. onnxruntime-web ${c.ort_web} ` +
      '(wasm EP, 1 thread, SIMD). Median of ' +
      `${c.reps} repetitions (cold start: ${c.coldReps}); ${c.singleCalls} single-row calls, ` +
      `batches run ≥ ${c.minBatchMs} ms. crossOriginIsolated: page ${r.isolation.page.crossOriginIsolated}, worker ` +
      `${r.isolation.dedicated_worker.crossOriginIsolated}, service worker ${r.isolation.service_worker.crossOriginIsolated}; timer step ` +
      `${f(r.isolation.dedicated_worker.timerResolutionUs, 1)} µs (worker), ${f(r.isolation.service_worker.timerResolutionUs, 1)} µs (service worker).` +
      (c.chromiumJsFlags ? ` V8 flags: \`${c.chromiumJsFlags}\`.` : ' Default V8 flags.'),
  );
  L.push(...warmTable(r));
  L.push(
    '',
    'Cold start: page `new Worker()` → model loaded / → first score (fresh worker each time, nothing cached: ' +
      "includes fetching and compiling the engine's wasm).",
    '',
  );
  L.push(
    '| model | engine | → loaded (ms) | → first score (ms) | of which runtime start (ms) | model load (ms) | first repetition → first score (ms) |',
    '|---|---|---|---|---|---|---|',
  );
  for (const [key, { median: m, first_rep: first }] of Object.entries(cold)) {
    const [engine, ...model] = key.split('/');
    L.push(
      `| ${model.join('/')} | ${engine === 'ours' ? 'ours' : 'ORT-web'} | ${f(m.worker_to_loaded_ms)} | ${f(m.worker_to_first_score_ms)} | ` +
        `${f(m.runtime_start_ms)} | ${f(m.load_ms, 2)} | ${f(first.worker_to_first_score_ms)} |`,
    );
  }
  L.push(
    '',
    'ORT-web fetches and compiles its wasm inside its first `InferenceSession.create`, so for it that lands in "model load"; ' +
      'ours does it in `init()` ("runtime start"). Compare the totals. → first score, ORT / ours: ' +
      Object.entries(r.ratios.cold_worker_to_first_score_ort_over_ours)
        .map(([k, x]) => `${k} ${ratio(x)}`)
        .join(', ') +
      '.',
  );
  L.push('', 'Service worker (where the product scores), our engine only; round trips carry one reading.', '');
  L.push('| what | p50 | p99 |', '|---|---|---|');
  L.push(
    `| round trip page → service worker → page (µs) | ${f(rtt.page_service_worker_page.p50_us)} | ${f(rtt.page_service_worker_page.p99_us)} |`,
  );
  L.push(
    `| round trip page → dedicated worker → page (µs) | ${f(rtt.page_dedicated_worker_page.p50_us)} | ${f(rtt.page_dedicated_worker_page.p99_us)} |`,
  );
  for (const kind of ['f32', 'int8']) {
    const s = sw[`shuttle/${kind}`];
    L.push(
      `| in the service worker, shuttle/${kind}, single row (µs; mean of block ${f(s.single_row_us.block_mean_us)}) | ${f(s.single_row_us.p50_us)} | ${f(s.single_row_us.p99_us)} |`,
    );
    L.push(
      `| in the service worker, shuttle/${kind}, batch ${Object.entries(s.batch_rows_per_s)
        .map(([n, x]) => `${n}: ${rate(x)}`)
        .join(', ')} rows/s | | |`,
    );
  }
  if (r.results.outbox) L.push('', outboxMarkdown(r));
  if (r.results.contributions) L.push('', contributionsTable(r.results.contributions));
  L.push('', '| wasm | raw | gzip -9 |', '|---|---|---|');
  L.push(`| ours (\`${sizes.ours.file}\`) | ${human(sizes.ours.raw_bytes)} | ${human(sizes.ours.gzip9_bytes)} |`);
  for (const s of sizes.ort)
    L.push(`| ORT-web (\`${s.file.split('/').pop()}\`) | ${human(s.raw_bytes)} | ${human(s.gzip9_bytes)} |`);
  const js = (list) =>
    `${list.map((s) => s.file.split('/').pop()).join(' + ')}: ${human(list.reduce((a, s) => a + s.raw_bytes, 0))} raw, ` +
    `${human(list.reduce((a, s) => a + s.gzip9_bytes, 0))} gzip`;
  L.push('', `JavaScript loaded besides the wasm: ours ${js(sizes.js.ours)}; ORT-web ${js(sizes.js.ort)}.`);
  L.push(
    '',
    `Correctness, first ${c.correctnessRows} sample rows as one batch: max relative difference of our scores from ORT-web's: ` +
      Object.entries(correctness)
        .map(
          ([k, v]) =>
            `${k} ${v.ours_vs_ort.max_rel_diff.toExponential(1)}` +
            (v.ort_vs_ort_f32
              ? ` (from ORT's f32 scores: ours ${v.ours_vs_ort_f32.max_rel_diff.toExponential(1)}, ORT int8 ${v.ort_vs_ort_f32.max_rel_diff.toExponential(1)})`
              : ''),
        )
        .join('; ') +
      ". int8 differs by design: ORT quantizes activations per call (a reading's score depends on its batch), " +
      'ours dequantizes the int8 weights and computes in f32.',
  );
  return L.join('\n');
}
