#!/usr/bin/env bash
#! Writes NAME.br (brotli, quality 11) and NAME.gz (gzip -9) beside every compressible file of a
#! built PWA, so the collector can send them with `Content-Encoding` at no cost per request
#! (collector/src/static_files.rs). A copy is kept only where it is smaller than the file.
#! Trunk runs this after each build on its staging directory (Trunk.toml); by hand:
#! `scripts/precompress.sh dist`.
set -euo pipefail
dir="${1:-${TRUNK_STAGING_DIR:?give the directory, or run as a Trunk hook}}"
command -v brotli >/dev/null || { echo "precompress: brotli not found (scripts/setup.sh installs it)" >&2; exit 1; }
find "$dir" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.mjs' -o -name '*.html' \
  -o -name '*.css' -o -name '*.json' -o -name '*.webmanifest' -o -name '*.svg' -o -name '*.onnx' \
  -o -name '*.csv' \) -print0 |
  while IFS= read -r -d '' file; do
    size=$(stat -c %s "$file")
    # Brotli's best quality takes minutes on a debug build's 20 MB full engine (q9: seconds, 15%
    # larger); release builds always get q11.
    quality=11
    [ "${TRUNK_PROFILE:-release}" != release ] && [ "$size" -gt 4000000 ] && quality=9
    brotli -q "$quality" -f -o "$file.br" -- "$file"
    gzip -9 -n -c -- "$file" >"$file.gz"
    for copy in "$file.br" "$file.gz"; do
      [ "$(stat -c %s "$copy")" -lt "$size" ] || rm -f -- "$copy"
    done
  done
