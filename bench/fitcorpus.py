"""fitcorpus.py - the 20 Newsgroups TF-IDF matrices the fit conformance and
benchmark scripts share, built with scikit-learn exactly as
fetch_20newsgroups(remove=('headers', 'footers', 'quotes')) + TfidfVectorizer
would, from ../shared/corpora/20news (no network).

Also: Matrix Market output and the topicd runner (the CLI `topicd fit
--spec ... --matrix-market-in X.mtx`, or a driver with the same JSON output).
"""
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "corpora", "20news"))
FASTAI4 = ["alt.atheism", "talk.religion.misc", "comp.graphics", "sci.space"]


def load_docs(which="fastai4", corpus=CORPUS):
    """which: 'fastai4' (train split of the 4 categories, sklearn's order) or
    'all' (all 18,846 documents: train then test, each in sklearn's order)."""
    from sklearn.datasets._twenty_newsgroups import (strip_newsgroup_footer,
                                                     strip_newsgroup_header,
                                                     strip_newsgroup_quoting)
    orders = json.load(open(os.path.join(corpus, "sklearn_order.json")))["orders"]
    splits = ["train"] if which == "fastai4" else ["train", "test"]
    key = "fastai4_shuffle42" if which == "fastai4" else "all20_shuffle42"
    docs = []
    for split in splits:
        by_id = {}
        with open(os.path.join(corpus, split + ".jsonl"), encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                by_id[d["id"]] = d["text"]
        for i in orders[split][key]:
            t = by_id[i]
            t = strip_newsgroup_header(t)
            t = strip_newsgroup_footer(t)
            t = strip_newsgroup_quoting(t)
            docs.append(t)
    return docs


def tfidf(docs, stop_words="english"):
    from sklearn.feature_extraction.text import TfidfVectorizer
    v = TfidfVectorizer(stop_words=stop_words)
    X = v.fit_transform(docs)
    X.sort_indices()
    return X, v.get_feature_names_out()


def write_mtx(X, path):
    import scipy.io
    scipy.io.mmwrite(path, X.tocoo(), field="real", precision=17)


def run_topicd(topicd, mtx, spec, timeout=600):
    """Runs a fit, returns (result dict, wall seconds, peak RSS in MB)."""
    import resource
    import time
    if os.path.basename(topicd) == "topicd":
        cmd = [topicd, "fit", "--spec", json.dumps(spec), "--matrix-market-in", mtx]
    else:  # a throwaway driver: key=value arguments
        cmd = [topicd, mtx] + driver_args(spec)
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.time() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    if p.returncode != 0:
        raise RuntimeError("topicd failed: %s %s" % (p.stdout[-2000:], p.stderr[-2000:]))
    return json.loads(p.stdout), wall, rss


def driver_args(spec):
    m = spec["model"]
    out = ["method=" + m.get("method", "nmf"), "k=%d" % m["n_topics"],
           "seed=%d" % spec.get("seed", 0)]
    for key, arg in (("algorithm", "algorithm"), ("solver", "solver"), ("init", "init"),
                     ("max_iter", "max_iter"), ("tol", "tol")):
        if key in m:
            out.append("%s=%s" % (arg, m[key]))
    if m.get("beta_loss") == "kullback-leibler":
        out.append("beta=kl")
    if "threads" in spec:
        out.append("threads=%d" % spec["threads"])
    return out
