#!/usr/bin/env bash
#! Sets up what is missing, builds the PWA and the collector in release mode, and runs the
#! collector on localhost: it serves the PWA and stores the telemetry the app sends.
#! Open the printed URL: the service worker loads the model and scores readings on-device.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
PORT="${PORT:-8080}"

trunk build --release --locked
cargo build --release --locked -p collector
# The collector serves the PWA and receives its telemetry (SQLite in ./data/).
exec target/release/collector --addr "127.0.0.1:${PORT}" --static dist --db data/telemetry.sqlite
