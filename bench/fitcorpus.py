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


def run_child(cmd, env=None, timeout=1200):
    """Runs cmd; returns (stdout, wall seconds, stderr); raises on failure."""
    import time
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, errout = p.communicate(timeout=timeout)
    wall = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s %s" % (cmd[0], out[-2000:], errout[-2000:]))
    return out, wall, errout


def run_topicd(topicd, mtx, spec, timeout=1200, threads=None):
    """Runs a fit (on `threads` threads: all CPUs when None), returns
    (result dict, wall seconds, peak RSS in MB)."""
    if os.path.basename(topicd) == "topicd":
        cmd = [topicd, "fit", "--spec", json.dumps(spec), "--matrix-market-in", mtx]
        if threads:
            cmd += ["--threads", str(threads)]
    else:  # a throwaway driver: key=value arguments
        cmd = [topicd, mtx] + driver_args(spec)
    timed = ["/usr/bin/time", "-f", "TOPICD_MAXRSS_KB=%M"] + cmd
    out, wall, errout = run_child(timed if os.path.exists("/usr/bin/time") else cmd,
                                  timeout=timeout)
    rss = 0.0
    for line in errout.splitlines():
        if line.startswith("TOPICD_MAXRSS_KB="):
            rss = int(line.split("=")[1]) / 1024.0
    return json.loads(out), wall, rss


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
