#!/usr/bin/env bash
# Build the liveness-gateway image: make image.
#
#   1. a Docker engine (scripts/docker-engine.sh starts one when none answers);
#   2. the base image (scripts/base-image.sh pulls it, or bootstraps it where no registry can
#      be reached);
#   3. the Python wheels, fetched and built on the host into build/wheels/ for the image's
#      Python (CPython 3.11 on glibc), so that the image build reaches no package index;
#   4. docker build --network host (the only network any container of ours ever gets).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-liveness-gateway:$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)}
IMAGE_VERSION=${IMAGE_VERSION:-${IMAGE##*:}}
PYTHON=${PYTHON:-python3}
BASE_IMAGE=${BASE_IMAGE:-$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)}
# The Python of Debian bookworm, which the image runs.
IMAGE_PYTHON_VERSION=3.11
WHEELS=build/wheels

scripts/docker-engine.sh
scripts/base-image.sh "$BASE_IMAGE"

# Pin the base by digest where it came from a registry (a bootstrapped stand-in has none).
base_ref=$BASE_IMAGE
digest=$(docker image inspect -f '{{range .RepoDigests}}{{.}} {{end}}' "$BASE_IMAGE" | awk '{print $1}')
if [ -n "$digest" ]; then
  base_ref="$BASE_IMAGE@${digest#*@}"
fi

echo "build-image: wheels for CPython $IMAGE_PYTHON_VERSION into $WHEELS/" >&2
arch=$(uname -m)
mkdir -p "$WHEELS/deps"
# Binary wheels only, for the image's interpreter and platform rather than the host's.
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$IMAGE_PYTHON_VERSION" --implementation cp \
  --platform "manylinux_2_28_$arch" --platform "manylinux2014_$arch" \
  --platform "manylinux_2_17_$arch" --platform "linux_$arch" \
  -r requirements-image.txt -d "$WHEELS/deps"
# Only the wheels the requirements name: stale versions would defeat the pins and the cache.
"$PYTHON" - "$WHEELS/deps" requirements-image.txt <<'PY'
import pathlib, re, sys
wheels, reqs = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
norm = lambda s: re.sub(r"[-_.]+", "_", s).lower()
wanted = {
    (norm(n), v)
    for n, v in (l.split("==") for l in reqs.read_text().splitlines() if l and l[0] != "#")
}
for wheel in wheels.glob("*.whl"):
    name, version = wheel.name.split("-")[:2]
    if (norm(name), version) not in wanted:
        wheel.unlink()
PY
rm -rf "$WHEELS/app" && mkdir -p "$WHEELS/app"
"$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps -w "$WHEELS/app" .

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain -- service protos pyproject.toml 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi

echo "build-image: docker build $IMAGE (base $base_ref)" >&2
start=$(date +%s)
log=build/image-build.log
if ! docker build --network host --pull=false \
  --build-arg BASE_IMAGE="$base_ref" \
  --build-arg BASE_NAME="$base_ref" \
  --build-arg VERSION="$IMAGE_VERSION" \
  --build-arg REVISION="$revision" \
  -t "$IMAGE" . >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "build-image: docker build failed (whole log in $log)" >&2
  exit 1
fi
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
base_size=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")
echo "build-image: $IMAGE built in $(( $(date +%s) - start ))s:" \
  "$(( size / 1000000 )) MB, $(( (size - base_size) / 1000000 )) MB above $BASE_IMAGE" >&2
