#!/usr/bin/env bash
# Checks the distributed stack's packaging: docker-compose.yml validates and says what the
# README promises, the Dockerfile builds the service image, every binary in it starts, and
# the whole stack comes up from the compose file and runs a pod to AVAILABLE.
#
# Base images cannot be pulled on the machines Corral is tested on, so this builds what it
# needs locally, once, and reuses it on later runs:
#   corral-local/debian:<codename>    a Debian rootfs made with debootstrap, `docker import`ed
#   corral-local/rabbitmq:<codename>  Debian's rabbitmq-server (+ management) on that base
#   corral-local/redis:<codename>     Debian's redis-server on that base
#   corral-local/corral:<hash>        the Dockerfile's `runtime-prebuilt` target: release
#                                     binaries built on the host, on the local Debian base
# The Dockerfile's default target (binaries built inside the Rust image) needs a Rust image,
# which cannot be pulled here either, so this script does not build it.
#
#   scripts/compose-check.sh
# Environment: CARGO_TARGET_DIR (default $HOME/.cache/corral-target), CORRAL_DEBIAN_MIRROR
# (default: the host's apt source for its release).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/corral-target}"

# The five services of the stack; the image also carries the `corral` CLI.
SERVICES=(api-gateway spawner health-poller log-collector pool-manager)
BINARIES=("${SERVICES[@]}" corral)
# shellcheck disable=SC1091
CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")"
BASE_IMAGE="corral-local/debian:$CODENAME"
RABBITMQ_LOCAL="corral-local/rabbitmq:$CODENAME"
REDIS_LOCAL="corral-local/redis:$CODENAME"
STARTED=$SECONDS

step() { printf '\n--> %s\n' "$*"; }
fail() { echo "compose-check: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# docker build, minus the classic builder's deprecation notice (BuildKit is not installed here).
docker_build() {
  docker build --force-rm "$@" 2> >(grep -v -e '^DEPRECATED: The legacy builder' -e '^ *Install the buildx' \
                              -e '^ *https://docs.docker.com/go/buildx' -e '^$' >&2)
}

# `docker compose` (v2 plugin) where present, else the standalone docker-compose.
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  fail "neither 'docker compose' nor 'docker-compose' is installed"
fi

# Reads the normalised compose configuration as JSON on stdout.
compose_json() {
  if [ "${COMPOSE[0]}" = docker ]; then
    "${COMPOSE[@]}" config --format json
  else
    # docker-compose v1 prints YAML only; its own interpreter has PyYAML.
    local py
    py="$(head -n1 "$(command -v docker-compose)" | sed -n 's/^#! *//p')"
    "${COMPOSE[@]}" config | ${py:-python3} -c 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'
  fi
}

validate_compose() {
  step "docker-compose.yml validates (${COMPOSE[*]} config)"
  "${COMPOSE[@]}" config -q
  compose_json | python3 -c '
import json, sys
cfg = json.load(sys.stdin)
services = cfg["services"]
corral = ["api-gateway", "spawner", "health-poller", "log-collector", "pool-manager"]
problems = []
def check(ok, what):
    if not ok:
        problems.append(what)
check(sorted(services) == sorted(corral + ["rabbitmq", "redis"]), f"services are {sorted(services)}")
def socket(svc):
    return any("docker.sock" in (v if isinstance(v, str) else v.get("source", "")) for v in svc.get("volumes", []))
with_socket = sorted(n for n, s in services.items() if socket(s))
check(with_socket == ["health-poller", "log-collector", "spawner"], f"the Docker socket goes to {with_socket}")
redis_cmd = services["redis"].get("command", [])
redis_cmd = redis_cmd.split() if isinstance(redis_cmd, str) else redis_cmd
check("--appendonly" in redis_cmd and redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes", "redis runs without appendonly yes")
for name in ["rabbitmq", "redis", "api-gateway"]:
    check("test" in services[name].get("healthcheck", {}), f"{name} has no health check")
images = set()
for name in corral:
    svc = services[name]
    deps = svc.get("depends_on", {})
    for dep in ["rabbitmq", "redis"]:
        cond = deps.get(dep, {}).get("condition") if isinstance(deps, dict) else None
        check(cond == "service_healthy", f"{name} does not wait for {dep} to be healthy")
    build = svc.get("build", {})
    check(isinstance(build, dict) and build.get("dockerfile", "Dockerfile") == "Dockerfile", f"{name} is not built from the Dockerfile")
    images.add(svc.get("image"))
    check(svc.get("command", [None])[0] == name, f"{name} does not run its own binary")
check(len(images) == 1, f"the five services use different images: {images}")
gateway_env = services["api-gateway"].get("environment", {})
if services["api-gateway"].get("network_mode") == "host":
    check(str(gateway_env.get("CORRAL_HTTP_ADDR", "")).startswith("127.0.0.1:"), "the api-gateway listens beyond loopback")
for name, svc in services.items():
    for p in svc.get("ports", []):
        host_ip = p.get("host_ip") if isinstance(p, dict) else str(p).split(":")[0]
        check(host_ip == "127.0.0.1", f"{name} publishes {p} beyond loopback")
def target(p):
    return str(p.get("target")) if isinstance(p, dict) else str(p).split(":")[-1].split("/")[0]
ui = [p for p in services["rabbitmq"].get("ports", []) if target(p) == "15672"]
check(bool(ui), "the RabbitMQ management UI (15672) is not published")
if problems:
    sys.exit("docker-compose.yml: " + "; ".join(problems))
print("compose file: 7 services, socket only on spawner/health-poller/log-collector, redis appendonly, health-gated start")
'
}

# The host's apt source for its own release (deb822 or one-line format).
debian_mirror() {
  if [ -n "${CORRAL_DEBIAN_MIRROR:-}" ]; then echo "$CORRAL_DEBIAN_MIRROR"; return; fi
  local uri
  uri="$(awk -v suite="$CODENAME" '
      /^URIs:/ { uris = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
      /^$/ { if (hit && !found) { print uris; found = 1 } uris = ""; hit = 0 }
      END { if (hit && !found) print uris }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri="$(awk -v suite="$CODENAME" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)"
  fi
  [ -n "$uri" ] || fail "no apt source for $CODENAME on this host; set CORRAL_DEBIAN_MIRROR"
  echo "$uri"
}

ensure_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "$BASE_IMAGE: present (made earlier on this machine)"
    return
  fi
  step "making $BASE_IMAGE with debootstrap (once; about a minute)"
  command -v debootstrap >/dev/null 2>&1 \
    || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  local rootfs mirror
  mirror="$(debian_mirror)"
  rootfs="$(mktemp -d)"
  if ! as_root debootstrap --variant=minbase --include=ca-certificates "$CODENAME" "$rootfs" "$mirror" \
      >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log" >&2
    as_root rm -rf "$rootfs"
    fail "debootstrap failed (log: $rootfs.log)"
  fi
  rm -f "$rootfs.log"
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  as_root tar -C "$rootfs" --numeric-owner -cf - . \
    | docker import --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$rootfs"
  echo "$BASE_IMAGE: made from $mirror"
}

# Builds image $1 from the Dockerfile text on stdin (no context) unless it exists.
ensure_local_image() {
  local image=$1 empty
  if docker image inspect "$image" >/dev/null 2>&1; then
    cat >/dev/null
    echo "$image: present (made earlier on this machine)"
    return
  fi
  empty="$(mktemp -d)"
  docker_build -q -t "$image" -f - "$empty" >/dev/null
  rmdir "$empty"
  echo "$image: built from Debian's packages on $BASE_IMAGE"
}

ensure_server_images() {
  step "RabbitMQ and Redis images from Debian's packages (once; about a minute each)"
  ensure_local_image "$RABBITMQ_LOCAL" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && rabbitmq-plugins enable --offline rabbitmq_management \\
 && echo 'loopback_users = none' > /etc/rabbitmq/rabbitmq.conf
EXPOSE 5672 15672
CMD ["rabbitmq-server"]
EOF
  ensure_local_image "$REDIS_LOCAL" <<EOF
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\
 && rm -rf /var/lib/apt/lists/* && mkdir /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
EOF
}

# Builds the `runtime-prebuilt` target from the host's release binaries; sets SERVICE_IMAGE.
build_service_image() {
  step "release binaries (cargo build --release)"
  local bin_args=()
  for b in "${BINARIES[@]}"; do bin_args+=(--bin "$b"); done
  cargo build --release --locked "${bin_args[@]}"
  local release="$CARGO_TARGET_DIR/release" hash
  hash="$( { (cd "$release" && sha256sum "${BINARIES[@]}") && sha256sum Dockerfile config/* && echo "$BASE_IMAGE"; } \
           | sha256sum | cut -c1-16)"
  SERVICE_IMAGE="corral-local/corral:$hash"
  step "service image $SERVICE_IMAGE: Dockerfile target runtime-prebuilt on $BASE_IMAGE"
  echo "NOTE: base images cannot be pulled on this machine, so the service image is built from"
  echo "      the locally made base $BASE_IMAGE and binaries built on the host, not in the"
  echo "      Rust image (the Dockerfile's default target)."
  if docker image inspect "$SERVICE_IMAGE" >/dev/null 2>&1; then
    echo "$SERVICE_IMAGE: present (same binaries, Dockerfile and config)"
    return
  fi
  local ctx
  ctx="$(mktemp -d)"
  mkdir "$ctx/bin"
  for b in "${BINARIES[@]}"; do
    # Line tables are for local backtraces; the image does without them (~5x smaller).
    objcopy --strip-debug "$release/$b" "$ctx/bin/$b"
  done
  cp -r config Dockerfile "$ctx/"
  docker_build -q --target runtime-prebuilt --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    -t "$SERVICE_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  # Earlier builds of the same image only take space now.
  docker images --format '{{.Repository}}:{{.Tag}}' corral-local/corral \
    | grep -vx "$SERVICE_IMAGE" | xargs -r docker rmi >/dev/null 2>&1 || true
  echo "$SERVICE_IMAGE: built"
}

smoke_binaries() {
  step "every binary in $SERVICE_IMAGE starts"
  for b in "${BINARIES[@]}"; do
    docker run --rm "$SERVICE_IMAGE" "$b" --help >/dev/null || fail "$b --help failed in $SERVICE_IMAGE"
    echo "$b --help: ok"
  done
  # The baked configuration (CORRAL_CONFIG=/etc/corral/compose.toml) loads, and the service
  # user is not root.
  docker run --rm "$SERVICE_IMAGE" corral token --tenant check --user check >/dev/null \
    || fail "the image's configuration does not load"
  [ "$(docker run --rm "$SERVICE_IMAGE" id -u)" = 10001 ] || fail "the image does not run as user corral"
  echo "compose.toml loads; runs as user corral"
}

# Prints $1 distinct free loopback ports, below the kernel's ephemeral range: the api-gateway
# and health-poller share the host's network, and an outgoing connection of theirs (which takes
# an ephemeral local port) must not be able to hold the port the gateway is about to listen on.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
held = []
while len(held) < int(sys.argv[1]):
    s = socket.socket()
    try:
        # A host whose ephemeral range starts low leaves no room below it: any free port then.
        s.bind(("127.0.0.1", random.randrange(10000, low) if low > 11000 else 0))
    except OSError:
        s.close()
        continue
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

# Says why the stack did not come up: each Corral service's state and the end of its log.
explain_stack() {
  "${DC[@]}" ps >&2 || true
  local s
  for s in "${SERVICES[@]}"; do
    echo "--- last lines of $s:" >&2
    "${DC[@]}" logs --no-color --tail 15 "$s" >&2 2>&1 || true
  done
}

# Brings the stack up from docker-compose.yml with the local images, runs one pod to
# AVAILABLE through the gateway, deletes it, and takes everything down again.
# Globals, not locals: the EXIT trap that takes the stack down needs them.
PROJECT="" NS="" OVERRIDE="" DC=()
stack_down() {
  "${DC[@]}" logs --no-color >"$OVERRIDE.log" 2>&1 || true
  "${DC[@]}" down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  docker ps -aq --filter "label=corral.namespace=$NS" | xargs -r docker rm -f >/dev/null 2>&1 || true
  rm -f "$OVERRIDE"
}
stack_up_and_pod() {
  local url token
  PROJECT="corralcheck$RANDOM$RANDOM"
  NS="$PROJECT"
  OVERRIDE="$(mktemp --suffix .yml)"
  # The override only renames the runtime namespace, so the check's containers are told
  # apart from anyone else's on this engine.
  {
    echo "services:"
    for s in "${SERVICES[@]}"; do
      printf '  %s:\n    environment:\n      CORRAL__RUNTIME__NAMESPACE: %s\n' "$s" "$NS"
    done
  } >"$OVERRIDE"
  export CORRAL_IMAGE="$SERVICE_IMAGE" RABBITMQ_IMAGE="$RABBITMQ_LOCAL" REDIS_IMAGE="$REDIS_LOCAL"
  read -r CORRAL_HTTP_PORT CORRAL_AMQP_PORT CORRAL_REDIS_PORT CORRAL_RABBITMQ_UI_PORT < <(free_ports 4)
  export CORRAL_HTTP_PORT CORRAL_AMQP_PORT CORRAL_REDIS_PORT CORRAL_RABBITMQ_UI_PORT
  DC=("${COMPOSE[@]}" -p "$PROJECT" -f docker-compose.yml -f "$OVERRIDE")
  trap 'rc=$?; stack_down; ((rc == 0)) || echo "compose-check: the services logs are in $OVERRIDE.log" >&2' EXIT

  step "docker compose up: the stack from docker-compose.yml (project $PROJECT)"
  echo "RabbitMQ and Redis are $RABBITMQ_LOCAL and $REDIS_LOCAL (made locally: no pulls here)"
  local t0=$SECONDS
  "${DC[@]}" up -d --no-build 2>&1 | sed 's/^/    /'
  url="http://127.0.0.1:$CORRAL_HTTP_PORT"
  until curl -sf "$url/healthz" >/dev/null; do
    ((SECONDS - t0 < 120)) || { explain_stack; fail "the api-gateway did not answer /healthz within 120s"; }
    sleep 1
  done
  # The gateway's own health check (bash and /dev/tcp in the image) must pass too.
  local gateway health=""
  gateway="$("${DC[@]}" ps -q api-gateway)"
  until [ "$health" = healthy ]; do
    health="$(docker inspect -f '{{.State.Health.Status}}' "$gateway")"
    ((SECONDS - t0 < 120)) || { explain_stack; fail "the api-gateway's health check says $health after 120s"; }
    [ "$health" = healthy ] || sleep 1
  done
  echo "stack up and healthy in $((SECONDS - t0))s; gateway on $url"
  curl -sf "http://127.0.0.1:$CORRAL_RABBITMQ_UI_PORT/" | grep -qi rabbitmq \
    || fail "the RabbitMQ management UI does not answer"
  [ "$("${DC[@]}" exec -T redis redis-cli config get appendonly | tail -n1)" = yes ] \
    || fail "redis runs without appendonly"
  echo "RabbitMQ management UI answers; Redis appends to its file"

  step "a pod through the compose stack reaches AVAILABLE"
  token="$("${DC[@]}" exec -T api-gateway corral token --tenant dev --user compose-check)"
  curl -sf -X POST "$url/v3/pods" -H "X-Tapis-Token: $token" -H 'Content-Type: application/json' \
    -d '{"pod_id": "composecheck", "image": "corral-test/busybox",
         "command": ["httpd", "-f", "-p", "8000", "-h", "/www"],
         "networking": {"default": {"protocol": "http", "port": 8000}}}' >/dev/null
  t0=$SECONDS
  local status=""
  until [ "$status" = AVAILABLE ]; do
    status="$(curl -sf "$url/v3/pods/composecheck" -H "X-Tapis-Token: $token" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["status"])' || true)"
    ((SECONDS - t0 < 90)) || { explain_stack; fail "the pod is $status, not AVAILABLE, after 90s"; }
    [ "$status" = AVAILABLE ] || sleep 0.5
  done
  echo "pod composecheck AVAILABLE in $((SECONDS - t0))s, in container $(docker ps -q --filter "label=corral.namespace=$NS")"
  curl -sf -X DELETE "$url/v3/pods/composecheck" -H "X-Tapis-Token: $token" >/dev/null
  t0=$SECONDS
  until [ -z "$(docker ps -aq --filter "label=corral.namespace=$NS")" ]; do
    ((SECONDS - t0 < 30)) || fail "the deleted pod's container is still there after 30s"
    sleep 0.5
  done
  echo "pod deleted; its container removed"
  stack_down
  trap - EXIT
  rm -f "$OVERRIDE.log"
}

validate_compose
step "locally made images"
ensure_base_image
ensure_server_images
build_service_image
smoke_binaries
scripts/build-test-image.sh >/dev/null
stack_up_and_pod
echo
echo "compose-check: ok in $((SECONDS - STARTED))s (images built from the locally made base $BASE_IMAGE;"
echo "               no base image could be pulled on this machine)"
