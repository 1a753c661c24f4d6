#!/usr/bin/env bash
#! Finishes the engine builds after Trunk has built the small one (www/index.html: the crate
#! without tract) into the staging directory:
#!  - builds the small engine again with relaxed SIMD (`+relaxed-simd`: the kernel's multiply-add
#!    is `f32x4.relaxed_madd`) as `edge-anomaly-relaxed_bg.wasm`, for browsers that validate
#!    relaxed SIMD (worker/engine.js picks one of the two). Same code, same exports and imports:
#!    it runs behind the small engine's glue, which the build checks is byte for byte what
#!    wasm-bindgen generates for it. Its own target directory, as its flags differ;
#!  - release only: shrinks both small engines with wasm-opt -Oz (scripts/shrink-wasm.sh;
#!    skipped with a note where binaryen is missing);
#!  - builds the full engine (the crate with tract, for models the dense kernel does not cover)
#!    beside it as `edge-anomaly-full.js` + `edge-anomaly-full_bg.wasm`, which the service worker
#!    fetches only when a model needs it (worker/engine.js).
#! Trunk runs this after each build (Trunk.toml), with its profile; by hand:
#! `scripts/engine-builds.sh dist [release|debug]`.
set -euo pipefail
out="${1:-${TRUNK_STAGING_DIR:?give the directory, or run as a Trunk hook}}"
profile="${2:-${TRUNK_PROFILE:-debug}}"
target="${CARGO_TARGET_DIR:-target}"

flags=(--locked --lib --target wasm32-unknown-unknown)
[ "$profile" = release ] && flags+=(--release)

# The relaxed SIMD compilation. RUSTFLAGS replaces the target's rustflags in .cargo/config.toml,
# so it repeats them.
CARGO_TARGET_DIR="$target/relaxed-simd" \
  RUSTFLAGS='-C target-feature=+simd128,+relaxed-simd --cfg getrandom_backend="wasm_js"' \
  cargo build "${flags[@]}" --no-default-features
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
wasm-bindgen --target web --no-typescript --out-name edge-anomaly --out-dir "$staging" \
  "$target/relaxed-simd/wasm32-unknown-unknown/$profile/edge_anomaly.wasm"
if ! cmp -s "$staging/edge-anomaly.js" "$out/edge-anomaly.js"; then
  echo "engine-builds: the relaxed SIMD build's glue differs from the small engine's" >&2
  diff "$out/edge-anomaly.js" "$staging/edge-anomaly.js" | head -20 >&2
  exit 1
fi
mv "$staging/edge-anomaly_bg.wasm" "$out/edge-anomaly-relaxed_bg.wasm"

if [ "$profile" = release ]; then
  { scripts/shrink-wasm.sh "$out/edge-anomaly_bg.wasm" &&
    scripts/shrink-wasm.sh "$out/edge-anomaly-relaxed_bg.wasm" Oz --enable-relaxed-simd; } ||
    echo "engine-builds: the small engines are not shrunk" >&2
fi

cargo build "${flags[@]}"
wasm="$target/wasm32-unknown-unknown/$profile/edge_anomaly.wasm"
wasm-bindgen --target web --no-typescript --out-name edge-anomaly-full --out-dir "$out" "$wasm"
