#!/usr/bin/env bash
# Build (or reuse) the binaries the cluster tests (tests/cluster) run:
#   etcd                     Debian's etcd-server package
#   kube-apiserver 1.20.2    built from Debian bookworm's kubernetes source package
#   apiextensions-apiserver  built from Debian sid's golang-k8s-* source packages
#                            (newer: it runs the CRD's CEL rules, which 1.20 lacks)
# Idempotent: a binary already in the cache is reused, so CI on the same machine
# pays the builds (about 10 + 10 minutes on 2 cores) once.
#
#   CLUSTER_BIN_CACHE  where binaries go (default /var/cache/customer-service-cluster)
#
# Only Debian's archive is used, at the mirror this machine's apt already names.
set -euo pipefail

CACHE="${CLUSTER_BIN_CACHE:-/var/cache/customer-service-cluster}"
BIN="$CACHE/bin"
SRC="$CACHE/src"
K8S_DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
K8S_UPSTREAM="1.20.2"
mkdir -p "$BIN" "$SRC"

log() { echo "build_cluster_bins: $*" >&2; }

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "$@"
}

mirror() {
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [[ -n "$uri" ]] || uri=$(awk '/^deb / && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
    echo "$uri"
}

ensure_etcd() {
    if [[ -x "$BIN/etcd" ]]; then log "etcd cached: $("$BIN/etcd" --version | head -1)"; return; fi
    command -v etcd >/dev/null || apt_install etcd-server
    ln -sf "$(command -v etcd)" "$BIN/etcd"
    log "etcd: $("$BIN/etcd" --version | head -1)"
}

ensure_sources_list() {
    if apt-cache showsrc "kubernetes=$K8S_DEB_VERSION" 2>/dev/null | grep -q '^Package: kubernetes'; then
        return
    fi
    log "adding a bookworm deb-src entry for Debian's mirror"
    cat > /etc/apt/sources.list.d/debian-src.sources <<SOURCES
Types: deb-src
URIs: $(mirror)
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    apt-get update -q
}

ensure_kube_apiserver() {
    if [[ -x "$BIN/kube-apiserver" ]]; then log "kube-apiserver cached: $("$BIN/kube-apiserver" --version)"; return; fi
    command -v go >/dev/null || apt_install golang-go
    command -v rsync >/dev/null || apt_install rsync  # the upstream Makefile copies with it
    local tree="$SRC/kubernetes-$K8S_UPSTREAM"
    if [[ ! -f "$tree/cmd/kube-apiserver/apiserver.go" ]]; then
        ensure_sources_list
        (cd "$SRC" && apt-get source --download-only "kubernetes=$K8S_DEB_VERSION")
        tar -C "$SRC" -xzf "$SRC/kubernetes_${K8S_DEB_VERSION%%-*}.orig.tar.gz"
    fi
    if [[ ! -f "$tree/pkg/generated/openapi/zz_generated.openapi.go" ]]; then
        # The one generated file the tarball lacks; the upstream Makefile makes it
        # (as Debian's build does), sharing our Go build cache.
        log "generating the OpenAPI definitions (make gen_openapi)"
        # The cache must exist first: a dangling link makes Go's mkdir fail with "file exists".
        mkdir -p "$tree/_output/local/go" "$CACHE/gocache"
        [[ -e "$tree/_output/local/go/cache" ]] || ln -s "$CACHE/gocache" "$tree/_output/local/go/cache"
        (cd "$tree" && make gen_openapi)
    fi
    # 1.20 vendors modern-go/reflect2 1.0.1, whose map iteration faults under Go 1.18+
    # (the server dies on the first custom resource it encodes); Debian's 1.0.2 fixes it.
    local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
    [[ -f "$reflect2/go_above_118.go" ]] || apt_install golang-github-modern-go-reflect2-dev
    rsync -a --delete --exclude '*_test.go' "$reflect2/" "$tree/vendor/github.com/modern-go/reflect2/"
    log "building kube-apiserver $K8S_UPSTREAM with $(go version) (about 10 minutes on 2 cores)"
    # In GOPATH mode the vendored package's import path carries the vendor/ prefix.
    local pkg=k8s.io/kubernetes/vendor/k8s.io/component-base/version
    local ldflags="-s -w -X $pkg.gitVersion=v$K8S_UPSTREAM -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    # GOPATH mode, as Debian's own build does: Go 1.19's module mode rejects 1.20's
    # vendor/modules.txt, while GOPATH mode reads vendor/ (staging is symlinked there).
    local gopath="$CACHE/gopath"
    mkdir -p "$gopath/src/k8s.io"
    ln -sfn "$tree" "$gopath/src/k8s.io/kubernetes"
    (cd "$gopath/src/k8s.io/kubernetes" && GO111MODULE=off GOPATH="$gopath" GOCACHE="$CACHE/gocache" \
        CGO_ENABLED=0 go build -o "$BIN/kube-apiserver.tmp" -ldflags "$ldflags" ./cmd/kube-apiserver)
    mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
    log "kube-apiserver: $("$BIN/kube-apiserver" --version)"
}

# sid's Go packages, fetched with apt into a private tree (nothing is installed on
# the machine): the Go toolchain and every golang-*-dev source the server needs.
ensure_apiextensions_apiserver() {
    if [[ -x "$BIN/apiextensions-apiserver" ]]; then log "apiextensions-apiserver cached"; return; fi
    local s="$CACHE/sid-apt" root="$CACHE/sid-apt/root"
    mkdir -p "$s/lists/partial" "$s/archives/partial" "$s/etc" "$s/debs"
    touch "$s/status"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(mirror) sid main" > "$s/etc/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$s/etc/sources.list" -o Dir::Etc::SourceParts=/nonexistent
                -o "Dir::State::Lists=$s/lists" -o "Dir::State::status=$s/status"
                -o "Dir::Cache=$s" -o "Dir::Cache::Archives=$s/archives")
    if [[ ! -x "$root/usr/lib/go/bin/go" ]] && ! compgen -G "$root/usr/lib/go-1.*/bin/go" >/dev/null; then
        apt-get "${opts[@]}" update -q
        apt-get "${opts[@]}" install -s -y golang-k8s-apiextensions-apiserver-dev golang-go \
            | awk '/^Inst golang-/ {print $2}' > "$s/pkgs.txt"
        (cd "$s/debs" && xargs apt-get "${opts[@]}" download < "$s/pkgs.txt")
        for deb in "$s"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
    fi
    local goroot
    goroot=$(ls -d "$root"/usr/lib/go-1.* | sort -V | tail -1)
    [[ -d "$goroot/src" ]] || ln -sfn "$root/usr/share/$(basename "$goroot")/src" "$goroot/src"
    local pkg=k8s.io/component-base/version
    local version
    version=$(dpkg-deb -f "$s"/debs/golang-k8s-apiextensions-apiserver-dev_*.deb Version | cut -d- -f1)
    local minor="${version#0.}"
    minor="${minor%%.*}"
    log "building apiextensions-apiserver $version with $("$goroot/bin/go" version)"
    (cd "$root/usr/share/gocode/src/k8s.io/apiextensions-apiserver" && \
        GOROOT="$goroot" GOTOOLCHAIN=local GO111MODULE=off GOPATH="$root/usr/share/gocode" \
        GOCACHE="$CACHE/gocache-sid" CGO_ENABLED=0 "$goroot/bin/go" build -o "$BIN/apiextensions-apiserver.tmp" \
        -ldflags "-s -w -X $pkg.gitVersion=v1.${version#0.} -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor" .)
    mv "$BIN/apiextensions-apiserver.tmp" "$BIN/apiextensions-apiserver"
}

ensure_etcd
ensure_kube_apiserver
ensure_apiextensions_apiserver || log "apiextensions-apiserver not built: the CEL tests will be skipped"
log "binaries ready in $BIN"
