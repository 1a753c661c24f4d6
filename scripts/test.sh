#!/usr/bin/env bash
#! The whole test suite, exactly as CI runs it: setup (idempotent), then the model pipeline's
#! tests, native Rust tests (the gateway's against a real mosquitto broker and collector), the
#! engine inside a real service worker in headless Chromium, headless Firefox ESR and WebKit, the
#! collector, and a build of the PWA.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

# Property tests draw from one fixed seed here, so a red run replays exactly; ./scripts/fuzz.sh
# runs them much longer from fresh seeds.
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261202}"

step() { printf '\n\033[1;32m=== %s\033[0m\n' "$*"; }

step "python: model pipeline"
(cd models && .venv/bin/python -m pytest -q)

step "format and lints: Rust (host and wasm32) and JS"
cargo fmt --all --check
prettier --check .
eslint --max-warnings 0 .
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown --all-targets -- -D warnings
# The small engine (no tract): what the browser loads first.
cargo clippy --locked -p edge-anomaly --all-targets --no-default-features -- -D warnings
cargo clippy --locked -p edge-anomaly --target wasm32-unknown-unknown --lib --no-default-features -- -D warnings

step "gateway: the sandbox module (the engine as a wasm32-wasip1 module for wasmtime)"
EDGE_SANDBOX_MODULE="$(gateway/build-sandbox.sh)"
export EDGE_SANDBOX_MODULE

# One invocation for the whole workspace: features unify once, so tract is compiled once for
# the engine's tests, the collector's tests (which use the device's encoder) and the examples.
step "rust: native tests (engine, app core, outbox, sync policy, collector, gateway: SQLite outbox, sandbox, MQTT end to end with mosquitto)"
cargo test --locked --workspace

step "rust: the small engine build (no tract): ONNX reader, contract, dense kernel, the same packages"
cargo test --locked -p edge-anomaly --no-default-features --lib --test engine_builds

step "otlp: every emitted body parses as the official ExportLogsServiceRequest"
rm -rf target/otlp-bodies
target/debug/examples/wire_size --dump target/otlp-bodies
(cd models && OTLP_BODIES_DIR=../target/otlp-bodies .venv/bin/python -m pytest -q otlp_schema_check.py)

step "rust: browser tests in a Chromium service worker"
CHROMEDRIVER=/usr/bin/chromedriver cargo test --locked -p edge-anomaly --target wasm32-unknown-unknown

step "rust: browser tests in a Firefox ESR service worker"
GECKODRIVER="$(command -v geckodriver)" cargo test --locked -p edge-anomaly --target wasm32-unknown-unknown

# WebKit (Safari's engine): WebKitGTK's MiniBrowser through WebKitWebDriver, which accepts the
# runner's geckodriver dialect; the wrapper gives it a virtual display.
step "rust: browser tests in a WebKit service worker"
GECKODRIVER="$PWD/scripts/webkit-webdriver.sh" cargo test --locked -p edge-anomaly --target wasm32-unknown-unknown

step "pwa: trunk build"
trunk build --locked

# A test that times out mid-await can leave its file's process alive: --test-force-exit ends it,
# and `timeout` bounds each browser run so a hang fails the suite instead of stalling it.
e2e() { timeout --kill-after=30 "$1" node --test --test-force-exit "${@:2}"; }

step "end to end: collector + headless Chromium (protocol fuzz, PWA, offline, app update, 10,000-reading outbox with faults, worker stops mid-stream, chaos, storage pressure, signed model updates, fleet page, first visit, the switch to the full engine)"
e2e 1800 tests/e2e/protocol.test.mjs tests/e2e/outbox.test.mjs tests/e2e/pwa.test.mjs \
  tests/e2e/update.test.mjs tests/e2e/worker.test.mjs tests/e2e/inflight.test.mjs \
  tests/e2e/chaos.test.mjs tests/e2e/pressure.test.mjs tests/e2e/model_update.test.mjs \
  tests/e2e/fleet.test.mjs tests/e2e/first_visit.test.mjs tests/e2e/general_engine.test.mjs

step "end to end: collector + headless Firefox ESR through geckodriver (load, score, offline, drain)"
GECKODRIVER="$(command -v geckodriver)" e2e 600 tests/e2e/firefox.test.mjs

step "end to end: collector + WebKit through WebKitWebDriver (load, score, offline, drain, signed updates)"
e2e 600 tests/e2e/webkit.test.mjs
