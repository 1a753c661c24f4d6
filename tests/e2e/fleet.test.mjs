// The collector's fleet view in headless Chromium: 60 devices' telemetry (scored readings, raw
// readings the collector scores itself with a published release, and refused conflicts) is
// posted over OTLP; the page at /fleet lists them 50 to a page, and every figure it shows is
// checked against /api/fleet; a device's plot draws exactly its scored records, the cloud-scored
// ones among them. The page runs under the collector's strict CSP with no violation.
/* global document -- in the functions given to page.waitForFunction, which run in the page */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, api, launchChromium, startCollector, stopCollector, tempDir, waitFor } from './harness.mjs';

const COLLECTOR = process.env.COLLECTOR_BIN || join(ROOT, 'target/debug/collector');
const golden = JSON.parse(readFileSync(join(ROOT, 'models/shuttle/golden.json'), 'utf8'));
const DEVICES = 60;

const kv = (key, value) => ({ key, value });
const str = (v) => ({ stringValue: v });

/** One OTLP/HTTP JSON logs body for `device`, as the device's encoder writes it. */
function body(device, records) {
  return {
    resourceLogs: [
      {
        resource: {
          attributes: [
            kv('service.name', str('edge-anomaly')),
            kv('device.id', str(device)),
            kv('service.version', str('0.1.0')),
          ],
        },
        scopeLogs: [
          {
            scope: { name: 'edge-anomaly' },
            logRecords: records.map((r) => {
              const attributes = [
                kv('edge.record_id', str(`${device}:${r.seq}`)),
                kv('edge.seq', { intValue: String(r.seq) }),
                kv('edge.scored', { boolValue: r.score !== undefined }),
              ];
              if (r.score !== undefined) {
                attributes.push(
                  kv('edge.score', { doubleValue: r.score }),
                  kv('edge.anomaly', { boolValue: r.anomaly }),
                  kv('edge.model_version', str('1.0.0+test')),
                );
              } else {
                attributes.push(
                  kv('edge.reading', { arrayValue: { values: r.reading.map((v) => ({ doubleValue: v })) } }),
                  kv('edge.unscored_reason', str('NOT_LOADED')),
                );
              }
              return {
                timeUnixNano: String((1_700_000_000_000 + r.seq) * 1e6),
                severityNumber: r.anomaly ? 13 : 9,
                body: str(r.score !== undefined ? 'score' : 'reading'),
                attributes,
              };
            }),
          },
        ],
      },
    ],
  };
}

async function post(port, payload) {
  const r = await fetch(`http://127.0.0.1:${port}/v1/logs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  assert.equal(r.status, 200, await r.text());
}

/** The figures the page must show for one /api/fleet entry, computed here independently. */
function expected(d) {
  const scored = d.count - d.unscored + d.cloud_scored;
  const anomalies = d.anomalies + d.cloud_anomalies;
  return {
    device: d.device_id,
    readings: String(d.count),
    anomalyRate: scored > 0 ? `${((100 * anomalies) / scored).toFixed(2)} %` : '—',
    model: d.model_version ?? '—',
    unscored: String(d.unscored - d.cloud_scored - d.cloud_failed),
    cloudScored: String(d.cloud_scored),
    deadLettered: String(d.conflicts),
    missing: String(d.unexplained_missing),
  };
}

async function shownRows(page) {
  return page.$$eval('#devices tbody tr', (rows) =>
    rows.map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.key, td.textContent]))),
  );
}

test("the fleet page lists every device with the API's figures and plots its scores", { timeout: 300_000 }, async () => {
  const port = 22_000 + Math.floor(Math.random() * 2000);
  const dir = tempDir('edge-fleet-');
  const releases = join(dir, 'releases');
  execFileSync(COLLECTOR, ['publish-model', join(ROOT, 'models/shuttle'), '--releases', releases]);
  const collector = await startCollector({ port, db: join(dir, 'telemetry.sqlite'), args: ['--releases', releases] });
  const browser = await launchChromium();
  try {
    for (let d = 0; d < DEVICES; d++) {
      const id = `sensor-${String(d).padStart(3, '0')}`;
      const records = Array.from({ length: 5 + (d % 7) }, (_, seq) => ({ seq, score: 0.001 * (seq + 1), anomaly: seq === 3 }));
      if (d === 7) golden.rows.forEach((reading, i) => records.push({ seq: records.length + i, reading }));
      await post(port, body(id, records));
      // The same ids with other content: refused as conflicts (the device dead-letters them).
      if (d % 20 === 0)
        await post(
          port,
          body(
            id,
            records.slice(0, 2).map((r) => ({ ...r, score: 9 })),
          ),
        );
    }
    await waitFor(
      'cloud scoring',
      async () => {
        const stats = await api(port, '/api/stats');
        return { done: stats.cloud_scored === golden.rows.length && stats.unscored_pending === 0, stats };
      },
      60_000,
    );

    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    const response = await page.goto(`http://127.0.0.1:${port}/fleet`);
    assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
    await page.waitForSelector('body[data-loaded=true]');

    const first = await api(port, '/api/fleet?limit=50');
    assert.equal(first.devices.length, 50);
    let shown = await shownRows(page);
    assert.equal(shown.length, 50);
    for (const [i, d] of first.devices.entries()) {
      const want = expected(d);
      for (const [key, value] of Object.entries(want)) assert.equal(shown[i][key], value, `${d.device_id} ${key}`);
    }

    await page.click('#next');
    await page.waitForFunction(() => document.querySelector('#page').textContent === 'page 2');
    const second = await api(port, `/api/fleet?limit=50&after=${first.next_after}`);
    assert.equal(second.next_after, null);
    shown = await shownRows(page);
    assert.deepEqual(
      shown.map((r) => r.device),
      second.devices.map((d) => d.device_id),
    );
    assert.equal(first.devices.length + second.devices.length, DEVICES);

    // Device 7 sent the golden rows unscored; the collector scored them, and the plot shows them.
    await page.click('#prev');
    await page.waitForFunction(() => document.querySelector('#page').textContent === 'page 1');
    const seven = first.devices.find((d) => d.device_id === 'sensor-007');
    assert.equal(seven.cloud_scored, golden.rows.length);
    await page.click('tr[data-device="sensor-007"]');
    await page.waitForFunction(() => document.querySelector('#series').dataset.points);
    const plot = await page.$eval('#series', (c) => ({ ...c.dataset }));
    const series = await api(port, '/api/devices/sensor-007/series?limit=500');
    assert.equal(Number(plot.points), series.points.filter((p) => p.score !== null).length);
    assert.equal(Number(plot.cloudPoints), golden.rows.length);
    const cloudAnomalies = series.points.filter((p) => p.scored_by === 'cloud' && p.anomaly).length;
    assert.equal(cloudAnomalies, golden.labels.filter((l) => l === 1).length, 'the golden anomalies are flagged');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    await stopCollector(collector);
  }
});
