#!/usr/bin/env bash
#! The long chaos run: 100,000 readings streamed through the page's client into the service
#! worker over 100 seeded fault cycles (worker stopped mid-flush, browser closed and reopened
#! on its profile, network offline, collector answering 503/429 + Retry-After, resetting,
#! hanging, killed -9 and restarted), then the outbox drains and the collector must hold every
#! acknowledged reading exactly once with no seq gap. Builds the collector and the PWA first.
#!
#!   ./scripts/chaos.sh                         # the long run
#!   CHAOS_SEED=123456 ./scripts/chaos.sh       # replay a run's fault plan
#!   CHAOS_READINGS=20000 CHAOS_CYCLES=30 ./scripts/chaos.sh
#!
#! Figures: artifacts/chaos-summary.json (printed at the end). CHAOS_SKIP_SETUP=1 skips
#! scripts/setup.sh; CARGO_TARGET_DIR picks the build directory as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
[ "${CHAOS_SKIP_SETUP:-0}" = 1 ] || ./scripts/setup.sh

abs() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$ROOT" "$1" ;; esac; }
target=$(abs "${CARGO_TARGET_DIR:-target}")
dist=$(abs "${CHAOS_STATIC_DIR:-$target/chaos-dist}")

printf '\033[1;32m=== build: collector and PWA (%s)\033[0m\n' "$dist"
cargo build --locked -p collector
trunk build --locked --dist "$dist"

export COLLECTOR_BIN="$target/debug/collector" CHAOS_STATIC_DIR="$dist"
export CHAOS_READINGS="${CHAOS_READINGS:-100000}" CHAOS_CYCLES="${CHAOS_CYCLES:-100}"
export CHAOS_SUMMARY="${CHAOS_SUMMARY:-$ROOT/artifacts/chaos-summary.json}"
rm -f "$CHAOS_SUMMARY"
printf '\033[1;32m=== chaos: %s readings, %s cycles\033[0m\n' "$CHAOS_READINGS" "$CHAOS_CYCLES"
status=0
start=$(date +%s)
node --test --test-reporter=spec tests/e2e/chaos.test.mjs || status=$?
echo "wall time: $(( $(date +%s) - start )) s"

if [ -f "$CHAOS_SUMMARY" ]; then
  node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const pick = ["seed", "readings", "cycles", "sent", "received", "lost", "duplicated", "seq_gaps",
      "unanswered_readings", "drained", "drain_ms", "duration_ms", "browser_opens", "collector_restarts"];
    console.log(JSON.stringify(Object.fromEntries(pick.map((k) => [k, s[k]])), null, 2));
    console.log("cycles by kind:", JSON.stringify(s.kinds));
    for (const f of s.failed) console.log("FAILED:", f);
  ' "$CHAOS_SUMMARY"
fi
exit $status
