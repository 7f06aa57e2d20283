#!/usr/bin/env python3
"""coherence_gensim.py - topicd's model.coherence against gensim's CoherenceModel.

Needs a Python with gensim (4.x) and scikit-learn: gensim pins numpy, so it
usually lives in its own virtual environment, e.g.
    /work/venv-gensim/bin/python bench/coherence_gensim.py --corpus ../shared/corpora/20news
`make conformance GENSIM_PYTHON=...` and `make bench GENSIM_PYTHON=...` run it
with that interpreter (GENSIM_PYTHON defaults to PYTHON).

--mode conformance (the default): the notebook's four-category corpus
(fitcorpus.load_docs('fastai4'), stripped, stop_words='english'), NMF k=5
seed 1 and truncated SVD (lanczos) k=5, n_top_words 10: every topic's u_mass,
c_uci, c_npmi and c_v, and their means, within 1e-6 of gensim's. Exits 1 when
any differs.
--mode bench: all 18,846 stripped documents, NMF k=20 seed 1: topicd's fit
and coherence times beside gensim's CoherenceModel for the same scores, as a
markdown table.

gensim is given the same topics (topicd's top words, in topicd's order) and
the same texts (scikit-learn's analyzer output for each document, so that its
sliding windows see the tokens topicd's see), a Dictionary built from those
texts, topn = n_top_words and processes=1 (its default is cpu_count - 1
processes; the counts are the same either way).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fitcorpus  # noqa: E402

MEASURES = ("u_mass", "c_uci", "c_npmi", "c_v")


def topicd_fit(topicd, docs_path, spec, threads=None):
    cmd = [topicd, "fit", "--quiet", "--spec", json.dumps(spec), docs_path]
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError("topicd fit failed: " + p.stderr[-2000:])
    return json.loads(p.stdout), wall


def gensim_scores(topics, texts, dictionary, topn):
    """Per measure: (per-topic list, mean, seconds)."""
    from gensim.models.coherencemodel import CoherenceModel
    out = {}
    for m in MEASURES:
        t0 = time.time()
        cm = CoherenceModel(topics=topics, texts=texts, dictionary=dictionary, coherence=m,
                            topn=topn, processes=1)
        per = cm.get_coherence_per_topic()
        out[m] = ([float(x) for x in per], float(cm.aggregate_measures(per)), time.time() - t0)
    return out


def write_docs(docs, path):
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")


def prepare(docs):
    """scikit-learn's analyzer tokens and gensim's Dictionary of them."""
    from gensim.corpora import Dictionary
    from sklearn.feature_extraction.text import TfidfVectorizer
    analyzer = TfidfVectorizer(stop_words="english").build_analyzer()
    t0 = time.time()
    texts = [analyzer(d) for d in docs]
    dictionary = Dictionary(texts)
    return texts, dictionary, time.time() - t0


def topic_words(result):
    return [[w["term"] for w in t["words"]] for t in result["topics"]]


def close(a, b, tol=1e-6):
    if a is None or b is None or not math.isfinite(b):
        return a is None and (b is None or not math.isfinite(b))
    return abs(a - b) <= tol * max(1.0, abs(b))


def conformance(args):
    docs = fitcorpus.load_docs("fastai4", corpus=args.corpus)
    texts, dictionary, _ = prepare(docs)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fastai4.jsonl")
        write_docs(docs, path)
        cases = [
            ("nmf k=5 seed 1", {"method": "nmf", "n_topics": 5}),
            ("truncated_svd lanczos k=5", {"method": "truncated_svd", "n_topics": 5,
                                           "algorithm": "lanczos"}),
        ]
        for name, model in cases:
            model = dict(model, coherence=list(MEASURES), n_top_words=10)
            spec = {"vectorizer": {"stop_words": "english"}, "model": model, "seed": 1}
            res, _ = topicd_fit(args.topicd, path, spec)
            topics = topic_words(res)
            ref = gensim_scores(topics, texts, dictionary, 10)
            for m in MEASURES:
                got = res["coherence"][m]
                per_ref, mean_ref, secs = ref[m]
                diffs = [abs(g - r) for g, r in zip(got["per_topic"], per_ref)
                         if g is not None and math.isfinite(r)]
                ok = (len(got["per_topic"]) == len(per_ref)
                      and all(close(g, r) for g, r in zip(got["per_topic"], per_ref))
                      and close(got["mean"], mean_ref))
                failures += not ok
                print("%-4s fastai4 %-26s %-7s mean %+.9f (gensim %+.9f), max |diff| %.1e  "
                      "(gensim %.2f s, topicd %.3f s with its tokens)"
                      % ("ok" if ok else "FAIL", name, m, got["mean"], mean_ref,
                         max(diffs + [abs(got["mean"] - mean_ref)]), secs,
                         res["timings"]["coherence"]), flush=True)
    print("coherence: %s" % ("all cases agree" if not failures else "%d failed" % failures))
    return 1 if failures else 0


def bench(args):
    docs = fitcorpus.load_docs("all", corpus=args.corpus)
    texts, dictionary, prep_s = prepare(docs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "all.jsonl")
        write_docs(docs, path)
        base = {"vectorizer": {"stop_words": "english"},
                "model": {"method": "nmf", "n_topics": 20}, "seed": 1}
        plain, plain_wall = topicd_fit(args.topicd, path, base)
        spec = json.loads(json.dumps(base))
        spec["model"]["coherence"] = list(MEASURES)
        res, wall = topicd_fit(args.topicd, path, spec)
        topics = topic_words(res)
        ref = gensim_scores(topics, texts, dictionary, 10)
        gensim_s = sum(r[2] for r in ref.values())
        worst = max(abs(g - r) for m in MEASURES
                    for g, r in zip(res["coherence"][m]["per_topic"], ref[m][0]))
        tm = res["timings"]
        rows.append("| nmf k=20, 4 measures | %.2f s | %.2f s (%.0f%% of the fit) | %.2f s "
                    "(+ %.2f s tokens) | %.0fx | %.1e |"
                    % (tm["fit"], tm["coherence"], 100 * tm["coherence"] / tm["fit"], gensim_s,
                       prep_s, gensim_s / tm["coherence"], worst))
        for m in MEASURES:
            rows.append("| %s | | | %.2f s | | |" % (m, ref[m][2]))
    print("all 18846 stripped documents, stop_words='english', NMF k=20 seed 1, n_top_words 10; "
          "topicd end to end %.2f s without coherence, %.2f s with (wall, %d CPUs)"
          % (plain_wall, wall, os.cpu_count()))
    print()
    print("| job | topicd fit | topicd coherence (tokens + 4 measures) | gensim CoherenceModel "
          "(processes=1) | speed-up | max per-topic |diff| |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(r)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topicd", default="build/topicd")
    ap.add_argument("--corpus", default=fitcorpus.CORPUS)
    ap.add_argument("--mode", choices=["conformance", "bench"], default="conformance")
    args = ap.parse_args()
    try:
        import gensim  # noqa: F401
    except ImportError:
        print("FAIL coherence: gensim is not importable by %s; run this script with a Python "
              "that has gensim and scikit-learn (make conformance GENSIM_PYTHON=/path/to/python)"
              % sys.executable)
        sys.exit(2)
    sys.exit(conformance(args) if args.mode == "conformance" else bench(args))


if __name__ == "__main__":
    main()
