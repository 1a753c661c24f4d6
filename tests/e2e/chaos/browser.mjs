// The chaos suite's hold on the browser: one Chromium profile directory that is opened, closed
// and opened again (a browser restart keeps IndexedDB, the service worker and the device id),
// plus the Chrome DevTools Protocol calls that stop the service worker.
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, openApp, tempDir } from '../harness.mjs';

export class Profile {
  constructor(port) {
    Object.assign(this, { port, dir: tempDir('edge-chaos-profile-'), context: null, page: null, cdp: null });
    this.opens = 0;
  }

  async open() {
    this.context = await chromium.launchPersistentContext(this.dir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: CHROMIUM_ARGS,
    });
    ({ page: this.page } = await openApp(this.context, this.port));
    this.cdp = await this.context.newCDPSession(this.page);
    await this.cdp.send('ServiceWorker.enable');
    this.opens++;
    return this.page;
  }

  async close() {
    const context = this.context;
    this.context = this.page = this.cdp = null;
    if (context) await context.close();
  }

  /** Stops every service worker of the profile at once, as the browser does to an idle or
   * misbehaving one; whatever it was doing (a flush, a score request) is cut off. */
  async stopWorker() {
    await this.cdp.send('ServiceWorker.stopAllWorkers');
  }

  /** Emulates losing the network (page and worker requests fail) or getting it back. */
  async setOffline(offline) {
    await this.context.setOffline(offline);
  }

  /** Posts a protocol message the page client does not track (its answer is dropped): a
   * flush request that must not wait for an answer from a worker about to be stopped. */
  async post(type) {
    await this.page.evaluate(async (type) => {
      const { PROTOCOL_VERSION } = await import('./protocol.js');
      const worker = navigator.serviceWorker.controller;
      if (worker) worker.postMessage({ v: PROTOCOL_VERSION, id: `chaos-${Date.now()}`, type });
    }, type);
  }
}
