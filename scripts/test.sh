#!/usr/bin/env bash
#! The whole test suite, exactly as CI runs it: setup (idempotent), then the model pipeline's
#! tests, native Rust tests, the engine inside a real service worker in headless Chromium and
#! headless Firefox ESR, the collector, and a build of the PWA.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

step() { printf '\n\033[1;32m=== %s\033[0m\n' "$*"; }

step "python: model pipeline"
(cd models && .venv/bin/python -m pytest -q)

step "rust: format and lints (host and wasm32)"
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo clippy --locked --target wasm32-unknown-unknown --all-targets -- -D warnings

step "rust: native tests (engine, outbox, sync policy)"
cargo test --locked

step "otlp: every emitted body parses as the official ExportLogsServiceRequest"
rm -rf target/otlp-bodies
cargo run --locked --example wire_size -- --dump target/otlp-bodies
(cd models && OTLP_BODIES_DIR=../target/otlp-bodies .venv/bin/python -m pytest -q otlp_schema_check.py)

step "rust: collector tests"
cargo test --locked -p collector

step "rust: browser tests in a Chromium service worker"
CHROMEDRIVER=/usr/bin/chromedriver cargo test --locked -p edge-anomaly --target wasm32-unknown-unknown

step "rust: browser tests in a Firefox ESR service worker"
GECKODRIVER="$(command -v geckodriver)" cargo test --locked -p edge-anomaly --target wasm32-unknown-unknown

step "pwa: trunk build"
trunk build --locked

step "end to end: collector + headless Chromium (protocol fuzz, PWA, offline, app update, 10,000-reading outbox with faults, worker stops mid-stream, chaos, storage pressure, signed model updates)"
cargo build --locked -p collector
node --test tests/e2e/protocol.test.mjs tests/e2e/outbox.test.mjs tests/e2e/pwa.test.mjs \
  tests/e2e/update.test.mjs tests/e2e/worker.test.mjs tests/e2e/inflight.test.mjs \
  tests/e2e/chaos.test.mjs tests/e2e/pressure.test.mjs tests/e2e/model_update.test.mjs

step "end to end: collector + headless Firefox ESR through geckodriver (load, score, offline, drain)"
GECKODRIVER="$(command -v geckodriver)" node --test tests/e2e/firefox.test.mjs
