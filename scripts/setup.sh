#!/usr/bin/env bash
# Idempotent set-up of everything vidflow needs on this machine:
#   system packages (apt), the Python environment (uv, pinned requirements.txt) and the
#   Spark jars (Maven, into ~/.m2). Each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.local
VENV=$STATE/venv
mkdir -p "$STATE"
say() { printf '[setup] %s\n' "$*"; }

# --- system packages ------------------------------------------------------------------
need=()
command -v ffmpeg  >/dev/null || need+=(ffmpeg)
command -v ffprobe >/dev/null || need+=(ffmpeg)
command -v nginx   >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v java    >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn     >/dev/null || need+=(maven)
command -v initdb  >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null || need+=(util-linux)
command -v chromium >/dev/null || need+=(chromium)   # the web app's browser tests (Playwright)
command -v npm     >/dev/null || need+=(npm)        # the web app's vendored players
command -v redis-server >/dev/null || need+=(redis-server)  # broker of the transcode Celery worker
if ((${#need[@]})); then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  say "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  say "creating system user postgres (PostgreSQL refuses to run as root)"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# --- Python environment ---------------------------------------------------------------
PY=${VIDFLOW_PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if ! command -v uv >/dev/null; then
  say "installing uv"
  "$PY" -m pip install -q --user uv 2>/dev/null || "$PY" -m pip install -q uv
fi
UV=$(command -v uv || echo "$("$PY" -m site --user-base)/bin/uv")
stamp=$VENV/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages into $VENV (uv pip sync requirements.txt)"
  [ -x "$VENV/bin/python" ] || "$UV" venv -q --python "$PY" "$VENV"
  "$UV" pip sync -q --python "$VENV/bin/python" requirements.txt
  "$UV" pip install -q --python "$VENV/bin/python" --no-deps -e .
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
fi

# --- Spark jars (Maven Central -> ~/.m2) ------------------------------------------------
jars=$STATE/spark-jars.txt
if [ ! -s "$jars" ] || [ infra/maven/pom.xml -nt "$jars" ] || \
   ! tr ':' '\n' < "$jars" | xargs -r ls >/dev/null 2>&1; then
  say "fetching Spark jars with Maven (Delta, hadoop-aws, AWS SDK bundle)"
  mvn -B -q -f infra/maven/pom.xml dependency:build-classpath \
    -Dmdep.outputFile="$PWD/$jars" -Dmdep.includeScope=runtime
fi

# --- web app players (npm -> webapp/public/vendor) ---------------------------------------
# hls.js and tus-js-client exactly as webapp/package-lock.json pins them; the app loads
# their dist files from vendor/ (no CDN). npm ci runs again only when the lock changes.
lock=webapp/package-lock.json
npm_stamp=webapp/node_modules/.vidflow-lock.sha256
vendor=webapp/public/vendor
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$want" ] || \
   [ ! -s "$vendor/hls.mjs" ] || [ ! -s "$vendor/tus.min.js" ]; then
  say "installing the web app's players (npm ci --prefix webapp)"
  npm ci --prefix webapp --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  mkdir -p "$vendor"
  cp webapp/node_modules/hls.js/dist/hls.mjs webapp/node_modules/hls.js/dist/hls.mjs.map \
     webapp/node_modules/tus-js-client/dist/tus.min.js \
     webapp/node_modules/tus-js-client/dist/tus.min.js.map "$vendor/"
  cp webapp/node_modules/hls.js/LICENSE "$vendor/hls.js.LICENSE"
  cp webapp/node_modules/tus-js-client/LICENSE "$vendor/tus-js-client.LICENSE"
  echo "$want" > "$npm_stamp"
fi

# --- vegeta (the serving benchmark's fixed-rate load generator) -------------------------
# `go install` into .local/bin; a stamp names the version so a new pin reinstalls it.
VEGETA_VERSION=v12.13.0
if [ "$(cat "$STATE/bin/.vegeta-version" 2>/dev/null)" != "$VEGETA_VERSION" ] || \
   [ ! -x "$STATE/bin/vegeta" ]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  if [ -x "$GO" ]; then
    say "installing vegeta $VEGETA_VERSION into $STATE/bin (go install)"
    mkdir -p "$STATE/bin"
    GOBIN="$PWD/$STATE/bin" "$GO" install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
    echo "$VEGETA_VERSION" > "$STATE/bin/.vegeta-version"
  else
    say "no Go toolchain: skipping vegeta (make bench BENCH=serving needs it)"
  fi
fi

# --- SeaweedFS (the persistent local object store, VIDFLOW_OBJECT_STORE=seaweedfs) -------
# `go install weed@version` refuses this module (its go.mod has a replace directive), so
# the module comes from the Go proxy with `go mod download` and weed is built inside it,
# as its own main module (its go.sum pins every dependency). A stamp names the version.
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
if [ "$(cat "$STATE/bin/.weed-version" 2>/dev/null)" != "$SEAWEEDFS_VERSION" ] || \
   [ ! -x "$STATE/bin/weed" ]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  if [ -x "$GO" ]; then
    say "building SeaweedFS $SEAWEEDFS_VERSION into $STATE/bin (go build; several minutes)"
    mkdir -p "$STATE/bin"
    bin_dir="$PWD/$STATE/bin"
    src=$("$GO" mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" \
          | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    (cd "$src" && "$GO" build -o "$bin_dir/weed.tmp" ./weed)
    mv "$bin_dir/weed.tmp" "$bin_dir/weed"
    echo "$SEAWEEDFS_VERSION" > "$STATE/bin/.weed-version"
  else
    say "no Go toolchain: skipping SeaweedFS (VIDFLOW_OBJECT_STORE=seaweedfs needs it)"
  fi
fi
say "ready"
