#!/usr/bin/env bash
# Checks Tailor's TF-IDF + logistic-regression baseline against Debian's
# scikit-learn on the SpamAssassin split the demo uses: exports the train and
# test splits of dataset "spam" from a running server and prints sklearn's
# accuracy and macro-F1, to compare with the "tfidf_logreg" row of the
# demo's report. Usage: TAILOR_SERVER=127.0.0.1:7070 scripts/spam-sklearn-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin/tailor dataset export spam --split train >"$tmp/train.jsonl"
bin/tailor dataset export spam --split test >"$tmp/test.jsonl"
/usr/bin/python3 scripts/sklearncheck/check.py --train "$tmp/train.jsonl" --test "$tmp/test.jsonl" |
	/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("sklearn tfidf_logreg: accuracy %.4f macro_f1 %.4f" % (d["accuracy"], d["macro_f1"]))'
