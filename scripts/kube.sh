#!/usr/bin/env bash
# scripts/kube.sh builds the binaries of the Kubernetes test cluster that
# internal/run/kube/kubetest starts: kube-apiserver, kube-scheduler and
# kube-controller-manager (k8s.io/kubernetes v1.37.2), etcd v3.7.0 and KWOK
# v0.8.0 with its stage files. Everything comes from the Go module proxy and
# is built in throwaway modules (never the repository's go.mod) into a
# versioned cache folder:
#
#   ${TAILOR_CACHE:-~/.cache/tailor}/kube-v1.37.2/bin/{kube-apiserver,...}
#   ${TAILOR_CACHE:-~/.cache/tailor}/kube-v1.37.2/stages/{node-fast,pod-fast}/*.yaml
#
# What is already in the cache is skipped, so a second run costs seconds. A
# cold build took 58 minutes on two shared cores and left 377 MB.
# Prints the cache folder on its last line.
set -euo pipefail

K8S_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.7.0
KWOK_VERSION=v0.8.0

CACHE="${TAILOR_CACHE:-$HOME/.cache/tailor}/kube-${K8S_VERSION}"
BIN="$CACHE/bin"
mkdir -p "$BIN" "$CACHE/stages"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

export GOFLAGS=-mod=mod
export CGO_ENABLED=0
build_flags=(-trimpath -ldflags "-s -w")

log() { printf '%s kube.sh: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

have() {
	local b
	for b in "$@"; do
		[ -x "$BIN/$b" ] || return 1
	done
}

# Kubernetes control plane (+ etcd: k8s.io/kubernetes v1.37.2 requires
# go.etcd.io/etcd/server/v3 v3.7.0 itself, so one module builds both and
# shares the compiled dependencies).
if ! have kube-apiserver kube-scheduler kube-controller-manager etcd; then
	log "building kube-apiserver, kube-scheduler, kube-controller-manager $K8S_VERSION and etcd $ETCD_VERSION"
	mod="$work/k8s"
	mkdir -p "$mod"
	(
		cd "$mod"
		go mod init tailor.local/kube-build >/dev/null 2>&1
		# k8s.io/kubernetes requires its staging modules at v0.0.0 and
		# replaces them by ./staging paths that a dependency cannot use:
		# point each one at its published release instead.
		gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
		for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod"); do
			go mod edit -replace "$m=$m@$STAGING_VERSION"
		done
		go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
			"k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
			"k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
			"go.etcd.io/etcd/server/v3@$ETCD_VERSION"
		for c in kube-apiserver kube-scheduler kube-controller-manager; do
			if [ ! -x "$BIN/$c" ]; then
				log "go build $c"
				go build "${build_flags[@]}" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
				mv "$BIN/$c.tmp" "$BIN/$c"
			fi
		done
		if [ ! -x "$BIN/etcd" ]; then
			log "go build etcd"
			go build "${build_flags[@]}" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
			mv "$BIN/etcd.tmp" "$BIN/etcd"
		fi
	)
fi

# KWOK in a module of its own: it pins its own k8s.io release.
if ! have kwok || [ ! -d "$CACHE/stages/node-fast" ] || [ ! -d "$CACHE/stages/pod-fast" ]; then
	log "building kwok $KWOK_VERSION"
	mod="$work/kwok"
	mkdir -p "$mod"
	(
		cd "$mod"
		go mod init tailor.local/kwok-build >/dev/null 2>&1
		go get "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
		if [ ! -x "$BIN/kwok" ]; then
			go build "${build_flags[@]}" -o "$BIN/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok
			mv "$BIN/kwok.tmp" "$BIN/kwok"
		fi
		src="$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
		for s in node pod; do
			rm -rf "$CACHE/stages/$s-fast.tmp"
			mkdir -p "$CACHE/stages/$s-fast.tmp"
			cp "$src/kustomize/stage/$s/fast/"*.yaml "$CACHE/stages/$s-fast.tmp/"
			chmod -R u+w "$CACHE/stages/$s-fast.tmp"
			rm -rf "$CACHE/stages/$s-fast"
			mv "$CACHE/stages/$s-fast.tmp" "$CACHE/stages/$s-fast"
		done
	)
fi

printf '%s\n' "$K8S_VERSION" >"$CACHE/VERSION"
log "ready"
echo "$CACHE"
