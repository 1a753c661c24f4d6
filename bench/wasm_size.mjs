#!/usr/bin/env node
// What each part of a wasm costs: runs twiggy (`cargo install twiggy`) on the file and sums its
// items' shallow sizes by crate (our crate by top-level module), largest first. Run it on a
// build with its name section (bench/builds.mjs --small-opt none leaves it; wasm-opt drops it).
// Usage: node bench/wasm_size.mjs [target/bench/pkg-small/edge_anomaly_bg.wasm] [--top 25]
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
const file = positionals[0] || 'target/bench/pkg-small/edge_anomaly_bg.wasm';
const r = spawnSync('twiggy', ['top', '-n', '1000000', '--format', 'csv', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
if (r.error || r.status !== 0) {
  console.error(
    `wasm_size: twiggy failed (${r.error ? r.error.code : r.stderr.trim()}); install it with \`cargo install twiggy\``,
  );
  process.exit(1);
}

/** The part an item belongs to: a custom section, data, or the crate (module, for ours). */
function part(name) {
  if (name.startsWith('"')) return `(${name.replace(/"/g, '').split(' subsection')[0]})`;
  if (name.startsWith('data segment')) return '(data: constants, strings, tables)';
  const path = name.replace(/^<+/, '');
  const crate = (path.match(/^[A-Za-z_][A-Za-z0-9_]*/) || [path.slice(0, 30)])[0];
  if (['core', 'alloc', 'std'].includes(crate)) return 'std (core, alloc; generics of other crates too)';
  if (crate === 'edge_anomaly') return `edge_anomaly::${path.match(/^edge_anomaly::([a-z_]+)/)?.[1] ?? '?'}`;
  return crate;
}

const [header, ...lines] = r.stdout.trim().split('\n');
const cols = header.split(',');
const [iName, iSize] = [cols.indexOf('Name'), cols.indexOf('ShallowSize')];
const sums = new Map();
let total = 0;
for (const line of lines) {
  // Names may hold commas: the size columns are numeric, the name is everything before them.
  const cells = line.split(',');
  const size = Number(cells[iSize - cols.length + cells.length]);
  const name = cells
    .slice(0, cells.length - (cols.length - 1))
    .join(',')
    .replace(/^"|"$/g, '');
  if (!Number.isFinite(size) || iName !== 0) continue;
  total += size;
  sums.set(part(name), (sums.get(part(name)) || 0) + size);
}
console.log(`${file}: ${total.toLocaleString('en-US')} bytes\n\n| part | bytes | share |\n|---|---|---|`);
for (const [name, bytes] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, Number(opt.top))) {
  console.log(`| ${name} | ${bytes.toLocaleString('en-US')} | ${((100 * bytes) / total).toFixed(1)} % |`);
}
