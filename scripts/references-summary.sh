#!/usr/bin/env bash
# Prints which reference tools the test run compared against, from the log
# that internal/reference appends to (TAILOR_REFERENCES_LOG): one line per
# reference with the number of tests that used it.
set -euo pipefail
log=${1:?usage: references-summary.sh LOG}
if [ ! -s "$log" ]; then
	echo "references: none ran" >&2
	exit 1
fi
echo "references that ran (reference: tests):"
cut -f1 "$log" | sort | uniq -c | awk '{printf "  %s: %d\n", $2, $1}'
