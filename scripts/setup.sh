#!/usr/bin/env bash
#! Idempotent setup: installs every tool the build, the app and the tests need, from the
#! package registries only (nothing downloads prebuilt binaries at run time). Each step skips
#! itself when the right version is already present, so re-running it costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

TRUNK_VERSION=0.21.14
GECKODRIVER_VERSION=0.37.1
WASM_PACK_VERSION=0.15.1

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# --- Debian packages: browsers and their drivers, the gateway's MQTT broker, PostgreSQL ---------------
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v firefox-esr >/dev/null || need_apt+=(firefox-esr)
# WebKit (Safari's engine): WebKitGTK's WebDriver and MiniBrowser, run under a virtual display.
command -v WebKitWebDriver >/dev/null || need_apt+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null || need_apt+=(xvfb)
# The PWA build writes brotli copies of its files (scripts/precompress.sh).
command -v brotli >/dev/null || need_apt+=(brotli)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
# The collector's PostgreSQL store is tested against a throwaway cluster of Debian's server.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# --- Rust: wasm targets (browser; the gateway's WASI sandbox) and cargo-installed tools -----
for target in wasm32-unknown-unknown wasm32-wasip1; do
  if ! rustup target list --installed | grep -qx "$target"; then
    log "rustup target add $target"
    rustup target add "$target"
  fi
done

# wasm-bindgen-cli must equal the wasm-bindgen version in Cargo.lock exactly.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
cargo_install() { # name version [extra args]
  local crate=$1 version=$2 bin=$3; shift 3
  if "$bin" --version 2>/dev/null | grep -q "$version"; then return; fi
  log "cargo install $crate $version"
  cargo install -q "$crate" --version "$version" "$@"
}
cargo_install wasm-bindgen-cli "$WB_VERSION" wasm-bindgen
cargo_install geckodriver "$GECKODRIVER_VERSION" geckodriver
cargo_install wasm-pack "$WASM_PACK_VERSION" wasm-pack
cargo_install trunk "$TRUNK_VERSION" trunk --locked

# --- npm: wasm-opt (binaryen), browser automation, the ORT-web baseline, ESLint and Prettier --
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -x node_modules/.bin/eslint ] || [ ! -x node_modules/.bin/prettier ] ||
  [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- Python venv for the model pipeline and wire-format checks ------------------------------
VENV=models/.venv
if [ ! -x "$VENV/bin/python" ] || [ models/requirements.txt -nt "$VENV/.stamp" ]; then
  log "python venv $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r models/requirements.txt
  # river ships the real shuttle dataset; its own deps are not needed to read the CSV.
  "$VENV/bin/pip" install -q --no-deps river==0.26.1
  touch "$VENV/.stamp"
fi

log "ready"
