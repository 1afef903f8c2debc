#!/usr/bin/python3
"""Reference for Tailor's TF-IDF + logistic-regression baseline (internal/eval).

Trains scikit-learn's TfidfVectorizer + LogisticRegression with the settings
the Go baseline uses, on the same train split, and prints JSON to stdout:

  {"accuracy": float, "macro_f1": float, "predictions": [label, ...],
   "tfidf": [{"doc": i, "terms": {term: value, ...}}, ...]}

where "tfidf" holds the rows of the test documents named by --docs (0-based
indices into the test file), keyed by feature name, non-zero entries only.

Input files are JSON lines, one {"text": ..., "label": ...} object a line.

Settings, matching eval.TFIDFOptions and eval.LogRegOptions defaults:
  TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=--sublinear) with its
  other defaults (lowercase, token_pattern (?u)\\b\\w\\w+\\b, smooth idf, l2);
  LogisticRegression(penalty="l2", C=--C, solver="lbfgs", max_iter=--max-iter,
  tol=--tol): multinomial for more than two classes, binary otherwise.

Run with Debian's interpreter, which has scikit-learn:
  /usr/bin/python3 scripts/sklearncheck/check.py --train train.jsonl --test test.jsonl --docs 0,1,2
"""
import argparse
import json
import sys

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score


def read_jsonl(path):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                texts.append(rec["text"])
                labels.append(rec["label"])
            except (ValueError, KeyError) as e:
                sys.exit(f"{path}:{lineno}: want an object with text and label: {e}")
    return texts, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--docs", default="", help="comma-separated test indices whose TF-IDF rows to print")
    ap.add_argument("--sublinear", action="store_true")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--tol", type=float, default=1e-8)
    args = ap.parse_args()

    xtr, ytr = read_jsonl(args.train)
    xte, yte = read_jsonl(args.test)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=args.sublinear)
    mtr = vec.fit_transform(xtr)
    mte = vec.transform(xte)
    clf = LogisticRegression(penalty="l2", C=args.C, solver="lbfgs", max_iter=args.max_iter, tol=args.tol)
    clf.fit(mtr, ytr)
    pred = clf.predict(mte)

    names = vec.get_feature_names_out()
    rows = []
    for d in [int(s) for s in args.docs.split(",") if s.strip()]:
        row = mte[d].tocoo()
        rows.append({"doc": d, "terms": {str(names[j]): float(v) for j, v in zip(row.col, row.data)}})
    json.dump({
        "accuracy": float(accuracy_score(yte, pred)),
        "macro_f1": float(f1_score(yte, pred, average="macro")),
        "predictions": [str(p) for p in pred],
        "tfidf": rows,
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
