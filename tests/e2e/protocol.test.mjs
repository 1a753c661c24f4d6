// The page <-> worker message protocol and the page's input parsing, in node (pure modules, no
// browser): property tests with fast-check over arbitrary messages, plus the cases found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ROOT, tempDir } from './harness.mjs';

// www/sources.js imports './protocol.js' as the built app lays them out: copy both side by side.
const dir = tempDir('edge-protocol-');
for (const [from, to] of [
  ['worker/protocol.js', 'protocol.js'],
  ['www/sources.js', 'sources.js'],
  ['worker/start_retry.js', 'start_retry.js'],
])
  copyFileSync(join(ROOT, from), join(dir, to));
const P = await import(join(dir, 'protocol.js'));
const S = await import(join(dir, 'sources.js'));
const { retryingStart } = await import(join(dir, 'start_retry.js'));

const RUNS = Number(process.env.PROTOCOL_FUZZ_RUNS || 20_000);
const CODES = new Set(Object.values(P.ERR));
let tried = 0;

function assertTyped(out, msg) {
  assert.equal(typeof out, 'object');
  if (out.ok) return;
  assert.equal(out.reply.ok, false);
  assert.equal(out.reply.v, P.PROTOCOL_VERSION);
  assert.ok(CODES.has(out.reply.error.code), `untyped code ${out.reply.error.code} for ${JSON.stringify(msg)}`);
  assert.equal(typeof out.reply.error.message, 'string');
  // The reply goes back through postMessage: it must survive structured cloning.
  structuredClone(out.reply);
}

// Messages shaped like the real ones, with every field drawn from hostile values.
const value = fc.oneof(
  fc.double(),
  fc.constantFrom(1e39, -1e39, 3.4028235e38, 3.4028234663852886e38, NaN, Infinity, -0),
  fc.integer(),
  fc.string(),
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
);
const rows = fc.oneof(
  fc.array(value, { maxLength: 40 }),
  fc.float32Array({ maxLength: 40 }),
  fc.anything(),
  fc.array(fc.double(), { maxLength: 40 }),
);
const message = fc.record(
  {
    v: fc.oneof(fc.constant(P.PROTOCOL_VERSION), fc.anything()),
    id: fc.oneof(fc.nat(), fc.string(), fc.anything()),
    type: fc.oneof(fc.constantFrom(...Object.values(P.MSG)), fc.string(), fc.anything()),
    rows,
    features: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.anything()),
    ids: fc.oneof(fc.array(fc.string({ maxLength: 140 }), { maxLength: 12 }), fc.anything()),
    endpoint: fc.oneof(fc.webUrl(), fc.string(), fc.anything()),
    token: fc.oneof(fc.string(), fc.anything()),
  },
  { requiredKeys: [] },
);

test('arbitrary messages never throw and always get a typed answer', () => {
  for (const arb of [fc.anything(), message]) {
    fc.assert(
      fc.property(arb, fc.option(fc.integer({ min: 1, max: 16 })), (msg, features) => {
        tried++;
        assertTyped(P.parseRequest(msg, { defaultFeatures: features ?? undefined }), msg);
      }),
      { numRuns: RUNS },
    );
  }
  console.log(JSON.stringify({ protocol_messages_tried: tried }));
});

test('an accepted score request carries only values float32 holds, one id per reading', () => {
  fc.assert(
    fc.property(message, (msg) => {
      const out = P.parseRequest({ ...msg, v: P.PROTOCOL_VERSION, type: P.MSG.SCORE }, { defaultFeatures: 3 });
      if (!out.ok) return;
      assert.ok(out.rows instanceof Float32Array);
      assert.equal(out.rows.length % out.features, 0);
      const source = Array.from(msg.rows);
      out.rows.forEach((x, i) => assert.ok(Object.is(x, Math.fround(source[i])), `value ${i} changed`));
      for (const x of source) assert.ok(!P.overflowsF32(x));
      if (out.ids) assert.equal(out.ids.length, out.rows.length / out.features);
    }),
    { numRuns: RUNS },
  );
});

test('found cases: overflow, NaN, bad envelope', () => {
  const base = { v: P.PROTOCOL_VERSION, id: 1, type: P.MSG.SCORE, features: 2 };
  const cases = [
    [{ ...base, rows: [1, 1e39] }, P.ERR.OUT_OF_RANGE],
    [{ ...base, rows: [-3.5e38, 0] }, P.ERR.OUT_OF_RANGE],
    [{ ...base, rows: [1, '2'] }, P.ERR.BAD_ROWS],
    [{ ...base, rows: [1, 2, 3] }, P.ERR.BAD_FEATURES],
    [{ ...base, rows: [1, 2], ids: ['a', 'b'] }, P.ERR.BAD_IDS],
    [{ ...base, rows: [] }, P.ERR.BAD_ROWS],
    [{ ...base, v: 2, rows: [1, 2] }, P.ERR.VERSION_MISMATCH],
    [{ ...base, type: 'ready' }, P.ERR.UNKNOWN_TYPE],
    [{ ...base, id: {} }, P.ERR.BAD_MESSAGE],
    [{ ...base, type: P.MSG.CONFIGURE, endpoint: 'ftp://x' }, P.ERR.BAD_CONFIG],
    [{ ...base, type: P.MSG.SEND_READINGS, on: 'yes' }, P.ERR.BAD_CONFIG],
    [{ ...base, type: P.MSG.SEND_READINGS }, P.ERR.BAD_CONFIG],
    [Object.create(null), P.ERR.BAD_MESSAGE],
    [{ ...base, v: { toString: 1 } }, P.ERR.VERSION_MISMATCH],
  ];
  for (const [msg, code] of cases) {
    const out = P.parseRequest(msg, { defaultFeatures: 2 });
    assert.equal(out.ok, false, JSON.stringify(msg));
    assert.equal(out.reply.error.code, code, JSON.stringify(msg));
  }
  // Non-finite values are readings (a sensor dropped out), recorded unscored: not refused.
  const nan = P.parseRequest({ ...base, rows: [NaN, Infinity], ids: ['r-1'] });
  assert.equal(nan.ok, true);
  assert.deepEqual(P.parseRequest({ ...base, type: P.MSG.SEND_READINGS, on: true }), {
    ok: true,
    type: P.MSG.SEND_READINGS,
    on: true,
  });
  // The largest float32 itself is fine.
  assert.equal(P.parseRequest({ ...base, rows: [P.F32_MAX, -P.F32_MAX] }).ok, true);
  // A refused score request says how many readings it held, so they are counted.
  assert.equal(P.parseRequest({ ...base, rows: [1, 1e39, 2, 3] }).readings, 2);
});

test('typed readings and CSV cells that float32 cannot hold are refused with a message', () => {
  assert.deepEqual(S.parseReading('1, 2.5,-3', 3), [1, 2.5, -3]);
  assert.throws(() => S.parseReading('1,1e39,3', 3), /value 2: 1e39 is beyond the range/);
  assert.throws(() => S.parseReading('1,x,3', 3), /value 2: "x" is not a number/);
  assert.throws(() => S.parseReading('1,,3', 3), /value 2/);
  assert.throws(() => S.parseReading('1,2', 3), /expected 3 values, got 2/);
  assert.ok(Number.isNaN(S.parseReading('1,NaN,3', 3)[1]), 'NaN is a missing value, recorded unscored');
  const rows = S.parseCsv('a,b\n1,2\n3,4\n', ['a', 'b']);
  assert.deepEqual(
    rows.map((r) => r.row),
    [
      [1, 2],
      [3, 4],
    ],
  );
  assert.throws(() => S.parseCsv('a,b\n1,2\n3,-1e39\n', ['a', 'b']), /line 3, column b: -1e39 is beyond the range/);
  assert.throws(() => S.parseCsv('a,b\n1,oops\n', ['a', 'b']), /line 2, column b/);
  fc.assert(
    fc.property(fc.double(), (x) => {
      const out = S.parseValue(String(x));
      if (Number.isNaN(x)) assert.ok(Number.isNaN(out.value));
      else if (!Number.isFinite(x) || Math.abs(x) > P.F32_MAX) assert.ok(out.error);
      else assert.ok(out.value === x, `${x} read back as ${out.value}`); // -0 prints as "0"
    }),
    { numRuns: RUNS },
  );
});

test('a failed start is retried by the next call after the backoff, not remembered for good', async () => {
  let clock = 0,
    calls = 0;
  const started = retryingStart(
    async () => {
      calls++;
      if (calls < 3) throw new Error(`start ${calls} failed`);
      return 'app';
    },
    { now: () => clock, baseMs: 1000, maxMs: 4000 },
  );
  await assert.rejects(started(), /start 1 failed/);
  await assert.rejects(started(), /start 1 failed/); // within the backoff: the same failure
  assert.equal(calls, 1);
  clock = 1000;
  await assert.rejects(started(), /start 2 failed/);
  clock = 2500; // the second wait is 2 s
  await assert.rejects(started(), /start 2 failed/);
  assert.equal(calls, 2);
  clock = 3000;
  assert.equal(await started(), 'app');
  assert.equal(await started(), 'app');
  assert.equal(calls, 3, 'a success is kept');
  // Concurrent first calls share one start.
  let n = 0;
  const once = retryingStart(async () => ++n);
  await Promise.all([once(), once()]);
  assert.equal(n, 1);
});
