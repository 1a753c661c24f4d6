// Tiny static server for the benchmark: cross-origin isolation headers on every response (so
// performance.now() is fine-grained in the page, the worker and the service worker), the right
// MIME types for modules and wasm, no caching (every cold start compiles from scratch), and only
// the folders the benchmark needs.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm',
  '.json': 'application/json', '.map': 'application/json', '.csv': 'text/csv; charset=utf-8',
  '.onnx': 'application/octet-stream', '.md': 'text/markdown; charset=utf-8',
};
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};
// URL prefixes served from the repository root; everything else is 404.
const ALLOWED = ['/bench/', '/models/', '/node_modules/onnxruntime-web/dist/', '/target/bench/'];

/** Serves `root` on 127.0.0.1:`port` (0 = any free port); resolves to { url, close }. */
export async function startServer(root, port = 0) {
  const server = createServer(async (req, res) => {
    const send = (code, body) => { res.writeHead(code, { ...ISOLATION, 'Content-Type': 'text/plain' }); res.end(body); };
    let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path === '/' || path === '/bench') path = '/bench/index.html';
    if (path.endsWith('/')) path += 'index.html';
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep) || !ALLOWED.some((p) => path.startsWith(p))) return send(404, 'not found');
    try {
      const st = await stat(file);
      if (!st.isFile()) return send(404, 'not found');
      res.writeHead(200, { ...ISOLATION, 'Content-Type': MIME[extname(file)] || 'application/octet-stream',
        'Content-Length': st.size });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).pipe(res);
    } catch {
      send(404, 'not found');
    }
  });
  await new Promise((ok, fail) => { server.once('error', fail); server.listen(port, '127.0.0.1', ok); });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((ok) => { server.closeAllConnections(); server.close(ok); }),
  };
}

// `node bench/server.mjs [port]` serves the repository for poking at the page by hand.
if (import.meta.url === `file://${process.argv[1]}`) {
  const root = normalize(join(import.meta.dirname, '..'));
  const { url } = await startServer(root, Number(process.argv[2] || 8090));
  console.log(`serving ${root} at ${url}/bench/`);
}
