# Shared by scripts/run and scripts/test: install whatever is missing, idempotently.
# Only package registries are used (crates.io, npm, Debian); nothing downloads a
# prebuilt binary from elsewhere.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
WASM_BINDGEN_VERSION=0.2.130
CARGO_LEPTOS_VERSION=0.3.10
BINARYEN_NPM_VERSION=132.0.0
export PATH="$HOME/.cargo/bin:$TOOLS/node_modules/.bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_rust() {
  rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || {
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  }
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 5 minutes, once)"
    # Not --locked: its published lockfile pins a crate version the registry lacks.
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 10-15 minutes, once)"
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
}

# wasm-opt for release builds: npm's binaryen (Debian's binaryen 108 silently breaks hydration).
ensure_wasm_opt() {
  if [ ! -x "$TOOLS/node_modules/.bin/wasm-opt" ]; then
    say "installing binaryen@$BINARYEN_NPM_VERSION from npm (wasm-opt)"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --silent "binaryen@$BINARYEN_NPM_VERSION" >/dev/null
  fi
}

ensure_browser() {
  apt_install chromium
  if [ ! -d "$ROOT/end2end/node_modules/playwright-core" ]; then
    say "installing end-to-end test dependencies (npm)"
    (cd "$ROOT/end2end" && npm ci --no-audit --no-fund --silent >/dev/null)
  fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# PostgreSQL for the contract and API tests: the machine's own on 127.0.0.1:5432
# when one answers, else a private server from Debian's binaries on port 55432.
# The fault tests (server/tests/api/faults.rs) start and restart a private
# PostgreSQL of their own from the Debian binaries (never the shared one), so
# initdb and pg_ctl must be installed even when a server already answers.
ensure_postgres_binaries() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  export SWITCHYARD_PG_BIN="${SWITCHYARD_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}"
}

ensure_postgres() {
  ensure_postgres_binaries
  if [ -n "${SWITCHYARD_TEST_PG:-}" ]; then return 0; fi
  if port_open 127.0.0.1 5432; then
    export SWITCHYARD_TEST_PG="postgres://postgres@127.0.0.1:5432/postgres"
    return 0
  fi
  local port=55432
  export SWITCHYARD_TEST_PG="postgres://postgres@127.0.0.1:$port/postgres"
  port_open 127.0.0.1 $port && return 0
  apt_install postgresql
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  local data="$TOOLS/pgdata" run=(env)
  if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); fi
  mkdir -p "$TOOLS"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data" "$TOOLS"
    "${run[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust >/dev/null
  fi
  say "starting the private PostgreSQL on port $port"
  "${run[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
}

source "$ROOT/scripts/peers.sh"

# Prints the release wasm bundle's size (raw, gzip -9, brotli as served when `brotli` is
# installed), as information: users feel the time to a usable page, which
# `node end2end/first-load.mjs` measures, not bundle bytes.
wasm_bundle_size() {
  local wasm bytes gz
  wasm="$(ls -t "$ROOT"/target/site/pkg/*.wasm | head -n 1)"
  bytes="$(wc -c <"$wasm")"
  gz="$(gzip -9 -c "$wasm" | wc -c)"
  say "wasm bundle $(basename "$wasm"): $((bytes / 1024)) KB, $((gz / 1024)) KB gzip"
}
