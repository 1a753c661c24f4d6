#!/usr/bin/env bash
#! WebKitGTK's WebDriver (Safari's engine, as Debian ships it) under a virtual X display, for
#! wasm-bindgen-test-runner: `GECKODRIVER=scripts/webkit-webdriver.sh cargo test --target
#! wasm32-unknown-unknown`. The runner speaks the W3C dialect it uses for geckodriver, which
#! WebKitWebDriver accepts (it ignores the Firefox options and launches MiniBrowser), and passes
#! `--port=N`.
#!
#! The runner stops its driver with SIGKILL, which no trap sees: the display, the driver and
#! the browser run in their own session, and a watcher ends that session once this script is
#! gone, however it ended.
set -euo pipefail
setsid xvfb-run -a WebKitWebDriver "$@" &
group=$!
me=$$
(
  while kill -0 "$me" 2>/dev/null && kill -0 "$group" 2>/dev/null; do sleep 0.5; done
  kill -KILL -- "-$group" 2>/dev/null || true
) </dev/null >/dev/null 2>&1 &
wait "$group"
