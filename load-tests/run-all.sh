#!/usr/bin/env bash
# Builds corral-load (and the `corral` binary the scale scenarios run as spawners) in
# release and runs every scenario with its default size, refreshing load-tests/RESULTS.md
# (and leaving per-run files in load-tests/results/). Under 15 minutes on a 2-core machine
# once built (864 s measured on a busy one).
#
# Needs RabbitMQ, Redis and Docker running locally (the same servers the end-to-end tests
# use; override with CORRAL_TEST_AMQP_URL / CORRAL_TEST_REDIS_URL) and builds the local test
# image if it is missing. The JupyterHub baseline of spawn-storm is prepared by
# jupyterhub-setup.sh; when it cannot be, spawn-storm records why. Each scenario is bounded
# by a timeout, so a stuck run cannot hang the script. Extra arguments are passed to every
# scenario (e.g. --quiet).
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/build-test-image.sh
cargo build --release -p corral-load -p corral
# The binaries just built, run directly: `cargo run` would rebuild in the middle of the set
# whenever someone else changes the workspace meanwhile (a shared machine).
BIN="${CARGO_TARGET_DIR:-target}/release/corral-load"
bash load-tests/jupyterhub-setup.sh || echo "the JupyterHub baseline is not available (see above)" >&2

started=$SECONDS
failed=()
# A failing scenario does not stop the others; the script fails at the end.
run() {
    local t=$SECONDS
    echo "== corral-load $*" >&2
    if ! timeout --signal=INT --kill-after=60 600 "$BIN" "$@"; then
        failed+=("$*")
    fi
    echo "== $1 took $((SECONDS - t)) s" >&2
}

run spawn-latency "$@"
run pipeline "$@"
run claims "$@"
run claims --runtime process "$@"
run spawn-storm "$@"
run spawn-storm --runtime docker "$@"
run scale "$@"
run scale-out "$@"
run requests "$@"

echo "done in $((SECONDS - started)) s: see load-tests/RESULTS.md" >&2
if [ ${#failed[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
