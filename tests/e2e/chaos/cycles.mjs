// The chaos cycles: what can go wrong around a streaming page, one kind per cycle. The plan (kinds
// and their parameters) is drawn up front from the seed, so a run replays from its seed; only
// the timing of the browser and the collector differs between runs.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const KINDS = Object.freeze([
  'worker-stop', // CDP stops the service worker while a flush is at the collector
  'browser-restart', // the browser closes mid-flush and reopens on the same profile
  'offline', // the network goes away and comes back
  'status-503', // the collector answers 503 + Retry-After
  'status-429', // the collector answers 429 + Retry-After
  'reset', // the collector stores the batch, then resets the connection (ack lost)
  'reset-before-store', // the collector resets the connection without storing
  'hang', // the collector never answers
  'collector-restart', // kill -9 and start again on the same database and port
]);

/** `cycles` cycles: every kind once (shuffled) while there is room, then random kinds. */
export function plan(rng, cycles) {
  const kinds = [];
  while (kinds.length < cycles) {
    kinds.push(...(kinds.length === 0 || cycles - kinds.length >= KINDS.length ? rng.shuffle(KINDS) : [rng.pick(KINDS)]));
  }
  return kinds.slice(0, cycles).map((kind) => ({
    kind,
    durationMs: rng.int(1_500, 4_000), // how long readings stream around the fault
    leadMs: rng.int(100, 900), // stream this long before the fault starts
    delayMs: rng.int(600, 1_500), // a slow collector answer, so "mid-flush" is certain
    stopAfterMs: rng.int(50, 400), // how far into that answer the stop comes
    count: rng.int(1, 3), // requests the collector fault applies to
    retryAfter: rng.int(1, 2), // seconds
    downMs: rng.int(200, 2_000), // offline / collector-down time
    holdMs: rng.int(500, 2_000), // how long a hang is held before the fault is cleared
  }));
}

/** Waits until the collector has injected `n` more faults than `before`, or `ms` passed. Every
 * second it sends what the page sends when the network comes back (`online`: the worker cuts
 * its own backoff short and flushes; a server's Retry-After still holds), so the fault meets a
 * flush instead of waiting for the worker's next timer. */
async function injected(ctx, before, n, ms) {
  const end = Date.now() + ms;
  let nudged = 0;
  for (;;) {
    const now = (await ctx.collector.stats()).requests.faulted;
    if (now - before >= n || Date.now() >= end) return now - before;
    if (Date.now() - nudged >= 1_000) {
      nudged = Date.now();
      await ctx.profile.post('online');
    }
    await sleep(50);
  }
}

/** `/v1/logs` requests this collector process has seen, whatever their outcome. */
async function requestsSeen(ctx) {
  const { ok, rejected, faulted } = (await ctx.collector.stats()).requests;
  return ok + rejected + faulted;
}

/** Polls `cond` until true or `ms` passed, nudging the worker each second as `injected` does. */
async function until(ctx, cond, ms) {
  const end = Date.now() + ms;
  let nudged = 0;
  while (Date.now() < end) {
    if (await cond()) return true;
    if (Date.now() - nudged >= 1_000) {
      nudged = Date.now();
      await ctx.profile.post('online');
    }
    await sleep(100);
  }
  return false;
}

/** Makes a flush reach the collector and stay there `delayMs`; resolves once it is there (true)
 * or after 5 s without one (false). Used to cut a flush off in the middle. */
async function slowFlushInFlight(ctx, step) {
  const before = (await ctx.collector.stats()).requests.faulted;
  if (!(await ctx.collector.arm({ mode: 'delay', delay_ms: step.delayMs, count: 1 }))) return false;
  const hit = await injected(ctx, before, 1, 5_000);
  if (!hit) await ctx.collector.clear();
  return hit > 0;
}

/** A collector fault kept until it fired `count` times (at most 8 s), then cleared. */
async function collectorFault(ctx, step, fault, holdMs = 0) {
  const before = (await ctx.collector.stats()).requests.faulted;
  if (!(await ctx.collector.arm(fault))) return { unsupported: fault.mode };
  const hits = await injected(ctx, before, fault.count || 1, 8_000);
  if (holdMs) await sleep(holdMs);
  await ctx.collector.clear();
  return { hits };
}

/** Runs one cycle's fault; returns what happened (for the summary). */
export async function runFault(ctx, step) {
  const { collector, profile, stream } = ctx;
  switch (step.kind) {
    case 'worker-stop': {
      const midFlush = await slowFlushInFlight(ctx, step);
      await sleep(step.stopAfterMs);
      const inflightRequests = await stream.waitInflight(1_000); // cut a score request off too
      await profile.stopWorker();
      await collector.clear();
      return { midFlush, inflightRequests };
    }
    case 'browser-restart': {
      const midFlush = await slowFlushInFlight(ctx, step);
      await stream.pause(); // a closing page cannot learn the fate of its own requests
      await profile.close();
      await collector.clear();
      const t0 = Date.now();
      stream.resume(await profile.open());
      return { midFlush, reopenMs: Date.now() - t0 };
    }
    case 'offline': {
      await profile.setOffline(true);
      await profile.post('flush');
      await sleep(step.downMs);
      await profile.setOffline(false);
      return {};
    }
    case 'status-503':
    case 'status-429':
      return collectorFault(ctx, step, {
        mode: 'status',
        status: Number(step.kind.slice(-3)),
        retry_after: step.retryAfter,
        count: step.count,
      });
    case 'reset':
      return collectorFault(ctx, step, { mode: 'reset', count: step.count });
    case 'reset-before-store':
      return collectorFault(ctx, step, { mode: 'reset_before_store', count: step.count });
    case 'hang': {
      const out = await collectorFault(ctx, step, { mode: 'hang', count: 1 }, step.holdMs);
      if (out.unsupported || !out.hits) return out;
      // The hung request holds the worker's flush until the client's own deadline aborts it;
      // the cycle lasts until a new request reaches the collector (the client recovered).
      const t0 = Date.now();
      const seen = await requestsSeen(ctx);
      const recovered = await until(ctx, async () => (await requestsSeen(ctx)) > seen, 60_000);
      return { ...out, recovered, recoveredMs: Date.now() - t0 };
    }
    case 'collector-restart': {
      const midFlush = await slowFlushInFlight(ctx, step);
      await sleep(step.stopAfterMs);
      await collector.restart(step.downMs);
      return { midFlush };
    }
    default:
      throw new Error(`unknown cycle kind ${step.kind}`);
  }
}
