#!/usr/bin/env bash
# The one test command: prepares a fresh Debian machine (RabbitMQ, Redis, the busybox test
# image) and runs the whole suite, including the tests against real RabbitMQ, Redis and
# Docker. Safe to run again: every step checks before it acts.
#
#   scripts/test.sh            # everything: lint + all tests
#   scripts/test.sh -p spawner # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/corral-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "servers: Redis and RabbitMQ (loopback only)"
scripts/services.sh up

# The suite's queues live in a vhost of their own, emptied before and after each run, and any
# queue left unused for 15 minutes expires: a run cut short leaves nothing for the broker to
# recover at its next start.
test_vhost=corral-test
reset_test_vhost() {
  rabbitmqctl -q delete_vhost "$test_vhost" >/dev/null 2>&1 || true
  [ "${1:-}" = drop ] && return 0
  rabbitmqctl -q add_vhost "$test_vhost" >/dev/null
  rabbitmqctl -q set_permissions -p "$test_vhost" guest '.*' '.*' '.*' >/dev/null
  rabbitmqctl -q set_policy -p "$test_vhost" --apply-to queues test-expiry '.*' '{"expires":900000}' >/dev/null
}
if [ -z "${CORRAL_TEST_AMQP_URL:-}" ]; then
  reset_test_vhost
  export CORRAL_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$test_vhost"
  drop_vhost=1
fi

step "docker engine and the test image"
if ! docker info >/dev/null 2>&1; then
  echo "error: the Docker engine does not answer (docker info failed); the suite needs it" >&2
  exit 1
fi
scripts/build-test-image.sh

step "tapipy (the Tapis Python SDK) for the compatibility test"
venv="${CORRAL_TAPIPY_VENV:-$HOME/.cache/corral-tapipy}"
if ! "$venv/bin/python" -c "import tapipy.tapis" >/dev/null 2>&1; then
  python3 -m venv "$venv" || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q tapipy
fi
export CORRAL_TAPIPY_PYTHON="$venv/bin/python"

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "compose file, Dockerfile and the stack from it (images made locally: nothing can be pulled)"
scripts/compose-check.sh

step "tests"
export CORRAL_TEST_REDIS_URL="${CORRAL_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
log="$(mktemp)"
trap 'rm -f "$log"; if [ -n "${drop_vhost:-}" ]; then reset_test_vhost drop; fi' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary, the last of which is
# often an empty doc-test run).
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "\ntotal: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
