#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short while: FUZZTIME per
# target, as Go's -fuzztime takes it. The default is a fixed number of
# inputs (2000x), not a duration, so a loaded machine does the same work and
# no run trips over its own deadline. Longer local runs: FUZZTIME=5m scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-2000x}
grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do
	for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/' | sort -u); do
		echo "fuzz $dir $f ($t)"
		go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$dir" >/tmp/tailor-fuzz.log 2>&1 || { cat /tmp/tailor-fuzz.log; exit 1; }
	done
done
