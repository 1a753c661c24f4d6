#!/usr/bin/env bash
#! How much of our wasm is tract-onnx: two minimal wasm-bindgen crates with the product's release
#! profile and wasm flags, one loading ONNX with tract-onnx, one loading NNEF with tract-nnef only,
#! each scoring rows. Prints raw and gzip -9 sizes of the final `_bg.wasm`. Then converts the
#! shipped f32 model ONNX -> NNEF natively and compares the outputs (`convert`).
#! Usage: bench/size-probe/run.sh   (about 10 minutes from clean on 2 cores)
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../../target/size-probe}"
for p in nnef-probe onnx-probe; do
  cargo build --release -p "$p" --target wasm32-unknown-unknown
  name="${p//-/_}"
  wasm-bindgen --target web --out-dir "$CARGO_TARGET_DIR/pkg-$name" "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/$name.wasm"
  f="$CARGO_TARGET_DIR/pkg-$name/${name}_bg.wasm"
  echo "$p: raw $(stat -c %s "$f") B, gzip -9 $(gzip -9 -c "$f" | wc -c) B"
done
cargo run --release -p convert -- ../../models/shuttle/model.f32.onnx "$CARGO_TARGET_DIR/shuttle.f32.nnef.tar" 9
