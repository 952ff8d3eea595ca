#!/usr/bin/env bash
# `make image`: build the Dockerfile with Debian's podman, without Docker and without the
# registry base. See docs/kubernetes.md ("Building the image here").
#
# The Dockerfile's base, python:3.11-slim-bookworm, comes from a registry this machine does
# not reach, so a stand-in is made once with mmdebstrap from Debian bookworm's own python3.11
# and tagged with the base's full name: FROM resolves to it locally (--pull=never), and the
# Dockerfile stays the one a normal registry build uses.
#
# Everything cached lives outside the repo, so CI and later builds on this machine reuse it:
#   $IMAGE_CACHE_DIR (default /var/cache/customer-service-image): the base's tarball;
#   podman's own storage (/var/lib/containers, vfs driver): the base image and every layer.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/image/podman.sh

CACHE=${IMAGE_CACHE_DIR:-/var/cache/customer-service-image}
IMAGE=${IMAGE:-localhost/customer-service:dev}
BASE=docker.io/library/python:3.11-slim-bookworm
# What the registry base gives the Dockerfile: python (and python -m venv with pip), and
# groupadd/useradd (passwd, in minbase). Docs, man pages and translations are left out.
BASE_PACKAGES=python3.11,python3.11-venv,python-is-python3,ca-certificates
BASE_TAR="$CACHE/python3.11-bookworm-$(printf '%s' "$BASE_PACKAGES" | cksum | cut -d' ' -f1).tar"

need() {
    command -v "$1" > /dev/null || {
        echo "build_image: $1 not found; install it with: apt-get install -y $2" >&2
        exit 2
    }
}
need podman "podman runc"
need mmdebstrap mmdebstrap

mkdir -p "$CACHE"
if ! podman image exists "$BASE"; then
    if [ ! -s "$BASE_TAR" ]; then
        echo "build_image: making the base stand-in with mmdebstrap (about 2 minutes, once)"
        # The machine's own apt sources (a file), so the mirror is whichever this machine uses.
        sources=/etc/apt/sources.list.d/debian.sources
        [ -f "$sources" ] || sources=/etc/apt/sources.list
        mmdebstrap --variant=minbase --include="$BASE_PACKAGES" \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            bookworm "$BASE_TAR.part" "$sources" < /dev/null
        mv "$BASE_TAR.part" "$BASE_TAR"
    fi
    podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        "$BASE_TAR" "$BASE" > /dev/null
fi

# pip inside the build verifies PyPI with this machine's trust store (which may hold a
# TLS-inspecting proxy's CA), mounted for the RUN steps only: it is in no layer.
ca=/etc/ssl/certs/ca-certificates.crt
mounts=()
if [ -f "$ca" ]; then
    printf '[global]\ncert = /run/build-ca/ca-certificates.crt\n' > "$CACHE/pip.conf"
    mounts=(-v "$ca:/run/build-ca/ca-certificates.crt:ro" -v "$CACHE/pip.conf:/etc/pip.conf:ro")
fi

# No per-commit build args by default: every layer is reused until a file changes (vfs makes
# each rebuilt layer a full copy). Labels can be set as on any build:
#   scripts/image/build.sh --build-arg REVISION=$(git rev-parse HEAD)
# The sources' hash as a label: tests/image skip an image built from other sources.
context=$(python3 scripts/image/context_hash.py .)
start=$(date +%s)
podman build --network host --isolation chroot --pull=never --layers \
    "${mounts[@]}" --label "customer-service.context=$context" "$@" \
    -t "$IMAGE" .
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "build_image: $IMAGE built in $(($(date +%s) - start)) s, $((size / 1000000)) MB"
