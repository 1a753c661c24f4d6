#!/usr/bin/env bash
#! Builds the full engine (the crate with tract, for models the dense kernel does not cover) as
#! `edge-anomaly-full.js` + `edge-anomaly-full_bg.wasm` beside the small engine Trunk builds from
#! www/index.html. The service worker fetches it only when a model needs it (worker/engine.js).
#! Trunk runs this after each build (Trunk.toml), with its profile; by hand:
#! `scripts/general-engine.sh dist [release|debug]`.
set -euo pipefail
out="${1:-${TRUNK_STAGING_DIR:?give the directory, or run as a Trunk hook}}"
profile="${2:-${TRUNK_PROFILE:-debug}}"
flags=(--locked --lib --target wasm32-unknown-unknown)
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}"
wasm="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$profile/edge_anomaly.wasm"
wasm-bindgen --target web --no-typescript --out-name edge-anomaly-full --out-dir "$out" "$wasm"
