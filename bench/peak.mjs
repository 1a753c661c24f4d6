#!/usr/bin/env node
// The multiply-add rate wasm SIMD128 reaches in this machine's Chromium, as a ceiling for the
// dense kernel (src/engine/dense/kernel.rs). Each probe is one loop with the kernel's shape:
// per trip, R broadcasts (`v128.load32_splat`) and C weight vectors (`v128.load`) from a small
// buffer that stays in L1, and R × C `f32x4.mul` + `f32x4.add` into register accumulators; the
// `madd` probes use relaxed SIMD's `f32x4.relaxed_madd` (one fused instruction where the CPU has
// FMA). A chain of dependent `i32.add`s estimates the clock (one add per cycle). Best of
// `--reps` runs, as G lane multiply-adds/s (four per vector operation).
// Usage: node bench/peak.mjs [--reps 7]
import { parseArgs } from 'node:util';
import binaryen from 'binaryen';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../tests/e2e/harness.mjs';

const { values: opt } = parseArgs({ options: { reps: { type: 'string', default: '7' } } });
const SHAPES = [
  [4, 2],
  [2, 4],
  [4, 3],
  [8, 1],
];

function probe(name, R, C, madd) {
  const n = R * C;
  const locals = [
    ...Array.from({ length: n }, (_, i) => `(local $a${i} v128)`),
    ...Array.from({ length: R }, (_, r) => `(local $x${r} v128)`),
    ...Array.from({ length: C }, (_, c) => `(local $w${c} v128)`),
  ];
  const body = [];
  for (let r = 0; r < R; r++) body.push(`(local.set $x${r} (v128.load32_splat offset=${r * 4} (local.get $p)))`);
  for (let c = 0; c < C; c++) body.push(`(local.set $w${c} (v128.load offset=${1024 + c * 16} (local.get $p)))`);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      body.push(
        madd
          ? `(local.set $a${i} (f32x4.relaxed_madd (local.get $x${r}) (local.get $w${c}) (local.get $a${i})))`
          : `(local.set $a${i} (f32x4.add (f32x4.mul (local.get $x${r}) (local.get $w${c})) (local.get $a${i})))`,
      );
    }
  }
  let sum = '(local.get $a0)';
  for (let i = 1; i < n; i++) sum = `(f32x4.add ${sum} (local.get $a${i}))`;
  return `(func (export "${name}") (param $trips i32) (result f32) (local $p i32) ${locals.join(' ')}
    (loop $l ${body.join(' ')}
      (local.set $p (i32.and (i32.add (local.get $p) (i32.const 16)) (i32.const 511)))
      (br_if $l (local.tee $trips (i32.sub (local.get $trips) (i32.const 1)))))
    (f32x4.extract_lane 0 ${sum}))`;
}

function wasm() {
  const funcs = SHAPES.flatMap(([R, C]) => [probe(`mul_add ${R}x${C}`, R, C, false), probe(`madd ${R}x${C}`, R, C, true)]);
  const chain = Array.from({ length: 64 }, () => '(local.set $v (i32.add (local.get $v) (local.get $y)))').join(' ');
  funcs.push(`(func (export "clock") (param $trips i32) (param $y i32) (result i32) (local $v i32)
    (loop $l ${chain} (br_if $l (local.tee $trips (i32.sub (local.get $trips) (i32.const 1))))) (local.get $v))`);
  const mod = binaryen.parseText(`(module (memory 1) ${funcs.join('\n')})`);
  mod.setFeatures(binaryen.Features.SIMD128 | binaryen.Features.RelaxedSIMD);
  if (!mod.validate()) throw new Error('probe module does not validate');
  return [...mod.emitBinary()];
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage();
  const result = await page.evaluate(
    async ([bytes, reps]) => {
      const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes));
      const out = {};
      for (let rep = 0; rep < reps; rep++) {
        for (const [name, f] of Object.entries(instance.exports)) {
          if (name === 'clock') {
            const trips = 5_000_000;
            f(1000, 3);
            const t = performance.now();
            f(trips, 3);
            const s = (performance.now() - t) / 1000;
            out['clock, GHz (dependent adds/s)'] = Math.max(out['clock, GHz (dependent adds/s)'] || 0, (trips * 64) / s / 1e9);
          } else {
            const [R, C] = name.split(' ')[1].split('x').map(Number);
            const trips = Math.round(40_000_000 / (R * C));
            f(1000);
            const t = performance.now();
            f(trips);
            const s = (performance.now() - t) / 1000;
            out[name] = Math.max(out[name] || 0, (trips * R * C * 4) / s / 1e9);
          }
        }
      }
      return out;
    },
    [wasm(), Number(opt.reps)],
  );
  console.log(`Chromium ${browser.version()}, best of ${opt.reps}; G lane multiply-adds/s (clock: GHz)`);
  for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(32)} ${v.toFixed(2)}`);
} finally {
  await browser.close();
}
