// CPU profiles of the page's service worker through the Chrome DevTools protocol: where the
// outbox path spends its time (`node bench/run.mjs --outbox-only --profile DIR`). Playwright has
// no CDP session for service workers, so this attaches to the worker's target from the browser
// session and speaks to it with Target.sendMessageToTarget.
import { writeFileSync } from 'node:fs';

/** Attaches the profiler to the browser's (single) service worker; resolves to { start, stop }. */
export async function serviceWorkerProfiler(browser) {
  const cdp = await browser.newBrowserCDPSession();
  const { targetInfos } = await cdp.send('Target.getTargets');
  const sw = targetInfos.find((t) => t.type === 'service_worker');
  if (!sw) throw new Error('profile: no service worker target');
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: sw.targetId, flatten: false });
  let id = 0;
  const waiting = new Map();
  cdp.on('Target.receivedMessageFromTarget', ({ sessionId: s, message }) => {
    if (s !== sessionId) return;
    const msg = JSON.parse(message);
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.error) w.fail(new Error(`profile: ${msg.error.message}`));
    else w.ok(msg.result);
  });
  const send = (method, params = {}) =>
    new Promise((ok, fail) => {
      id += 1;
      waiting.set(id, { ok, fail });
      cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) }).catch(fail);
    });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: 100 });
  /** The worker's `performance.now()` when the profile started, to place its samples. */
  let origin = 0;
  return {
    async start() {
      await send('Profiler.start');
      ({
        result: { value: origin },
      } = await send('Runtime.evaluate', { expression: 'performance.now()' }));
    },
    /**
     * Stops and writes `file` (a .cpuprofile DevTools opens). Returns the self-time summary of
     * each span of `spans` ({ label: [from, to] } in the worker's `performance.now()` ms).
     */
    async stop(file, spans) {
      const { profile } = await send('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      return Object.fromEntries(
        Object.entries(spans).map(([label, [from, to]]) => [
          label,
          selfTimes(profile, (us) => {
            const t = origin + (us - profile.startTime) / 1000;
            return t >= from && t < to;
          }),
        ]),
      );
    },
  };
}

/** Self time by function (name and script) of the samples `keep` accepts, largest first. */
export function selfTimes(profile, keep, top = 25) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const ms = new Map();
  const dt = profile.timeDeltas;
  let at = profile.startTime;
  let total = 0;
  profile.samples.forEach((nodeId, i) => {
    at += dt[i];
    if (!keep(at)) return;
    const f = nodes.get(nodeId).callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').pop() : ''}`.trim();
    const t = (dt[i + 1] ?? 0) / 1000;
    total += t;
    ms.set(key, (ms.get(key) ?? 0) + t);
  });
  const top_ = [...ms.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, t]) => ({ name, ms: Math.round(t * 10) / 10, share: Math.round((t / total) * 1000) / 10 }));
  return { total_ms: Math.round(total), top: top_ };
}
