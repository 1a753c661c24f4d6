#!/usr/bin/env bash
#! Finishes the engine builds after Trunk has built the small one (www/index.html: the crate
#! without tract) into the staging directory:
#!  - release only: shrinks the small engine with wasm-opt -Oz (scripts/shrink-wasm.sh; skipped
#!    with a note where binaryen is missing);
#!  - builds the full engine (the crate with tract, for models the dense kernel does not cover)
#!    beside it as `edge-anomaly-full.js` + `edge-anomaly-full_bg.wasm`, which the service worker
#!    fetches only when a model needs it (worker/engine.js).
#! Trunk runs this after each build (Trunk.toml), with its profile; by hand:
#! `scripts/engine-builds.sh dist [release|debug]`.
set -euo pipefail
out="${1:-${TRUNK_STAGING_DIR:?give the directory, or run as a Trunk hook}}"
profile="${2:-${TRUNK_PROFILE:-debug}}"

if [ "$profile" = release ]; then
  scripts/shrink-wasm.sh "$out/edge-anomaly_bg.wasm" ||
    echo "engine-builds: the small engine is not shrunk" >&2
fi

flags=(--locked --lib --target wasm32-unknown-unknown)
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}"
wasm="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$profile/edge_anomaly.wasm"
wasm-bindgen --target web --no-typescript --out-name edge-anomaly-full --out-dir "$out" "$wasm"
