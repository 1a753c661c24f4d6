// Tiny static server for the benchmark: cross-origin isolation headers on every response (so
// performance.now() is fine-grained in the page, the worker and the service worker), the right
// MIME types for modules and wasm, no caching (every cold start compiles from scratch), and only
// the folders the benchmark needs. It is also the telemetry endpoint of the outbox measurement:
// `/sink/down/v1/logs` answers 503 (the collector is away), `/sink/up/v1/logs` decodes the OTLP
// JSON batch, counts its records by id and answers 200 without storing anything. With a
// `collector` URL, `/collector/…` is forwarded to that real collector (same origin for the service
// worker, as when the collector serves the PWA itself); with `pkgDir`, `/target/bench/pkg/` is
// served from that directory (another build's wasm, for a side-by-side run).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { gunzipSync } from 'node:zlib';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.csv': 'text/csv; charset=utf-8',
  '.onnx': 'application/octet-stream',
  '.md': 'text/markdown; charset=utf-8',
};
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};
// URL prefixes served from the repository root (the service worker imports the product's
// worker/model_package.js); everything else is 404.
const ALLOWED = ['/bench/', '/models/', '/node_modules/onnxruntime-web/dist/', '/target/bench/', '/worker/'];

/** The bench's URL prefix of our wasm-bindgen output. */
const PKG_PREFIX = '/target/bench/pkg/';

/**
 * Serves `root` on 127.0.0.1:`port` (0 = any free port); resolves to { url, close }. Options:
 * `collector` (base URL to forward `/collector/…` to), `pkgDir` (directory served at PKG_PREFIX).
 */
export async function startServer(root, port = 0, { collector, pkgDir } = {}) {
  const sink = { requests: 0, records: 0, ids: new Set(), bytes: 0 };
  const server = createServer(async (req, res) => {
    const send = (code, body) => {
      res.writeHead(code, { ...ISOLATION, 'Content-Type': 'text/plain' });
      res.end(body);
    };
    if (req.url.startsWith('/sink/')) return telemetry(req, res, sink, send);
    if (req.url.startsWith('/collector/')) {
      return collector ? forward(req, res, `${collector}${req.url.slice('/collector'.length)}`, send) : send(404, 'no collector');
    }
    let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path === '/' || path === '/bench') path = '/bench/index.html';
    if (path.endsWith('/')) path += 'index.html';
    const base = pkgDir && path.startsWith(PKG_PREFIX) ? pkgDir : root;
    const file = normalize(join(base, base === root ? path : path.slice(PKG_PREFIX.length)));
    if (!file.startsWith(base + sep) || !ALLOWED.some((p) => path.startsWith(p))) return send(404, 'not found');
    try {
      const st = await stat(file);
      if (!st.isFile()) return send(404, 'not found');
      res.writeHead(200, {
        ...ISOLATION,
        'Content-Type': MIME[extname(file)] || 'application/octet-stream',
        'Content-Length': st.size,
      });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).pipe(res);
    } catch {
      send(404, 'not found');
    }
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ok);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** What `/sink/up` received so far: requests, records (with repeats), distinct record ids. */
    sinkStats: () => ({ requests: sink.requests, records: sink.records, distinct: sink.ids.size, wire_bytes: sink.bytes }),
    resetSink: () => Object.assign(sink, { requests: 0, records: 0, ids: new Set(), bytes: 0 }),
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(ok);
      }),
  };
}

/** Headers passed from the service worker to the collector, and back. */
const FORWARDED = ['content-type', 'content-encoding', 'idempotency-key', 'authorization'];
const RETURNED = ['content-type', 'retry-after'];

/** Forwards one request to `url` on the real collector and its answer back (no Origin: same site). */
function forward(req, res, url, send) {
  const headers = Object.fromEntries(FORWARDED.filter((h) => req.headers[h]).map((h) => [h, req.headers[h]]));
  const out = httpRequest(url, { method: req.method, headers }, (answer) => {
    const back = Object.fromEntries(RETURNED.filter((h) => answer.headers[h]).map((h) => [h, answer.headers[h]]));
    res.writeHead(answer.statusCode, { ...ISOLATION, ...back });
    answer.pipe(res);
  });
  out.on('error', (e) => send(502, `collector: ${e.message}`));
  req.pipe(out);
}

async function telemetry(req, res, sink, send) {
  if (req.method !== 'POST' || !/^\/sink\/(up|down)\/v1\/logs$/.test(req.url)) return send(404, 'not found');
  const chunks = [];
  for await (const c of req) chunks.push(c);
  if (req.url.startsWith('/sink/down/')) return send(503, 'collector away');
  let body = Buffer.concat(chunks);
  sink.bytes += body.length;
  try {
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    const doc = JSON.parse(body.toString('utf8'));
    sink.requests++;
    for (const rl of doc.resourceLogs || []) {
      for (const sl of rl.scopeLogs || []) {
        for (const lr of sl.logRecords || []) {
          sink.records++;
          const id = (lr.attributes || []).find((a) => a.key === 'edge.record_id');
          sink.ids.add(id ? JSON.stringify(id.value) : `anon-${sink.records}`);
        }
      }
    }
  } catch (e) {
    return send(400, `bad OTLP JSON: ${e.message}`);
  }
  res.writeHead(200, { ...ISOLATION, 'Content-Type': 'application/json' });
  res.end('{}');
}

// `node bench/server.mjs [port]` serves the repository for poking at the page by hand.
if (import.meta.url === `file://${process.argv[1]}`) {
  const root = normalize(join(import.meta.dirname, '..'));
  const { url } = await startServer(root, Number(process.argv[2] || 8090));
  console.log(`serving ${root} at ${url}/bench/`);
}
