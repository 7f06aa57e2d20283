#!/usr/bin/env python3
"""Checks topicd's text pipeline against scikit-learn on 20 Newsgroups.

For each case, the same raw documents go to scikit-learn (strip_newsgroup_*
from sklearn.datasets._twenty_newsgroups, then TfidfVectorizer or
CountVectorizer) and to `topicd vectorize` (which strips them itself, through
its "preprocess.strip" spec), and the script checks that the vocabularies are
identical, term by term, the document frequencies too, and that every matrix
value agrees to 1e-12. It also checks the published facts:
  4-category train subset, stripped, stop_words="english": 2034 x 26576, 133634 nnz
  all 18,846 documents (train + test), stripped:          18846 x 134101, 1229435 nnz
The n-gram cases (vectorizer.ngram_range) run scikit-learn with the same
ngram_range. Where max_features cuts among terms tied on total count,
scikit-learn's choice is arbitrary (numpy's default argsort is not stable)
and topicd keeps the earlier terms: those cases compare against the stable
choice, refitted with vocabulary= (as tests/fixtures/text/gen.py does), and
say how many terms scikit-learn's own pick differs by.

usage: python3 bench/conformance_text.py [--topicd build/topicd]
       [--corpus ../shared/corpora/20news] [--quick]
Exit status 0 when every case agrees.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.io
import scipy.sparse as sp
from sklearn.datasets._twenty_newsgroups import (
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

FASTAI4 = ("alt.atheism", "talk.religion.misc", "comp.graphics", "sci.space")
STRIP_ALL = ["headers", "footers", "quotes"]
TOL = 1e-12


def load(corpus, files, labels=None):
    docs = []
    for name in files:
        with open(os.path.join(corpus, name), encoding="utf-8") as f:
            for line in f:
                o = json.loads(line)
                if labels is None or o["label"] in labels:
                    docs.append(o["text"])
    return docs


def sk_strip(docs, strip):
    out = []
    for d in docs:
        if "headers" in strip:
            d = strip_newsgroup_header(d)
        if "footers" in strip:
            d = strip_newsgroup_footer(d)
        if "quotes" in strip:
            d = strip_newsgroup_quoting(d)
        out.append(d)
    return out


def run_sklearn(docs, strip, vec):
    kw = dict(vec)
    count = kw.pop("weighting", "tfidf") == "count"
    cls = CountVectorizer if count else TfidfVectorizer
    if count:
        for k in ("norm", "use_idf", "smooth_idf", "sublinear_tf"):
            kw.pop(k, None)
    if "ngram_range" in kw:
        kw["ngram_range"] = tuple(kw["ngram_range"])
    texts = sk_strip(docs, strip)
    v = cls(**kw)
    X = v.fit_transform(texts)
    names = list(v.get_feature_names_out())
    if "max_features" in kw:
        stable = stable_max_features(kw, texts)
        if stable != names:
            print("     max_features ties: scikit-learn's pick differs from the stable one by %d terms"
                  % len(set(stable) ^ set(names)))
            kw2 = dict(kw)
            kw2.pop("max_features")
            kw2["vocabulary"] = stable
            v = cls(**kw2)
            X = v.fit_transform(texts)
            names = stable
    X = sp.csr_matrix(X, dtype=np.float64)
    X.sort_indices()
    return names, X


def stable_max_features(kw, texts):
    """The max_features vocabulary when ties are broken by term order."""
    ckw = {k: v for k, v in kw.items() if k in ("lowercase", "strip_accents", "stop_words",
                                                "ngram_range", "min_df", "max_df", "binary")}
    cv = CountVectorizer(**ckw)
    X = cv.fit_transform(texts)
    tfs = np.asarray(X.sum(axis=0)).ravel()
    order = np.argsort(-tfs, kind="stable")[:kw["max_features"]]
    names = cv.get_feature_names_out()
    return sorted(names[i] for i in order)


def run_topicd(topicd, docs, strip, vec, tmp):
    path = os.path.join(tmp, "docs.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")
    spec = {"vectorizer": vec}
    if strip:
        spec["preprocess"] = {"strip": strip}
    mtx = os.path.join(tmp, "out.mtx")
    t = time.time()
    r = subprocess.run([topicd, "vectorize", "--spec", json.dumps(spec), "--matrix-market", mtx,
                        "--format", "jsonl", path], capture_output=True, text=True)
    wall = time.time() - t
    if r.returncode != 0:
        raise RuntimeError("topicd failed (%d): %s %s" % (r.returncode, r.stdout, r.stderr))
    out = json.loads(r.stdout)
    X = sp.csr_matrix(scipy.io.mmread(mtx), dtype=np.float64)
    X.sort_indices()
    return out, X, wall


def compare(name, topicd, docs, strip, vec, tmp, expect=None):
    t = time.time()
    vocab, X = run_sklearn(docs, strip, vec)
    sk_s = time.time() - t
    out, Y, wall = run_topicd(topicd, docs, strip, vec, tmp)
    problems = []
    if out["vocabulary"] != vocab:
        a, b = set(out["vocabulary"]), set(vocab)
        problems.append("vocabulary differs: %d vs %d terms; only topicd %r; only sklearn %r" % (
            len(out["vocabulary"]), len(vocab), sorted(a - b)[:5], sorted(b - a)[:5]))
    df = np.bincount(X.indices, minlength=X.shape[1])
    if list(out["document_frequencies"]) != df.tolist():
        problems.append("document frequencies differ")
    if (out["n_documents"], out["n_features"], out["nnz"]) != (X.shape[0], X.shape[1], X.nnz):
        problems.append("shape/nnz %r vs sklearn %r" % (
            (out["n_documents"], out["n_features"], out["nnz"]), (X.shape[0], X.shape[1], X.nnz)))
    maxdiff = float("nan")
    if Y.shape == X.shape:
        same_structure = Y.nnz == X.nnz and np.array_equal(Y.indptr, X.indptr) and np.array_equal(Y.indices, X.indices)
        if not same_structure:
            problems.append("sparsity structure differs")
        d = abs(Y - X)
        maxdiff = d.max() if d.nnz else 0.0
        if not maxdiff <= TOL:
            problems.append("max |difference| %.3g > %g" % (maxdiff, TOL))
    else:
        problems.append("matrix shape %r vs %r" % (Y.shape, X.shape))
    if expect and (X.shape[0], X.shape[1], X.nnz) != expect:
        problems.append("sklearn gives %r, the published figure is %r" % ((X.shape[0], X.shape[1], X.nnz), expect))
    status = "ok  " if not problems else "FAIL"
    print("%s %-34s %6d x %6d, %7d nnz, max |diff| %.2g  (sklearn %.2f s, topicd %.2f s wall)" % (
        status, name, Y.shape[0], Y.shape[1], Y.nnz, maxdiff, sk_s, wall))
    for p in problems:
        print("     " + p)
    sys.stdout.flush()
    return not problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--topicd", default=os.path.join(root, "build", "topicd"))
    ap.add_argument("--corpus", default=os.path.join(root, "..", "shared", "corpora", "20news"))
    ap.add_argument("--quick", action="store_true", help="only the 4-category cases")
    args = ap.parse_args()

    fast = load(args.corpus, ["train.jsonl"], FASTAI4)
    eng = {"stop_words": "english"}
    cases = [
        ("fastai4 stripped english", fast, STRIP_ALL, eng, (2034, 26576, 133634)),
        ("fastai4 raw defaults", fast, [], {}, None),
        ("fastai4 accents+sublinear+df", fast, STRIP_ALL,
         {"stop_words": "english", "strip_accents": "unicode", "sublinear_tf": True,
          "min_df": 2, "max_df": 0.5}, None),
        ("fastai4 ascii+l1+no smooth", fast, ["headers"],
         {"strip_accents": "ascii", "norm": "l1", "smooth_idf": False, "lowercase": False}, None),
        ("fastai4 count binary max_df int", fast, STRIP_ALL,
         {"weighting": "count", "binary": True, "max_df": 100, "min_df": 0.001}, None),
        ("fastai4 english ngram [1,2]", fast, STRIP_ALL,
         {"stop_words": "english", "ngram_range": [1, 2]}, None),
        ("fastai4 english ngram [2,2] min_df 2", fast, STRIP_ALL,
         {"stop_words": "english", "ngram_range": [2, 2], "min_df": 2}, None),
        ("fastai4 english [1,2] max_features", fast, STRIP_ALL,
         {"stop_words": "english", "ngram_range": [1, 2], "max_features": 20000}, None),
        ("fastai4 raw [1,3] df limits sublinear", fast, [],
         {"ngram_range": [1, 3], "min_df": 2, "max_df": 0.5, "sublinear_tf": True}, None),
        ("fastai4 count binary [2,2] max_feat", fast, STRIP_ALL,
         {"weighting": "count", "binary": True, "ngram_range": [2, 2], "max_features": 5000,
          "stop_words": "english"}, None),
    ]
    if not args.quick:
        everything = load(args.corpus, ["train.jsonl", "test.jsonl"])
        cases.append(("all 18846 stripped english", everything, STRIP_ALL, eng, (18846, 134101, 1229435)))
        cases.append(("all 18846 raw no idf", everything, [], {"use_idf": False, "norm": None}, None))
        train = load(args.corpus, ["train.jsonl"])
        cases.append(("train english [1,2] min_df 2 max_f", train, STRIP_ALL,
                      {"stop_words": "english", "ngram_range": [1, 2], "min_df": 2,
                       "max_features": 100000}, None))
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name, docs, strip, vec, expect in cases:
            ok &= compare(name, args.topicd, docs, strip, vec, tmp, expect)
    print("conformance: %s" % ("all cases agree" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
