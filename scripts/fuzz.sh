#!/usr/bin/env bash
#! The long property run: every property test (model loader against edited, truncated and
#! random ONNX bytes; engine; outbox store encoding; the collector's OTLP decoder) with many
#! more cases than the default run, from a fresh random seed each time, and every prefix of the
#! shipped models. A failure prints the minimal input and proptest saves its seed under tests/.
#!
#!   ./scripts/fuzz.sh                          # 20,000 cases per property
#!   PROPTEST_CASES=200000 ./scripts/fuzz.sh
#!   PROPTEST_RNG_SEED=123 ./scripts/fuzz.sh    # replay one seed
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export PROPTEST_CASES="${PROPTEST_CASES:-20000}" PREFIX_STRIDE="${PREFIX_STRIDE:-1}"
cargo test --locked --workspace --test model_loader_props --test engine_props --test outbox_store \
  --test decoder_props
