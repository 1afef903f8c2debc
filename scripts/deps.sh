#!/usr/bin/env bash
# Installs what Tailor needs on Debian 12, idempotently. `deps.sh demo`: the
# build (OpenBLAS for the engine's GEMM, oneDNN for its bf16 products) and
# Node.js/npm for the corpus
# fetch. `deps.sh` (for the tests): that plus Debian's PyTorch, numpy, SciPy
# and scikit-learn, the numerical references the tests compare against, and
# Debian's chromium, the browser e2e/dashboard_test.go drives, and the
# servers the scale-out tests start: Debian's nats-server and PostgreSQL 15
# (without its default cluster: the tests run their own), and versitygw
# built from the Go module proxy (scripts/versitygw.sh). `deps.sh servers`:
# only the Debian server packages; a test helper runs it when a server binary
# is missing.
set -euo pipefail
mode=${1:-test}
servers=(nats-server postgresql-15)
case $mode in
demo) pkgs=(build-essential libopenblas-dev libdnnl-dev nodejs npm ca-certificates) ;;
test) pkgs=(build-essential libopenblas-dev libdnnl-dev nodejs npm ca-certificates
	python3-torch python3-numpy python3-scipy python3-sklearn chromium "${servers[@]}") ;;
servers) pkgs=("${servers[@]}") ;;
*) echo "usage: deps.sh [test|demo|servers]" >&2; exit 2 ;;
esac
need=()
for p in "${pkgs[@]}"; do
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
	# The tests start their own PostgreSQL servers: no system cluster.
	if [[ " ${need[*]} " == *" postgresql-15 "* && ! -e /etc/postgresql-common/createcluster.conf ]]; then
		$SUDO mkdir -p /etc/postgresql-common
		echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
	fi
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
[ "$mode" = servers ] && exit 0
command -v go >/dev/null 2>&1 || { echo "deps: Go 1.26 is required (https://go.dev/dl); install it and re-run" >&2; exit 1; }
go mod download
# The S3 server the blob/s3 tests start, built once into $TAILOR_CACHE.
[ "$mode" = test ] && "$(dirname "$0")/versitygw.sh" >/dev/null
exit 0
