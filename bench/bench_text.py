#!/usr/bin/env python3
"""Times topicd's vectorizer against scikit-learn's TfidfVectorizer.

Both get the same documents: all 18,846 20 Newsgroups documents (train +
test), stripped of headers, footers and quotes beforehand by scikit-learn's
own functions, with stop_words="english". Each side runs in its own child
process, alternately, best of --repeat runs; peak RSS is the child's
ru_maxrss (os.wait4), so each side's figure includes its runtime (Python and
NumPy for scikit-learn; reading the JSON Lines for topicd).

Columns: "vectorize" is the work itself - TfidfVectorizer.fit_transform for
scikit-learn, tokenize + vocabulary + weighting from topicd's own timings -
and "end to end" is the child's wall time, reading the documents included,
with its CPU time (user + system, all threads) in parentheses. The load
average is printed too: on a shared machine, wall times mean little when it
is above the number of cores.

One row per --ngram-range (default: unigrams, then unigrams and bigrams,
scikit-learn's ngram_range=(1, 2), whose vocabulary is about ten times
larger: memory is the column to watch there).

usage: python3 bench/bench_text.py [--topicd build/topicd] [--threads 2]
       [--corpus ../shared/corpora/20news] [--repeat 3] [--ngram-range 1,1 1,2]
Prints a markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from sklearn.datasets._twenty_newsgroups import (
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)

SKLEARN_CHILD = r"""
import json, sys, time
from sklearn.feature_extraction.text import TfidfVectorizer
t0 = time.perf_counter()
docs = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
t1 = time.perf_counter()
X = TfidfVectorizer(stop_words="english",
                    ngram_range=(int(sys.argv[2]), int(sys.argv[3]))).fit_transform(docs)
t2 = time.perf_counter()
print(json.dumps({"vectorize": t2 - t1, "shape": X.shape, "nnz": int(X.nnz)}))
"""


def run_child(argv):
    """Runs argv; returns (stdout, wall seconds, peak RSS in MiB, CPU seconds)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (argv[0], err.decode(errors="replace")))
    return out.decode(), wall, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime


def bench_one(args, path, lo, hi):
    """Best of args.repeat runs of each side, alternately: (sklearn, topicd), each
    (vectorize s, wall s, peak RSS MiB, (rows, cols, nnz), CPU s)."""
    best = {"sk": None, "tm": None}
    vec = {"stop_words": "english"}
    if (lo, hi) != (1, 1):
        vec["ngram_range"] = [lo, hi]
    spec = json.dumps({"vectorizer": vec})
    for _ in range(args.repeat):
        out, wall, rss, cpu = run_child([sys.executable, "-c", SKLEARN_CHILD, path, str(lo), str(hi)])
        r = json.loads(out)
        cur = (r["vectorize"], wall, rss, tuple(r["shape"]) + (r["nnz"],), cpu)
        if best["sk"] is None or cur[0] < best["sk"][0]:
            best["sk"] = cur
        out, wall, rss, cpu = run_child([args.topicd, "vectorize", "--spec", spec, "--summary",
                                         "--threads", str(args.threads), "--format", "jsonl",
                                         path])
        r = json.loads(out)
        tm = r["timings"]
        cur = (tm["tokenize"] + tm["vocabulary"] + tm["weighting"], wall, rss,
               (r["n_documents"], r["n_features"], r["nnz"]), cpu)
        if best["tm"] is None or cur[0] < best["tm"][0]:
            best["tm"] = cur
    return best["sk"], best["tm"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--topicd", default=os.path.join(root, "build", "topicd"))
    ap.add_argument("--corpus", default=os.path.join(root, "..", "shared", "corpora", "20news"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ngram-range", nargs="+", default=["1,1", "1,2"],
                    help="min_n,max_n per row")
    args = ap.parse_args()
    ranges = [tuple(int(x) for x in r.split(",")) for r in args.ngram_range]

    docs = []
    for name in ("train.jsonl", "test.jsonl"):
        with open(os.path.join(args.corpus, name), encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)["text"]
                docs.append(strip_newsgroup_quoting(strip_newsgroup_footer(strip_newsgroup_header(d))))

    load0 = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "stripped.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d}) + "\n")
        for lo, hi in ranges:
            rows.append(((lo, hi), bench_one(args, path, lo, hi)))
    print("load average before/after: %.2f / %.2f (the run shares the machine)" % (load0, os.getloadavg()[0]))
    print()
    print("| corpus | scikit-learn vectorize | topicd vectorize (%d threads) | speed-up | "
          "scikit-learn end to end (CPU) | topicd end to end (CPU) | speed-up | "
          "scikit-learn peak RSS | topicd peak RSS |" % args.threads)
    print("|---|---|---|---|---|---|---|---|---|")
    for (lo, hi), (sk, tm) in rows:
        if sk[3] != tm[3]:
            print("warning: shapes differ: sklearn %r, topicd %r" % (sk[3], tm[3]), file=sys.stderr)
        ngram = "" if (lo, hi) == (1, 1) else ", ngram_range (%d, %d)" % (lo, hi)
        print("| 20news, all %d docs stripped%s, %d x %d | %.3f s | %.3f s | %.1fx | %.2f s (%.2f s) | "
              "%.2f s (%.2f s) | %.1fx | %.0f MiB | %.0f MiB |" % (
                  tm[3][0], ngram, tm[3][0], tm[3][1], sk[0], tm[0], sk[0] / tm[0], sk[1], sk[4],
                  tm[1], tm[4], sk[1] / tm[1], sk[2], tm[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
