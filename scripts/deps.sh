#!/usr/bin/env bash
# Installs what Tailor's build, tests and demo need on Debian 12, idempotently:
# OpenBLAS for the engine's GEMM, Debian's PyTorch/numpy/scikit-learn as the
# numerical references, Node.js/npm for reference tokenizers and corpus fetch.
set -euo pipefail
need=()
for p in build-essential libopenblas-dev python3-torch python3-numpy python3-scipy python3-sklearn nodejs npm ca-certificates; do
	# nodejs/npm may come from outside Debian's packages (as on CI images):
	# count them as present when the commands exist.
	case $p in
	nodejs) command -v node >/dev/null 2>&1 && continue ;;
	npm) command -v npm >/dev/null 2>&1 && continue ;;
	esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
	echo "deps: installing ${need[*]}" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
command -v go >/dev/null 2>&1 || { echo "deps: Go 1.26 is required (https://go.dev/dl); install it and re-run" >&2; exit 1; }
go mod download
