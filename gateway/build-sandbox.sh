#!/usr/bin/env bash
# Builds the gateway's sandbox module (the engine as a wasm32-wasip1 reactor) and prints the path
# of the .wasm. Safe to run repeatedly: cargo rebuilds only what changed. It uses its own target
# directory so it never waits on, or invalidates, the host build's lock and artifacts.
#
#   gateway/build-sandbox.sh            # build, print the path
#   EDGE_SANDBOX_PROFILE=release ...    # the fully optimized (fat LTO) build instead
#
# The gateway and its tests find the module at that path, or at $EDGE_SANDBOX_MODULE.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile="${EDGE_SANDBOX_PROFILE:-sandbox}"
target_dir="${CARGO_TARGET_DIR_SANDBOX:-$root/target/sandbox}"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  rustup target add wasm32-wasip1 >&2
fi

(
  cd "$root"
  CARGO_TARGET_DIR="$target_dir" cargo build --locked --target wasm32-wasip1 \
    --profile "$profile" -p edge-sandbox-module >&2
)

out="$target_dir/wasm32-wasip1/$profile/edge_sandbox_module.wasm"
test -f "$out" || { echo "build-sandbox.sh: $out was not produced" >&2; exit 1; }
echo "$out"
