#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time (FUZZTIME, default
# 5s each). Longer local runs: FUZZTIME=5m scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-5s}
grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do
	for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/' | sort -u); do
		echo "fuzz $dir $f ($t)"
		go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$dir" >/tmp/tailor-fuzz.log 2>&1 || { cat /tmp/tailor-fuzz.log; exit 1; }
	done
done
