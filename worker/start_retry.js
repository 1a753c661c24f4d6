// A start that is retried after it fails, with backoff, instead of a failure remembered for the
// worker's whole life: the first call after the wait retries; calls during it get the failure.
// Pure (clock injected), so node tests it without a browser.

/** Wraps `start` (a function returning a promise). The returned function gives the running or
 * finished start; after a failure, the next call at least `delay(failures)` ms later starts
 * again. `delay` defaults to 1 s doubling up to 1 min. */
export function retryingStart(start, { now = () => Date.now(), baseMs = 1000, maxMs = 60_000 } = {}) {
  let current = null; // the start in progress or succeeded
  let failures = 0;
  let lastError = null;
  let retryAt = 0;
  return function started() {
    if (current) return current;
    if (lastError && now() < retryAt) return Promise.reject(lastError);
    let attempt;
    try {
      attempt = Promise.resolve(start());
    } catch (e) {
      attempt = Promise.reject(e);
    }
    current = attempt.then(
      (value) => {
        failures = 0;
        lastError = null;
        return value;
      },
      (e) => {
        failures++;
        lastError = e;
        retryAt = now() + Math.min(maxMs, baseMs * 2 ** (failures - 1));
        current = null;
        throw e;
      },
    );
    return current;
  };
}
