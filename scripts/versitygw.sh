#!/usr/bin/env bash
# Builds versitygw, the Apache-2.0 S3 server the internal/blob/s3 tests start
# on 127.0.0.1, from the Go module proxy into
# $TAILOR_CACHE/versitygw-<version> (default $HOME/.cache/tailor) and prints
# the binary's path. A cold build takes about two minutes on two cores; later
# calls only print the path. Concurrent callers wait on one build.
#
#   scripts/versitygw.sh            # the pinned version
#   VERSITYGW_VERSION=v1.8.0 scripts/versitygw.sh
set -euo pipefail
version=${VERSITYGW_VERSION:-v1.8.0}
dir="${TAILOR_CACHE:-$HOME/.cache/tailor}/versitygw-$version"
bin="$dir/versitygw"
if [ ! -x "$bin" ]; then
	command -v go >/dev/null 2>&1 || { echo "versitygw.sh: Go is required to build versitygw" >&2; exit 1; }
	mkdir -p "$dir"
	exec 9>"$dir/.lock"
	flock 9
	if [ ! -x "$bin" ]; then
		echo "versitygw.sh: building github.com/versity/versitygw/cmd/versitygw@$version into $dir (about two minutes)" >&2
		tmp=$(mktemp -d "$dir/build.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		# Outside any module, so the repo's go.mod is neither read nor changed.
		(cd "$tmp" && GOBIN="$tmp" GOWORK=off go install "github.com/versity/versitygw/cmd/versitygw@$version") >&2
		mv "$tmp/versitygw" "$bin"
	fi
fi
echo "$bin"
