#!/usr/bin/env bash
#! Shrinks a wasm file in place with wasm-opt -Oz (binaryen from node_modules, as
#! scripts/setup.sh installs it), for the features rustc enables for wasm32 by default and SIMD
#! (.cargo/config.toml). Used by the PWA build (scripts/engine-builds.sh) and bench/builds.mjs.
#! `scripts/shrink-wasm.sh FILE [LEVEL [FLAG...]]` (LEVEL: Oz by default, e.g. O3; FLAGs go to
#! wasm-opt, e.g. --enable-relaxed-simd for a build that uses it).
set -euo pipefail
file="$(realpath "${1:?give the wasm file}")"
cd "$(dirname "$0")/.."
opt="node_modules/.bin/wasm-opt"
[ -x "$opt" ] || { echo "shrink-wasm: $opt not found (npm ci installs it)" >&2; exit 2; }
"$opt" "-${2:-Oz}" --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "${@:3}" "$file" -o "$file"
