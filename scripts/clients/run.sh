#!/usr/bin/env bash
# Stock clients against a real `frameos dev` (issue 9): nobody here wrote these clients, so what
# they accept is what outside users will find.
#   1. schemathesis (`run --checks all`, bounded examples) on /openapi.json: no failure;
#   2. openapi-typescript types from /openapi.json, `tsc --strict` over
#      examples/clients/typescript, then that example run against the server (openapi-fetch);
#   3. the Python grpcio client of examples/clients/python (stubs by grpcio-tools from proto/,
#      services listed by grpcio-reflection's v1alpha client) run against the gRPC API.
# Builds nothing: it runs $CARGO_TARGET_DIR/debug/frameos (scripts/test builds it). The tools,
# pinned, are installed when missing into $FRAMEOS_CLIENTS (a venv and an npm prefix).
#
#   scripts/clients/run.sh [schemathesis|typescript|python ...]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)

FRAMEOS_BIN="${FRAMEOS_BIN:-${CARGO_TARGET_DIR:-target}/debug/frameos}"
CLIENTS="${FRAMEOS_CLIENTS:-/var/tmp/frameos-clients}"
PY_PINS="schemathesis==4.32.5 grpcio==1.85.1 grpcio-tools==1.85.1 grpcio-reflection==1.85.1 protobuf==7.36.2"
NPM_PINS="openapi-typescript@7.13.0 typescript@5.9.3 openapi-fetch@0.17.0 @types/node@20.19.43"
# Test cases per operation and phase; the stage's time grows with it (see the log's timings).
MAX_EXAMPLES="${FRAMEOS_SCHEMATHESIS_EXAMPLES:-25}"
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(schemathesis typescript python)

log() { printf '==> clients: %s\n' "$*"; }
now() { date +%s%3N; }
took() {
  local ms=$(($(now) - $1))
  printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_tools() {
  command -v curl >/dev/null 2>&1 || apt_install curl
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  if [ "$(cat "$CLIENTS/venv/.pins" 2>/dev/null)" != "$PY_PINS" ]; then
    log "installing $PY_PINS"
    rm -rf "$CLIENTS/venv"
    mkdir -p "$CLIENTS"
    python3 -m venv "$CLIENTS/venv" || { apt_install python3-venv && python3 -m venv "$CLIENTS/venv"; }
    # shellcheck disable=SC2086 # one word per pin
    "$CLIENTS/venv/bin/pip" install -q --disable-pip-version-check $PY_PINS
    echo "$PY_PINS" >"$CLIENTS/venv/.pins"
  fi
  if [ "$(cat "$CLIENTS/node/.pins" 2>/dev/null)" != "$NPM_PINS" ]; then
    log "installing $NPM_PINS"
    rm -rf "$CLIENTS/node"
    mkdir -p "$CLIENTS/node"
    # shellcheck disable=SC2086 # one word per pin
    npm install --prefix "$CLIENTS/node" --no-audit --no-fund --silent --save-exact $NPM_PINS
    echo "$NPM_PINS" >"$CLIENTS/node/.pins"
  fi
}

[ -x "$FRAMEOS_BIN" ] || { echo "no $FRAMEOS_BIN: build it first (cargo build -p frameos)" >&2; exit 1; }
FRAMEOS_BIN=$(realpath "$FRAMEOS_BIN")
started=$(now)
ensure_tools

WORK=$(mktemp -d "${TMPDIR:-/tmp}/frameos-clients-XXXXXX")
DEV_PID=
cleanup() {
  if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -TERM "$DEV_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DEV_PID" 2>/dev/null || true
  fi
  if [ "${KEEP_WORK:-}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# A platform of its own: every address on a free port, its data in $WORK, a known admin key.
ADMIN_KEY="fos_$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
log "starting frameos dev in $WORK"
(
  cd "$WORK"
  exec env FRAMEOS_HTTP_ADDR=127.0.0.1:0 FRAMEOS_GRPC_ADDR=127.0.0.1:0 \
    FRAMEOS_BOOTSTRAP_ADMIN_KEY="$ADMIN_KEY" FRAMEOS_SHUTDOWN_GRACE_SECS=5 RUST_LOG=warn \
    "$FRAMEOS_BIN" dev >"$WORK/dev.out" 2>"$WORK/dev.err"
) &
DEV_PID=$!
HTTP= GRPC=
for _ in $(seq 1 300); do
  HTTP=$(sed -n 's#^ *REST API *http://\([^/ ]*\)/v1.*#\1#p' "$WORK/dev.out")
  GRPC=$(sed -n 's#^ *gRPC *http://\([^ ]*\)$#\1#p' "$WORK/dev.out")
  if [ -n "$HTTP" ] && [ -n "$GRPC" ] && curl -fsS "http://$HTTP/readyz" >/dev/null 2>&1; then
    break
  fi
  kill -0 "$DEV_PID" 2>/dev/null || { cat "$WORK/dev.out" "$WORK/dev.err" >&2; echo "frameos dev exited" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "http://$HTTP/readyz" >/dev/null || { cat "$WORK/dev.err" >&2; echo "frameos dev is not ready" >&2; exit 1; }
log "frameos dev ready: REST http://$HTTP, gRPC $GRPC ($(took "$started") with the tools)"
export FRAMEOS_API_URL="http://$HTTP" FRAMEOS_API_KEY="$ADMIN_KEY"

run_schemathesis() {
  # The hooks teach schemathesis the package upload's media type (application/gzip).
  (
    cd "$WORK"
    SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$REPO/scripts/clients" \
      "$CLIENTS/venv/bin/schemathesis" --config-file "$REPO/scripts/clients/schemathesis.toml" run \
      "$FRAMEOS_API_URL/openapi.json" --checks all --max-examples "$MAX_EXAMPLES" --seed 9 \
      --header "Authorization: Bearer $ADMIN_KEY" --report junit --report-dir "$WORK/schemathesis"
  )
}

run_typescript() {
  local dir="$WORK/typescript"
  cp -r "$REPO/examples/clients/typescript" "$dir"
  ln -s "$CLIENTS/node/node_modules" "$dir/node_modules"
  curl -fsS "$FRAMEOS_API_URL/openapi.json" -o "$WORK/openapi.json"
  # .ts rather than .d.ts: tsc checks the generated types themselves too (skipLibCheck is on).
  "$CLIENTS/node/node_modules/.bin/openapi-typescript" "$WORK/openapi.json" -o "$dir/api.ts" --silent
  "$CLIENTS/node/node_modules/.bin/tsc" -p "$dir/tsconfig.json" --strict --noEmit
  log "tsc --strict: the example type-checks against the generated types"
  "$CLIENTS/node/node_modules/.bin/tsc" -p "$dir/tsconfig.json" --noCheck
  node "$dir/dist/example.js"
}

run_python() {
  "$CLIENTS/venv/bin/python" "$REPO/examples/clients/python/frameos_client.py" \
    --grpc "$GRPC" --admin-key "$ADMIN_KEY" --proto-dir "$REPO/proto"
}

failed=()
for stage in "${STAGES[@]}"; do
  log "$stage"
  t=$(now)
  # A subshell, so that errexit holds inside the stage and a failure ends only that stage.
  set +e
  (
    set -e
    "run_$stage"
  )
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    log "$stage passed in $(took "$t")"
  else
    log "$stage FAILED after $(took "$t")"
    failed+=("$stage")
  fi
done
if ! kill -0 "$DEV_PID" 2>/dev/null; then
  cat "$WORK/dev.err" >&2
  echo "frameos dev died during the stage" >&2
  failed+=(frameos-dev)
fi
log "done in $(took "$started")"
if [ ${#failed[@]} -gt 0 ]; then
  tail -n 50 "$WORK/dev.err" >&2
  echo "stock clients failed: ${failed[*]}" >&2
  exit 1
fi
