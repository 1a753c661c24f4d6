// A minimal W3C WebDriver client over fetch: enough to drive Debian's firefox-esr through
// geckodriver and WebKitGTK's MiniBrowser (Safari's engine) through WebKitWebDriver under a
// virtual display (Playwright drives neither stock browser, and npm's drivers download binaries).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/** The browsers this client drives: each driver's command and its new-session capabilities. */
export const BROWSERS = {
  firefox: {
    name: 'Firefox ESR',
    driver: (port) => [process.env.GECKODRIVER || 'geckodriver', ['--port', String(port), '--log', 'error']],
    capabilities: (profileDir) => ({
      browserName: 'firefox',
      'moz:firefoxOptions': {
        binary: process.env.FIREFOX || '/usr/bin/firefox-esr',
        args: ['-headless', '-profile', profileDir],
      },
    }),
  },
  webkit: {
    name: 'WebKit',
    // xvfb-run in a session of its own, so `stop` ends the display, driver and browser at once.
    driver: (port) => [fileURLToPath(new URL('../../scripts/webkit-webdriver.sh', import.meta.url)), [`--port=${port}`]],
    // MiniBrowser under automation keeps its website data in memory: every session is a fresh
    // profile, like the other browsers' temporary profile directories.
    capabilities: () => ({
      'webkitgtk:browserOptions': {
        binary: process.env.MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser',
        args: ['--automation'],
      },
    }),
  },
};

/** Starts `browser`'s driver in its own process group, so `stop` also ends the browser it launched. */
export async function startDriver(browser, port) {
  const [bin, args] = BROWSERS[browser].driver(port);
  const proc = spawn(bin, args, { stdio: 'ignore', detached: true });
  const stop = () => {
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(1000) })).ok) return { proc, stop };
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`${browser}'s WebDriver did not start`);
}

/** Starts geckodriver (see `startDriver`). */
export const startGeckodriver = (port) => startDriver('firefox', port);

export class Session {
  static async create(port, profileDir, browser = 'firefox') {
    // pageLoadStrategy none: callers poll for readiness themselves (a reload served by the
    // service worker with the server down must not block the WebDriver call).
    const caps = { capabilities: { alwaysMatch: { pageLoadStrategy: 'none', ...BROWSERS[browser].capabilities(profileDir) } } };
    const r = await fetch(`http://127.0.0.1:${port}/session`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify(caps),
      signal: AbortSignal.timeout(60_000),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(`new session: ${JSON.stringify(body)}`);
    return new Session(port, body.value.sessionId);
  }

  constructor(port, id) {
    this.base = `http://127.0.0.1:${port}/session/${id}`;
  }

  /** One WebDriver command; none may hang the test: each has a deadline. */
  async cmd(method, path, body, timeoutMs = 120_000) {
    const r = await fetch(this.base + path, {
      method,
      headers: JSON_HEADERS,
      body: body && JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = await r.json();
    if (!r.ok) throw new Error(`${path}: ${JSON.stringify(json.value)}`);
    return json.value;
  }

  navigate(url) {
    return this.cmd('POST', '/url', { url });
  }
  /** Runs `script` (an async function body receiving `args`) in the page; returns its result. */
  run(script, ...args) {
    const wrapped = `const done = arguments[arguments.length - 1];
      (async (args) => { ${script} })(Array.from(arguments).slice(0, -1))
        .then((v) => done({ ok: v }), (e) => done({ err: String(e && (e.code || '') + ' ' + e.message) }));`;
    return this.cmd('POST', '/execute/async', { script: wrapped, args }).then((v) => {
      if (v && 'err' in v) throw new Error(v.err);
      return v && v.ok;
    });
  }
  /** Ends the session, giving the browser 15 s to quit (the caller kills the process group after). */
  async close() {
    await fetch(this.base, { method: 'DELETE', signal: AbortSignal.timeout(15_000) }).catch(() => {});
  }
}
