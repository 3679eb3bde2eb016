#!/usr/bin/env bash
# Prepares the JupyterHub baseline of `corral-load spawn-storm` (recipe in
# shared/reference/pools.md §7): JupyterHub 6.1 from PyPI in a venv under ~/.cache, and
# Debian's configurable-http-proxy. Idempotent. Exits non-zero, saying what is missing, when
# the baseline cannot run here; spawn-storm then records why instead of a figure.
set -euo pipefail

VENV="$HOME/.cache/corral-jupyterhub-venv"
PROXY=/usr/bin/configurable-http-proxy

if [ ! -x "$VENV/bin/jupyterhub" ]; then
    echo "installing JupyterHub 6.1.1 into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "jupyterhub==6.1.1"
fi
"$VENV/bin/jupyterhub" --version >/dev/null

if [ ! -e "$PROXY" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing configurable-http-proxy (Debian package node-configurable-http-proxy)" >&2
    apt-get install -y -qq node-configurable-http-proxy >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq node-configurable-http-proxy >/dev/null; } || true
fi
if [ ! -e "$PROXY" ]; then
    echo "configurable-http-proxy is missing: apt-get install node-configurable-http-proxy" >&2
    exit 1
fi
# Debian's proxy with a NodeSource node needs Debian's module path (pools.md §7.1); the
# benchmark starts the hub with NODE_PATH=/usr/share/nodejs.
NODE_PATH=/usr/share/nodejs "$PROXY" --version >/dev/null
echo "JupyterHub baseline ready: $VENV/bin/jupyterhub, $PROXY" >&2
