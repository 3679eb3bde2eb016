# One image for every Corral service: docker-compose.yml picks the binary per service
# (`command: ["spawner"]`), and `corral` (dev, serve, pods, token) is in it too.
#
#   docker build -t corral .                       # default target `runtime`: built from source
#
# The base images are build arguments, so locally made ones can stand in for pulled ones.
# Where no image can be pulled at all, the `runtime-prebuilt` target puts binaries built on
# the host (the build context's bin/) on a locally made Debian base; scripts/compose-check.sh
# makes that context (bin/, config/, this file) and builds it:
#
#   docker build --target runtime-prebuilt --build-arg BASE_IMAGE=corral-local/debian:bookworm \
#       -t corral-local/corral <context>
#
# `runtime-prebuilt` comes before the Rust stage on purpose: the classic builder builds every
# stage up to the target, so this order lets the prebuilt image build without the Rust image.

ARG RUST_IMAGE=rust:1-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# What both runtime targets share: CA certificates, git (the spawner clones pods' git
# sources), an unprivileged user, the configuration.
FROM ${BASE_IMAGE} AS base
# A locally made base may carry them already (and have no network to fetch them).
RUN if [ ! -s /etc/ssl/certs/ca-certificates.crt ] || ! command -v git >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends ca-certificates git \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin corral
COPY config /etc/corral
ENV CORRAL_CONFIG=/etc/corral/compose.toml

# Binaries built on the host (`cargo build --release`), from the context's bin/. A plain
# `docker build .` passes through this stage too (the classic builder again), with no bin/:
# `bi[n]` then matches nothing, and this Dockerfile, always in the context, keeps the COPY valid.
FROM base AS runtime-prebuilt
COPY Dockerfile bi[n] /usr/local/bin/
RUN rm /usr/local/bin/Dockerfile
USER corral
CMD ["corral", "--help"]

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
ENV CARGO_TARGET_DIR=/src/target
RUN cargo build --release --locked \
        --bin api-gateway --bin spawner --bin health-poller --bin pool-manager --bin log-collector --bin corral \
    && mkdir /out \
    && cd /src/target/release \
    && cp api-gateway spawner health-poller pool-manager log-collector corral /out/ \
    && strip --strip-debug /out/*

# The default target: the binaries built above.
FROM base AS runtime
COPY --from=build /out/ /usr/local/bin/
USER corral
CMD ["corral", "--help"]
