#!/usr/bin/env bash
# Installs (from Debian's packages) and starts Redis and RabbitMQ on 127.0.0.1 when they are
# missing or stopped. `scripts/services.sh up` is idempotent.
set -euo pipefail

want=()
command -v redis-server >/dev/null 2>&1 || want+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || want+=(rabbitmq-server)
if ((${#want[@]})); then
  echo "installing ${want[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
fi

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "starting redis-server"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --appendonly yes \
    --dir "${TMPDIR:-/tmp}" --save ''
fi
for _ in $(seq 1 100); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -h 127.0.0.1 ping >/dev/null

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "starting rabbitmq-server"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1
  # Recovering durable queues needs a file handle each; with the usual soft limit of 1024 a
  # broker holding a thousand queues never finishes booting.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
  rabbitmq-server -detached
fi
# `await_startup` exits at once (code 69) while the node has not yet registered with epmd, so
# poll it against a deadline instead of trusting a single call.
deadline=$((SECONDS + 180))
until rabbitmqctl -q await_startup --timeout 30 >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    echo "rabbitmq-server did not start within 180 s; last log lines:" >&2
    tail -n 40 /var/log/rabbitmq/*.log >&2 || true
    exit 1
  fi
  sleep 1
done
echo "redis and rabbitmq are up"
