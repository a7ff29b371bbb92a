# liveness-gateway container image.
#
# Built by `make image` (scripts/build-image.sh), which first puts the Python wheels in
# build/wheels/ on the host: the image installs them with --no-index and never reaches a
# Python package index itself. Only Debian's own packages are installed from its mirror.
#
# BASE_IMAGE is a tag; where the registry is reachable the build script pins it by digest
# (--build-arg BASE_IMAGE=debian:bookworm-slim@sha256:...).
ARG BASE_IMAGE=debian:bookworm-slim

# ---- build: a virtualenv with the gateway and its pinned dependencies -------------------
FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1
RUN python3 -m venv /opt/liveness-gateway
# Dependencies first: this layer stays cached until requirements-image.txt changes.
COPY requirements-image.txt /tmp/requirements-image.txt
COPY build/wheels/deps/ /tmp/wheels/deps/
RUN /opt/liveness-gateway/bin/pip install --find-links /tmp/wheels/deps \
      --require-virtualenv -r /tmp/requirements-image.txt
COPY build/wheels/app/ /tmp/wheels/app/
# Resolved against the wheels only: a dependency missing from requirements-image.txt fails here.
RUN /opt/liveness-gateway/bin/pip install --find-links /tmp/wheels/deps --find-links /tmp/wheels/app \
      liveness-gateway \
 && /opt/liveness-gateway/bin/pip uninstall -y pip setuptools \
 && /opt/liveness-gateway/bin/python -m compileall -q /opt/liveness-gateway/lib \
 && /opt/liveness-gateway/bin/liveness-gateway --version

# ---- final: Debian's Python runtime, the virtualenv, a non-root user --------------------
FROM ${BASE_IMAGE}
# python3 only (no pip, no venv, no compilers); ca-certificates for the vendors' HTTPS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 liveness \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin liveness
COPY --from=build /opt/liveness-gateway /opt/liveness-gateway
ENV PATH=/opt/liveness-gateway/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Numeric, so that runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /nonexistent
# gRPC (LIVENESS_PORT) and Prometheus metrics (LIVENESS_METRICS_PORT).
EXPOSE 50051 9464
# SIGTERM starts the drain: health NOT_SERVING, in-flight calls finish, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["liveness-gateway", "serve"]

# Last, so that a new commit only changes the image config, not a layer.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/liveness-gateway/liveness-gateway
ARG BASE_NAME=debian:bookworm-slim
LABEL org.opencontainers.image.title="liveness-gateway" \
      org.opencontainers.image.description="gRPC gateway in front of face-liveness vendor HTTP APIs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_NAME}"
