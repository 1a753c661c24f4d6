// The reading stream: lanes of concurrent `score` requests made through the page's own client
// (`client.js` `request`, so whatever it does about a worker that stops mid-request is what
// runs), paced by a token bucket the cycle driver fills. Every acknowledged reading's score
// goes into a ledger (a multiset keyed by the f32 score) that is later matched against the
// records the collector stored.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../harness.mjs';

const FEATURES = 9;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sampleRows() {
  const lines = readFileSync(join(ROOT, 'models/shuttle/sample.csv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => l.split(',').slice(0, FEATURES).map(Number));
}

/** Reading `i` of the run: a held-out shuttle row, shifted by a small step per pass over the
 * sample so that readings (and so their scores) differ across passes. */
export function readingSource() {
  const rows = sampleRows();
  return (i) => {
    const row = [...rows[i % rows.length]];
    row[0] += 0.125 * Math.floor(i / rows.length);
    return row;
  };
}

/** The key of a score in the ledger: the f32 value as a string. */
export const scoreKey = (score) => String(Math.fround(score));

/** Why a request produced no acknowledgement. */
const closedPage = (e) => /closed|Target crashed|Execution context was destroyed/i.test(String(e && e.message));

export class Stream {
  constructor({ total, lanes = 3, maxChunk = 20, rng, requestTimeoutMs = 30_000, log = () => {} }) {
    Object.assign(this, { total, lanes, maxChunk, rng, requestTimeoutMs, log });
    this.reading = readingSource();
    this.page = null;
    this.paused = true;
    this.next = 0; // index of the next reading to send
    this.granted = 0; // readings the driver has released so far
    this.bucket = { base: 0, at: 0, rate: 0 }; // tokens = base + (now - at) * rate, capped by granted
    this.inflight = new Set();
    this.acked = new Map(); // scoreKey -> count
    this.sent = 0; // readings acknowledged with a score
    this.requests = 0;
    this.unanswered = []; // { first, n, ms } requests not answered within requestTimeoutMs
    this.errors = []; // { first, n, code, message } requests the worker refused
    this.unknown = []; // { first, n } requests cut off by a closing page (fate unknown)
    this.latencies = [];
    this.stopped = false;
    this.done = Promise.all(Array.from({ length: lanes }, () => this.lane()));
  }

  /** Releases `n` more readings, spread evenly over the next `overMs`. */
  grant(n, overMs) {
    const now = Date.now();
    this.bucket = { base: this.tokens(now), at: now, rate: n / Math.max(1, overMs) };
    this.granted = Math.min(this.total, this.granted + n);
  }

  tokens(now = Date.now()) {
    const { base, at, rate } = this.bucket;
    return Math.min(this.granted, base + (now - at) * rate);
  }

  /** Waits until every granted reading has been sent and answered (or given up on). */
  async settled(timeoutMs) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.next >= this.granted && this.inflight.size === 0) return true;
      await sleep(50);
    }
    return false;
  }

  /** Waits (at most `ms`) until a score request is in flight; returns how many are. */
  async waitInflight(ms) {
    const end = Date.now() + ms;
    while (this.inflight.size === 0 && Date.now() < end) await sleep(2);
    return this.inflight.size;
  }

  /** Stops starting requests and waits for the ones in flight, so a page can close with none
   * unanswered. */
  async pause() {
    this.paused = true;
    const end = Date.now() + this.requestTimeoutMs + 1_000;
    while (this.inflight.size && Date.now() < end) await sleep(20);
  }

  resume(page) {
    this.page = page;
    this.paused = false;
  }

  async stop() {
    this.stopped = true;
    await this.done;
  }

  async lane() {
    while (!this.stopped) {
      const want = this.rng.int(1, this.maxChunk);
      const room = Math.min(this.granted, Math.floor(this.tokens())) - this.next;
      if (this.paused || !this.page || room <= 0 || this.next >= this.total) {
        await sleep(10);
        continue;
      }
      const n = Math.min(want, room);
      const first = this.next;
      this.next += n;
      const rows = [];
      for (let i = first; i < first + n; i++) rows.push(...this.reading(i));
      const job = this.send(first, n, rows);
      this.inflight.add(job);
      await job;
      this.inflight.delete(job);
    }
  }

  async send(first, n, rows) {
    this.requests++;
    const page = this.page;
    const t0 = Date.now();
    let timer;
    const timeout = new Promise((ok) => {
      timer = setTimeout(() => ok({ timeout: true }), this.requestTimeoutMs);
    });
    const call = page
      .evaluate(
        async ({ rows, features }) => {
          const { request } = await import('./client.js');
          try {
            const r = await request('score', { rows: Float32Array.from(rows), features });
            return { scores: Array.from(r.scores) };
          } catch (e) {
            return { code: e.code || 'ERROR', message: String(e.message || e) };
          }
        },
        { rows, features: FEATURES },
      )
      .catch((e) => ({ closed: closedPage(e), message: String(e.message || e) }));
    const r = await Promise.race([call, timeout]);
    clearTimeout(timer);
    const ms = Date.now() - t0;
    if (r.timeout) {
      this.unanswered.push({ first, n, ms });
      this.log(`request for readings ${first}..${first + n - 1} unanswered after ${ms} ms`);
    } else if (r.scores) {
      if (r.scores.length !== n) throw new Error(`asked ${n} scores, got ${r.scores.length}`);
      for (const s of r.scores) {
        const k = scoreKey(s);
        this.acked.set(k, (this.acked.get(k) || 0) + 1);
      }
      this.sent += n;
      this.latencies.push(ms);
    } else if (r.closed) {
      this.unknown.push({ first, n });
    } else {
      this.errors.push({ first, n, code: r.code, message: r.message });
      this.log(`request for readings ${first}..${first + n - 1} refused: ${r.code} ${r.message}`);
    }
  }
}
