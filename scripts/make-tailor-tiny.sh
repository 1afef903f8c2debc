#!/usr/bin/env bash
# Rebuilds models/tailor-tiny from nothing through the normal run system:
# fetch the corpus, import it as a text dataset, apply recipes/tailor-tiny.yaml,
# run it, register the result as a base and export it with a lineage file.
# Takes about 25 minutes on 2 cores. Usage: scripts/make-tailor-tiny.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-.tailor-pretrain}
port=${TAILOR_PRETRAIN_PORT:-7079}
go build -o bin/tailor ./cmd/tailor
bin/tailor corpus export --dir "$work/corpus" >/dev/null
bin/tailor server --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
export TAILOR_SERVER=127.0.0.1:$port
for _ in $(seq 50); do bin/tailor run list >/dev/null 2>&1 && break; sleep 0.2; done
bin/tailor dataset import "$work/corpus/pretrain-text.jsonl" --name pretrain-text --task text >/dev/null
bin/tailor recipe apply recipes/tailor-tiny.yaml >/dev/null
bin/tailor run start tailor-tiny --wait --output json >"$work/run.json"
run=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/run.json")
bin/tailor base import --from-run "$run" --name tailor-tiny >/dev/null
rm -rf models/tailor-tiny.new
bin/tailor base export tailor-tiny --out models/tailor-tiny.new
bin/tailor run logs "$run" --output json >"$work/logs.json"
bin/tailor dataset show pretrain-text --output json >"$work/dataset.json"
bin/tailor base show tailor-tiny --output json >"$work/base.json"
/usr/bin/python3 scripts/tailor-tiny-lineage.py "$work" >models/tailor-tiny.new/lineage.json
rm -rf models/tailor-tiny && mv models/tailor-tiny.new models/tailor-tiny
echo "models/tailor-tiny rebuilt from run $run"
