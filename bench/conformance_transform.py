#!/usr/bin/env python3
"""conformance_transform.py - `topicd transform` against scikit-learn's
model.transform(vectorizer.transform(docs)) on the fast.ai notebook's
four-category corpus (20 Newsgroups, fitcorpus.py's 'fastai4').

For each case topicd fits the train split (`topicd fit --save-model`), then
transforms the test split's 1,353 documents (`topicd transform --model`).
scikit-learn gets the same model: a TfidfVectorizer fitted on the same train
documents (its vocabulary and idf are checked against the model file's) and
an NMF / TruncatedSVD whose components_ are the file's, with the file's
parameters; its transform of the test documents is the reference. The fit
itself is compared elsewhere (conformance_fit.py); here the components are
shared, so the transform alone is measured.

Check: max |W_topicd - W_sklearn| / max |W_sklearn| <= 1e-6, for nmf cd,
nmf mu and truncated_svd (also nmf mu kullback-leibler and full_svd).
Printed too: the worst document's ||dw|| / ||w||, iterations, timings.

usage: python3 bench/conformance_transform.py [--topicd build/topicd] [--corpus DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fitcorpus  # noqa: E402


def load_split(corpus, split):
    """Raw texts and ids of a split's four categories, in sklearn's order."""
    orders = json.load(open(os.path.join(corpus, "sklearn_order.json")))["orders"]
    by_id = {}
    with open(os.path.join(corpus, split + ".jsonl"), encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            by_id[d["id"]] = d["text"]
    ids = orders[split]["fastai4_shuffle42"]
    return [by_id[i] for i in ids], ids


def strip(texts):
    from sklearn.datasets._twenty_newsgroups import (strip_newsgroup_footer,
                                                     strip_newsgroup_header,
                                                     strip_newsgroup_quoting)
    return [strip_newsgroup_quoting(strip_newsgroup_footer(strip_newsgroup_header(t)))
            for t in texts]


def write_jsonl(path, texts, ids):
    with open(path, "w", encoding="utf-8") as f:
        for i, t in zip(ids, texts):
            f.write(json.dumps({"id": i, "text": t}) + "\n")


def sklearn_model(meta, components):
    """scikit-learn's estimator with the model file's parameters and components."""
    import numpy as np
    from sklearn.decomposition import NMF, TruncatedSVD
    m = meta["model"]
    k = components.shape[0]
    if meta["method"] == "nmf":
        beta = m.get("beta_loss", "frobenius")
        est = NMF(n_components=k, solver=m["solver"], beta_loss=beta, tol=m["tol"],
                  max_iter=m["max_iter"], alpha_W=m.get("alpha_W", 0.0),
                  l1_ratio=m.get("l1_ratio", 0.0), shuffle=m.get("shuffle", False))
        est._check_params(np.zeros((1, components.shape[1])))
    else:
        est = TruncatedSVD(n_components=k)
    est.components_ = components
    est.n_components_ = k
    est.n_features_in_ = components.shape[1]
    return est


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topicd", default="build/topicd")
    ap.add_argument("--corpus", default=fitcorpus.CORPUS)
    a = ap.parse_args()

    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    failures = []

    def check(name, ok, detail):
        print("%-4s %-40s %s" % ("ok" if ok else "FAIL", name, detail), flush=True)
        if not ok:
            failures.append(name)

    tmp = tempfile.mkdtemp(prefix="topicd-transform-")
    train_raw, train_ids = load_split(a.corpus, "train")
    test_raw, test_ids = load_split(a.corpus, "test")
    train_path = os.path.join(tmp, "train.jsonl")
    test_path = os.path.join(tmp, "test.jsonl")
    write_jsonl(train_path, train_raw, train_ids)
    write_jsonl(test_path, test_raw, test_ids)
    vec = TfidfVectorizer(stop_words="english")
    vec.fit(strip(train_raw))
    X_test = vec.transform(strip(test_raw))
    print("fastai4: %d train, %d test documents; %d terms; test nnz %d"
          % (len(train_raw), len(test_raw), len(vec.vocabulary_), X_test.nnz))

    cases = [
        ("nmf cd k=5", {"method": "nmf", "n_topics": 5, "solver": "cd", "init": "nndsvda"}),
        ("nmf mu k=5", {"method": "nmf", "n_topics": 5, "solver": "mu", "init": "nndsvda"}),
        ("nmf mu kullback-leibler k=5", {"method": "nmf", "n_topics": 5, "solver": "mu",
                                         "beta_loss": "kullback-leibler", "init": "nndsvda"}),
        ("nmf cd k=20 l1/l2", {"method": "nmf", "n_topics": 20, "solver": "cd",
                               "alpha_W": 1e-5, "l1_ratio": 0.5}),
        ("truncated_svd k=10", {"method": "truncated_svd", "n_topics": 10}),
        ("full_svd k=10", {"method": "full_svd", "n_topics": 10}),
    ]
    for name, model in cases:
        spec = {"preprocess": {"strip": ["headers", "footers", "quotes"]},
                "vectorizer": {"stop_words": "english"}, "model": model, "seed": 1}
        npz = os.path.join(tmp, "model.npz")
        subprocess.run([a.topicd, "fit", "--quiet", "--spec", json.dumps(spec), "--save-model",
                        npz, train_path], check=True, stdout=subprocess.DEVNULL)
        t0 = time.time()
        out = subprocess.run([a.topicd, "transform", "--quiet", "--model", npz, test_path],
                             check=True, stdout=subprocess.PIPE).stdout
        wall = time.time() - t0
        got = json.loads(out)
        f = np.load(npz, allow_pickle=False)
        meta = json.loads(bytes(f["metadata.json"]).decode())
        utf8, offs = bytes(f["vocabulary_utf8"]), f["vocabulary_offsets"]
        vocab = [utf8[offs[i]:offs[i + 1]].decode() for i in range(len(offs) - 1)]
        same_vocab = vocab == list(vec.get_feature_names_out())
        idf_d = float(np.max(np.abs(f["idf"] - vec.idf_))) if "idf" in f.files else float("nan")
        est = sklearn_model(meta, np.asarray(f["components"], dtype=np.float64))
        t1 = time.time()
        ref = est.transform(X_test)
        sk_s = time.time() - t1
        w = np.asarray(got["document_topics"], dtype=np.float64)
        ok_shape = w.shape == ref.shape and got.get("ids") == test_ids
        diff = float(np.max(np.abs(w - ref)) / np.max(np.abs(ref))) if ok_shape else float("inf")
        rows = np.linalg.norm(ref, axis=1)
        nz = rows > 0
        row_rel = float(np.max(np.linalg.norm(w - ref, axis=1)[nz] / rows[nz])) if ok_shape else 0
        check("transform " + name,
              ok_shape and same_vocab and idf_d <= 1e-12 and diff <= 1e-6,
              "max|dW|/max|W| %.2e, worst document %.2e; vocabulary %s, idf %.1e; "
              "topicd %.2f s (process), sklearn transform %.2f s"
              % (diff, row_rel, "same" if same_vocab else "DIFFERENT", idf_d, wall, sk_s))
    print("%d checks failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
