#!/usr/bin/env bash
# Make sure the base image named by the Dockerfile (BASE_IMAGE, e.g. debian:bookworm-slim)
# is in the local engine.
#
# On a normal machine the tag is simply pulled. Where no public image registry can be
# reached but Debian's package mirror can, the same Debian release is bootstrapped
# (debootstrap --variant=minbase, about a minute) and imported under that tag, trimmed the
# way the official slim images are (no docs, man pages or apt lists).
set -euo pipefail

BASE_IMAGE=${1:?usage: base-image.sh IMAGE:TAG}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PULL_TIMEOUT_S=${PULL_TIMEOUT_S:-60}

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi

echo "base-image: pulling $BASE_IMAGE" >&2
if timeout "$PULL_TIMEOUT_S" docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi

echo "base-image: $BASE_IMAGE cannot be pulled; bootstrapping Debian $SUITE from $MIRROR" >&2
if ! command -v debootstrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends debootstrap >/dev/null
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
  tail -n 20 "$rootfs.log" >&2
  exit 1
}
rm -f "$rootfs.log"

# What the official slim images carry in apt's configuration: updates and security suites,
# no docs/man/locales in later installs, no recommends, no apt caches.
cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
Acquire::GzipIndexes "true";
APT
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs"/tmp/*

tar --numeric-owner -C "$rootfs" -c . |
  docker import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "debootstrap --variant=minbase $SUITE (local stand-in for $BASE_IMAGE)" \
    - "$BASE_IMAGE" >/dev/null
echo "base-image: imported $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)" >&2
