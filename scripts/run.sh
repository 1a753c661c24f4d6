#!/usr/bin/env bash
#! Sets up what is missing, builds the PWA in release mode and serves it on localhost.
#! Open the printed URL: the service worker loads the model and scores readings on-device.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
PORT="${PORT:-8080}"

trunk build --release --locked
echo
echo "Edge Anomaly is at http://localhost:${PORT}/  (Ctrl-C to stop)"
exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory dist
