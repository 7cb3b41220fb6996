# Shared setup for scripts/dev and scripts/test: installs what is missing (idempotently, fast when
# everything is present) and starts PostgreSQL, Redis and ClickHouse when they are down.
# Sourced, not executed.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Pinned tool versions. WASM_BINDGEN_VERSION must equal the wasm-bindgen crate in Cargo.lock.
WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130
NEXTEST_VERSION=0.9.143
CHDB_VERSION=26.9.0
CARGO_FUZZ_VERSION=0.13.2

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_packages() {
  local missing=()
  command -v psql >/dev/null || missing+=(postgresql postgresql-contrib)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v clickhouse-server >/dev/null || missing+=(clickhouse-server clickhouse-client)
  command -v curl >/dev/null || missing+=(curl)
  command -v node >/dev/null || missing+=(nodejs npm)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# Production tools whose shipped configs in deploy/ the tests run: `promtool` (Prometheus: config
# and alert rules; `PROMETHEUS=1 ./scripts/dev` runs the server) and HAProxy (two origins, one
# stopped under load). Debian's packages enable a system service on hosts with systemd; ours run
# on demand instead, so it is disabled again.
ensure_deploy_tool() {
  local command=$1 package=$2
  command -v "$command" >/dev/null && return
  apt_install --no-install-recommends "$package"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now "$package" >/dev/null 2>&1 || true
  fi
}

# ZooKeeper (Debian's 3.8, with a Java runtime) for the local ClickHouse cluster that
# tests/clickhouse_cluster.rs starts from its own config (backend/testkit/src/cluster.rs); the
# package runs no service of its own (that is `zookeeperd`).
ensure_zookeeper() {
  [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null && return
  apt_install --no-install-recommends zookeeper
}

ensure_rust_tools() {
  command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs)"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
    log "cargo install worker-build $WORKER_BUILD_VERSION"
    cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $NF}')" != "$WASM_BINDGEN_VERSION" ]; then
    # Not --locked: its lockfile names a webpki-roots release the registry no longer serves.
    log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "cargo install cargo-nextest $NEXTEST_VERSION"
    cargo install cargo-nextest --version "$NEXTEST_VERSION" --locked
  fi
}

# The fuzz targets (fuzz/run) only: cargo-fuzz and the nightly toolchain it needs.
ensure_cargo_fuzz() {
  if ! rustup toolchain list | grep -q '^nightly'; then
    log "rustup toolchain install nightly"
    rustup toolchain install nightly --profile minimal
  fi
  if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $NF}')" != "$CARGO_FUZZ_VERSION" ]; then
    log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
  fi
}

ensure_npm_packages() {
  local stamp="node_modules/.smo1-lock.sha256"
  local want
  want="$(sha256sum package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  fi
}

# The dashboard (dashboard/, its own lockfile): `npm ci` when the lockfile changed, then
# `npm run build` into dashboard/dist when anything the build reads changed since the last build
# (its sources and config, the lockfile, docs/openapi.json its API types come from). Both stamps
# live in dashboard/node_modules, never in dist (the origin serves dist).
dashboard_inputs_hash() {
  local inputs=() path
  for path in dashboard/src dashboard/scripts dashboard/public dashboard/index.html \
    dashboard/package.json dashboard/package-lock.json dashboard/vite.config.ts \
    dashboard/svelte.config.js dashboard/tsconfig.json docs/openapi.json; do
    if [ -e "$path" ]; then inputs+=("$path"); fi
  done
  # schema.d.ts is the build's own output (gen:api).
  find "${inputs[@]}" -type f ! -path dashboard/src/api/schema.d.ts -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

ensure_dashboard() {
  local lock_stamp="dashboard/node_modules/.smo1-lock.sha256"
  local build_stamp="dashboard/node_modules/.smo1-build.sha256"
  local want
  want="$(sha256sum dashboard/package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$want" ]; then
    log "npm ci (dashboard)"
    (cd dashboard && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$lock_stamp"
  fi
  want="$(dashboard_inputs_hash)"
  if [ ! -f dashboard/dist/index.html ] || [ ! -f "$build_stamp" ] || [ "$(cat "$build_stamp")" != "$want" ]; then
    log "building the dashboard (npm run build in dashboard/)"
    (cd dashboard && npm run build --silent) >&2
    echo "$want" > "$build_stamp"
  fi
}

# Debian's Chromium for the browser tests (playwright-core drives it; it never downloads one).
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then apt_install chromium fonts-dejavu-core; fi
}

# chDB: ClickHouse 26 in-process, to check our SQL on a modern engine (scripts/check_clickhouse_sql.py).
ensure_chdb() {
  if ! python3 -c "import chdb, sys; sys.exit(chdb.__version__ != '$CHDB_VERSION')" 2>/dev/null; then
    command -v pip3 >/dev/null || python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    log "pip install chdb-core $CHDB_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "chdb-core==$CHDB_VERSION"
  fi
}

wait_for() { # wait_for NAME SECONDS CMD...
  local name="$1" seconds="$2"; shift 2
  for _ in $(seq $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$name did not come up within ${seconds}s"
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
clickhouse_up() { curl -sf 'http://127.0.0.1:8123/?query=SELECT%201' | grep -q 1; }

ensure_services() {
  if ! pg_up; then
    log "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    wait_for PostgreSQL 30 pg_up
  fi
  if ! redis_up; then
    log "starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/smo1.log
    wait_for Redis 30 redis_up
  fi
  if ! clickhouse_up; then
    log "starting ClickHouse"
    as_root mkdir -p /var/log/clickhouse-server
    as_root setsid nohup clickhouse-server --config-file=/etc/clickhouse-server/config.xml \
      >/var/log/clickhouse-server/smo1-start.log 2>&1 < /dev/null &
    wait_for ClickHouse 90 clickhouse_up
  fi
}

build_worker() {
  log "building the wasm worker (scripts/build-worker)"
  "$ROOT/scripts/build-worker" 2>&1 | grep -v '^\s*Compiling ' >&2
  [ -f build/index.js ] && [ -f build/index_bg.wasm ] || die "worker build produced no build/index.js"
}

setup() {
  ensure_packages
  ensure_rust_tools
  ensure_npm_packages
  ensure_services
}
