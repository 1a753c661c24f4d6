// Chaos: readings stream through the page's own client into the service worker while, cycle
// after cycle, the worker is stopped mid-flush, the browser closes and reopens on the same
// profile, the network goes offline, and the collector answers 503/429 + Retry-After, resets
// connections (after storing, and before), hangs, or is killed -9 and restarted on the same
// database. A hung request must be given up by the worker on its own (its fetch deadline). Then
// the outbox must drain, and the collector must hold every acknowledged reading exactly once with
// no seq gap (counted from its database, and as the collector itself reports). Bounded: a
// seeded plan of CHAOS_CYCLES cycles over CHAOS_READINGS readings (defaults: 12 cycles, every
// kind at least once, 5,000 readings). CHAOS_SEED replays a run's plan. The figures go to
// artifacts/chaos-summary.json. A browser close waits for the page's open score requests first
// (a page that dies cannot learn their fate); worker stops cut requests off mid-flight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, message, tempDir } from './harness.mjs';
import { Profile } from './chaos/browser.mjs';
import { Collector, freePort } from './chaos/collector.mjs';
import { KINDS, plan, runFault } from './chaos/cycles.mjs';
import { account } from './chaos/ledger.mjs';
import { chooseSeed, prng } from './chaos/prng.mjs';
import { Stream } from './chaos/stream.mjs';

const READINGS = Number(process.env.CHAOS_READINGS || 5_000);
const CYCLES = Number(process.env.CHAOS_CYCLES || 12);
const DRAIN_TIMEOUT_MS = Number(process.env.CHAOS_DRAIN_TIMEOUT_MS || 120_000);
const REQUEST_TIMEOUT_MS = Number(process.env.CHAOS_REQUEST_TIMEOUT_MS || 30_000);
const STATIC_DIR = process.env.CHAOS_STATIC_DIR || join(ROOT, 'dist');
const SUMMARY = process.env.CHAOS_SUMMARY || join(ROOT, 'artifacts/chaos-summary.json');
const COLLECTOR_FAULTS = ['status-503', 'status-429', 'reset', 'reset-before-store', 'hang'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log('[chaos]', ...a);

/** Waits for an empty outbox (nothing queued, nothing inflight), sending what the page sends
 * when the network is back every 2 s. Returns the last status and whether it drained. */
async function drain(profile) {
  const end = Date.now() + DRAIN_TIMEOUT_MS;
  let status = null;
  let nudged = 0;
  while (Date.now() < end) {
    if (Date.now() - nudged >= 2_000) {
      nudged = Date.now();
      await profile.post('online');
    }
    try {
      const r = await Promise.race([message(profile.page, 'status'), sleep(5_000).then(() => ({}))]);
      if (r.status) status = r.status;
    } catch (e) {
      log(`status during drain: ${e.message}`);
    }
    const o = status && status.outbox;
    if (o && o.queued === 0 && o.inflight_records === 0) return { drained: true, status };
    await sleep(250);
  }
  return { drained: false, status };
}

/** The checks of a run: name -> null when it holds, else why not. */
function checks(s) {
  const c = {};
  const want = (name, ok, why) => {
    c[name] = ok ? null : why;
  };
  want(
    'every fault mode accepted by the collector',
    s.unsupported_faults.length === 0,
    `the collector refused fault modes ${JSON.stringify(s.unsupported_faults)} (is --test-faults there, and the mode?)`,
  );
  const ranKinds = new Set(s.cycles_log.map((c) => c.kind));
  const planned = new Set(s.plan_kinds);
  want(
    'every planned kind ran',
    [...planned].every((k) => ranKinds.has(k)),
    `ran ${[...ranKinds]}`,
  );
  for (const kind of COLLECTOR_FAULTS.filter((k) => planned.has(k))) {
    const hits = s.cycles_log.filter((c) => c.kind === kind).reduce((n, c) => n + (c.hits || 0), 0);
    want(`${kind} hit a flush`, hits > 0, `${kind} was armed but no /v1/logs request met it`);
  }
  const hangs = s.cycles_log.filter((c) => c.kind === 'hang' && c.hits);
  want(
    'the worker recovers from every hang by itself',
    hangs.every((c) => c.recovered),
    `after ${hangs.filter((c) => !c.recovered).length} of ${hangs.length} hangs no new request reached the collector within 60 s`,
  );
  want(
    'every score request answered',
    s.unanswered_readings === 0 && s.refused_readings === 0 && s.unknown_readings === 0,
    `unanswered ${s.unanswered_readings} (in ${s.unanswered_requests} requests), refused ${s.refused_readings}, cut off ${s.unknown_readings}`,
  );
  want('outbox drained', s.drained, `not drained after ${DRAIN_TIMEOUT_MS} ms: ${JSON.stringify(s.outbox)}`);
  want(
    'nothing dead-lettered or evicted',
    s.outbox && s.outbox.dead_letter_records === 0 && s.outbox.evicted_total === 0,
    JSON.stringify(s.outbox),
  );
  want('one device', s.unique_devices === 1, `${s.unique_devices} devices`);
  want('lost = 0', s.lost === 0, `${s.lost} acknowledged readings have no record at the collector`);
  want('duplicated = 0', s.duplicated === 0, `${s.duplicated} records beyond the acknowledged readings`);
  want('no seq gap', s.seq_gaps === 0, `${s.seq_gaps} seqs missing: ${JSON.stringify(s.devices)}`);
  want('every record scored', s.unscored === 0, `${s.unscored} unscored records`);
  const cd = s.collector_devices || [];
  const reports =
    typeof s.collector_stats.missing_seqs === 'number' && cd.length > 0 && cd.every((d) => typeof d.missing === 'number');
  want(
    'collector reports no missing seqs',
    reports && s.collector_stats.missing_seqs === 0 && cd.every((d) => d.missing === 0),
    reports
      ? `missing_seqs ${s.collector_stats.missing_seqs}, devices ${JSON.stringify(cd)}`
      : 'the collector does not report missing_seqs (/api/stats) and missing (/api/devices) yet',
  );
  return c;
}

test(
  `chaos: ${READINGS} readings through ${CYCLES} fault cycles reach the collector exactly once`,
  { timeout: 240_000 + CYCLES * 30_000 + READINGS * 5 },
  async () => {
    const seed = chooseSeed();
    log(`CHAOS_SEED=${seed} CHAOS_READINGS=${READINGS} CHAOS_CYCLES=${CYCLES}`);
    const steps = plan(prng(seed), CYCLES);
    const port = await freePort();
    const collector = new Collector({ port, db: join(tempDir('edge-chaos-'), 'telemetry.sqlite'), staticDir: STATIC_DIR });
    const profile = new Profile(port);
    const stream = new Stream({ total: READINGS, rng: prng(seed ^ 0x9e3779b9), requestTimeoutMs: REQUEST_TIMEOUT_MS, log });
    const t0 = Date.now();
    const cyclesLog = [];
    const unsupported = new Set();
    let summary;
    try {
      await collector.start();
      stream.resume(await profile.open());
      for (const [i, step] of steps.entries()) {
        const quota = Math.ceil((READINGS - stream.granted) / (steps.length - i));
        const c0 = Date.now();
        stream.grant(quota, step.durationMs);
        await sleep(step.leadMs);
        const outcome = await runFault({ collector, profile, stream }, step);
        if (outcome.unsupported) unsupported.add(outcome.unsupported);
        const rest = step.durationMs - (Date.now() - c0);
        if (rest > 0) await sleep(rest);
        const settled = await stream.settled(REQUEST_TIMEOUT_MS + 5_000);
        const entry = { cycle: i + 1, kind: step.kind, ms: Date.now() - c0, sent: stream.sent, settled, ...outcome };
        cyclesLog.push(entry);
        log(JSON.stringify(entry));
      }
      await stream.stop();
      await collector.clear();
      const d0 = Date.now();
      const { drained, status } = await drain(profile);
      const drainMs = Date.now() - d0;
      const collectorStats = await collector.stats();
      const collectorDevices = (await collector.devices()).devices;
      await profile.close();
      await collector.kill();
      const acct = account(stream.acked, stream.sent, collector.records());
      const count = (xs) => xs.reduce((n, x) => n + x.n, 0);
      summary = {
        seed,
        readings: READINGS,
        cycles: steps.length,
        kinds: Object.fromEntries(KINDS.map((k) => [k, steps.filter((s) => s.kind === k).length])),
        plan_kinds: steps.map((s) => s.kind),
        ...acct,
        unique_devices: Object.keys(acct.devices).length,
        drained,
        drain_ms: drainMs,
        duration_ms: Date.now() - t0,
        requests: stream.requests,
        unanswered_requests: stream.unanswered.length,
        unanswered_readings: count(stream.unanswered),
        refused_readings: count(stream.errors),
        unknown_readings: count(stream.unknown),
        refusals: stream.errors.slice(0, 5),
        worker_stops: cyclesLog.filter((c) => c.kind === 'worker-stop').length,
        worker_stops_mid_flush: cyclesLog.filter((c) => c.kind === 'worker-stop' && c.midFlush).length,
        score_requests_cut_by_worker_stops: cyclesLog.reduce((n, c) => n + (c.inflightRequests || 0), 0),
        browser_opens: profile.opens,
        collector_restarts: collector.restarts,
        unsupported_faults: [...unsupported],
        outbox: status && status.outbox,
        collector_stats: collectorStats,
        collector_devices: collectorDevices,
        cycles_log: cyclesLog,
      };
    } finally {
      await stream.stop().catch(() => {});
      await profile.close().catch(() => {});
      await collector.kill().catch(() => {});
    }
    const result = checks(summary);
    summary.checks = result;
    summary.failed = Object.entries(result)
      .filter(([, why]) => why)
      .map(([name, why]) => `${name}: ${why}`);
    mkdirSync(join(SUMMARY, '..'), { recursive: true });
    writeFileSync(SUMMARY, `${JSON.stringify(summary, null, 2)}\n`);
    const { sent, received, lost, duplicated, seq_gaps: gaps, drain_ms: drainMs } = summary;
    log(
      `seed ${seed}: sent ${sent}, received ${received}, lost ${lost}, duplicated ${duplicated}, seq gaps ${gaps}, ` +
        `drain ${drainMs} ms, run ${summary.duration_ms} ms -> ${SUMMARY}`,
    );
    assert.deepEqual(summary.failed, [], `replay with CHAOS_SEED=${seed}`);
  },
);
