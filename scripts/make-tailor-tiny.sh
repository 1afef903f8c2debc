#!/usr/bin/env bash
# Rebuilds a tailor-tiny base from nothing through the normal run system:
# fetch the corpus, import it as a text dataset, apply recipes/tailor-tiny.yaml,
# run it, register the result as a base and export it with a lineage file.
#
#   scripts/make-tailor-tiny.sh [WORKDIR]          → models/tailor-tiny (v1)
#   scripts/make-tailor-tiny.sh --email [WORKDIR]  → models/tailor-tiny-v2
#
# --email appends pretrain-email.jsonl (the bodies of the period-1 ham mail
# that a default import puts in the train split, never a validation or test
# message) to dataset pretrain-text, so the same recipe, whose data
# selector is pretrain-text@latest, trains its tokenizer and weights on
# email as well. Each takes about 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
email=
if [ "${1:-}" = --email ]; then
  email=1
  shift
fi
out=models/tailor-tiny${email:+-v2}
work=${1:-.tailor-pretrain${email:+-v2}}
port=${TAILOR_PRETRAIN_PORT:-7079}
mkdir -p "$work"
go build -o bin/tailor ./cmd/tailor
bin/tailor corpus export --dir "$work/corpus" >/dev/null
bin/tailor server --data-dir "$work/data" --listen "127.0.0.1:$port" --insecure-local >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
export TAILOR_SERVER=127.0.0.1:$port
for _ in $(seq 50); do bin/tailor run list >/dev/null 2>&1 && break; sleep 0.2; done
bin/tailor dataset import "$work/corpus/pretrain-text.jsonl" --name pretrain-text --task text >/dev/null
if [ -n "$email" ]; then
  bin/tailor dataset import "$work/corpus/pretrain-email.jsonl" --name pretrain-text --append >/dev/null
fi
bin/tailor recipe apply recipes/tailor-tiny.yaml >/dev/null
bin/tailor run start tailor-tiny --wait --output json >"$work/run.json"
run=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/run.json")
bin/tailor base import --from-run "$run" --name tailor-tiny >/dev/null
rm -rf "$out.new"
bin/tailor base export tailor-tiny --out "$out.new"
bin/tailor run logs "$run" --output json >"$work/logs.json"
bin/tailor dataset show pretrain-text --output json >"$work/dataset.json"
bin/tailor base show tailor-tiny --output json >"$work/base.json"
/usr/bin/python3 scripts/tailor-tiny-lineage.py "$work" ${email:+--email} >"$out.new/lineage.json"
rm -rf "$out" && mv "$out.new" "$out"
echo "$out rebuilt from run $run"
