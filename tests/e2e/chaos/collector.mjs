// The chaos suite's hold on the real collector: start it with fault injection enabled, kill it
// (-9) and start it again on the same database and port, arm faults, and read back what it
// stored — straight from its SQLite file, so the accounting does not depend on the read API.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { api, setFault, startCollector, stopCollector } from '../harness.mjs';

/** A port the OS reports free on loopback. */
export async function freePort() {
  const server = createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/** One collector process at a time on a fixed port and database; `restart()` is a crash. */
export class Collector {
  constructor({ port, db, staticDir }) {
    Object.assign(this, { port, db, staticDir, proc: null, restarts: 0 });
  }

  async start() {
    this.proc = await startCollector({ port: this.port, db: this.db, staticDir: this.staticDir, faults: true });
  }

  /** SIGKILL (no shutdown path runs), then the same binary on the same database and port. */
  async restart(downMs = 0) {
    await this.kill();
    if (downMs) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
    this.restarts++;
  }

  async kill() {
    if (this.proc) await stopCollector(this.proc);
  }

  /** Arms `fault`; resolves false when this build refuses the mode (e.g. an unknown one). */
  async arm(fault) {
    try {
      await setFault(this.port, fault);
      return true;
    } catch (e) {
      if (/HTTP 4\d\d/.test(e.message)) return false;
      throw e;
    }
  }

  async clear() {
    await setFault(this.port, { mode: 'none' });
  }

  stats() {
    return api(this.port, '/api/stats');
  }

  devices() {
    return api(this.port, '/api/devices');
  }

  /** Every stored record as `{ device, seq, score }` (score as the f32 the device sent, or
   * null), read from the database file. */
  records() {
    const sql = "SELECT device_id, seq, CASE WHEN score IS NULL THEN '' ELSE printf('%.17g', score) END FROM records";
    const out = execFileSync('sqlite3', ['-separator', '\t', this.db, sql], {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [device, seq, score] = line.split('\t');
        return { device, seq: Number(seq), score: score === '' ? null : Math.fround(Number(score)) };
      });
  }
}
