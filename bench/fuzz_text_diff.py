#!/usr/bin/env python3
"""Differential fuzzing of topicd's text pipeline against scikit-learn.

Random documents built from nasty pieces (capital sigma, dotted I, combining
marks, ligatures, Hangul, CR/LF/U+2028, NUL, quote markers, dashes...) go to
CountVectorizer (after sklearn's strip_newsgroup_* when stripping) and to
`topicd vectorize` with weighting "count", over every combination of
lowercase, strip_accents and preprocess.strip; vocabularies and counts must be
identical. Invalid UTF-8 cannot travel in JSON and the JSON reader refuses
NUL in documents; tests/unit covers both.

usage: python3 bench/fuzz_text_diff.py [--topicd build/topicd] [--seeds 10] [--docs 300]
Exit status 0 when every run agrees.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import scipy.io
import scipy.sparse as sp
from sklearn.datasets._twenty_newsgroups import (
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)
from sklearn.feature_extraction.text import CountVectorizer

PIECES = ["a", "B", "z", "Q", "_", "0", "9", " ", " ", "\n", "\n\n", "\r\n", "\r", "\t", "-", "--",
          ">", "'", ".", ":", "writes:", "wrote:", "In article", "|", "\u00e9", "\u00c9", "\u00df",
          "\u1e9e", "\u0130", "\u0131", "\u03a3", "\u03c3", "\u03c2", "\u039f", "\u0394", "\u03ac",
          "\u0301", "\u0308", "\u00b2", "\u0661", "\u4e2d", "\u3000", "\u00a0", "\u2028", "\u0085",
          "\ufb01", "\u212a", "\u2167", "\u00bd", "\uac01", "\u1100", "\u0345", "\u1fbc", "\u01c5",
          "\u02b0", "\u00aa", "\u2019", "\u00b7", "\U0001d400", "\U0001f600", "\u03a3\u0301",
          "\ufdfa", "\u0e20", "\u093f", "\ufffd", "\u05f4", "\u0387", "\u2126"]


def run(topicd, docs, strip, lower, acc, tmp):
    path = os.path.join(tmp, "docs.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")
    spec = {"vectorizer": {"weighting": "count", "lowercase": lower, "strip_accents": acc}}
    if strip:
        spec["preprocess"] = {"strip": ["headers", "footers", "quotes"]}
    mtx = os.path.join(tmp, "out.mtx")
    r = subprocess.run([topicd, "vectorize", "--spec", json.dumps(spec), "--matrix-market", mtx,
                        "--threads", "3", "--format", "jsonl", path], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stdout + r.stderr
    return json.loads(r.stdout)["vocabulary"], sp.csr_matrix(scipy.io.mmread(mtx))


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--topicd", default=os.path.join(root, "build", "topicd"))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--docs", type=int, default=300)
    args = ap.parse_args()
    bad = runs = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            rng = random.Random(seed)
            docs = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60)))
                    for _ in range(args.docs)]
            for strip in (False, True):
                texts = docs
                if strip:
                    texts = [strip_newsgroup_quoting(strip_newsgroup_footer(strip_newsgroup_header(d)))
                             for d in docs]
                for lower in (True, False):
                    for acc in (None, "ascii", "unicode"):
                        runs += 1
                        try:
                            v = CountVectorizer(lowercase=lower, strip_accents=acc)
                            X = sp.csr_matrix(v.fit_transform(texts), dtype=np.float64)
                            ref = list(v.get_feature_names_out())
                        except ValueError:
                            ref = None
                        vocab, Y = run(args.topicd, docs, strip, lower, acc, tmp)
                        what = "seed %d strip %d lowercase %d accents %s" % (seed, strip, lower, acc)
                        if ref is None or vocab is None:
                            if (ref is None) != (vocab is None):
                                bad += 1
                                print("FAIL %s: sklearn %s, topicd %s" % (
                                    what, "error" if ref is None else "ok", Y if vocab is None else "ok"))
                            continue
                        if vocab != ref:
                            bad += 1
                            a, b = set(vocab), set(ref)
                            print("FAIL %s: only topicd %s, only sklearn %s" % (
                                what, [ascii(t) for t in sorted(a - b)[:5]], [ascii(t) for t in sorted(b - a)[:5]]))
                        elif Y.shape != X.shape or (Y.nnz and abs(Y - X).max() != 0) or Y.nnz != X.nnz:
                            bad += 1
                            print("FAIL %s: counts differ" % what)
    print("%d runs, %d differ" % (runs, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
