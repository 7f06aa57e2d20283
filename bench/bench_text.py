#!/usr/bin/env python3
"""Times topicd's vectorizer against scikit-learn's TfidfVectorizer.

Both get the same documents: all 18,846 20 Newsgroups documents (train +
test), stripped of headers, footers and quotes beforehand by scikit-learn's
own functions, with stop_words="english". Each side runs in its own child
process, alternately, best of --repeat runs; peak RSS is the child's (GNU
time's %M, see run_child), so each side's figure includes its runtime (Python
and NumPy for scikit-learn; reading the JSON Lines for topicd).

Columns: "vectorize" is the work itself - TfidfVectorizer.fit_transform for
scikit-learn, tokenize + vocabulary + weighting from topicd's own timings -
and "end to end" is the child's wall time, reading the documents included,
with its CPU time (user + system, all threads) in parentheses. The load
average is printed too: on a shared machine, wall times mean little when it
is above the number of cores.

One row per --ngram-range (default: unigrams, then unigrams and bigrams,
scikit-learn's ngram_range=(1, 2), whose vocabulary is about ten times
larger: memory is the column to watch there).

A second table puts topicd's whole process against the vectorizing alone
(issue 19's measure): `topicd vectorize` started on the raw corpus (train
then test, as the files hold them), stripping headers, footers and quotes
itself, tokenizing, weighting and writing its whole JSON summary (vocabulary,
document frequencies, idf) to a pipe the benchmark reads, against
TfidfVectorizer.fit_transform alone on the documents stripped beforehand.
Its runs are taken in turns with the others, the fastest of --repeat.

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


GNU_TIME = "/usr/bin/time"


def run_child(argv):
    """Runs argv; returns (stdout, wall seconds, peak RSS in MiB, CPU seconds).

    Linux carries a process's peak RSS across exec, and Python starts a child
    with vfork, so the child's ru_maxrss is never below this process's own
    (the documents and scikit-learn's modules: about 160 MiB). The peak RSS
    is read through GNU time where it is installed, whose child starts from
    its small image; ru_maxrss (an upper bound) otherwise."""
    rss_file = None
    if os.access(GNU_TIME, os.X_OK):
        fd, rss_file = tempfile.mkstemp(suffix=".rss")
        os.close(fd)
        argv = [GNU_TIME, "-f", "%M", "-o", rss_file] + argv
    try:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = p.stdout.read()
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError("%s failed: %s" % (argv[0], err.decode(errors="replace")))
        rss = ru.ru_maxrss / 1024.0
        if rss_file:
            with open(rss_file) as f:
                rss = int(f.read().split()[-1]) / 1024.0
    finally:
        if rss_file:
            os.unlink(rss_file)
    return out.decode(), wall, rss, ru.ru_utime + ru.ru_stime


def bench_one(args, path, raw_path, lo, hi):
    """Best of args.repeat runs of each side, alternately: (sklearn, topicd,
    topicd whole process), each (vectorize s, wall s, peak RSS MiB, (rows,
    cols, nnz), CPU s); the whole process's vectorize s is its wall."""
    best = {"sk": None, "tm": None, "whole": None}
    vec = {"stop_words": "english"}
    if (lo, hi) != (1, 1):
        vec["ngram_range"] = [lo, hi]
    spec = json.dumps({"vectorizer": vec})
    whole_spec = json.dumps({"preprocess": {"strip": ["headers", "footers", "quotes"]},
                             "vectorizer": vec})
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
        out, wall, rss, cpu = run_child([args.topicd, "vectorize", "--spec", whole_spec, "--quiet",
                                         "--threads", str(args.threads), raw_path])
        r = json.loads(out)
        cur = (wall, wall, rss, (r["n_documents"], r["n_features"], r["nnz"]), cpu)
        if best["whole"] is None or cur[0] < best["whole"][0]:
            best["whole"] = cur
    return best["sk"], best["tm"], best["whole"]


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
        raw_path = os.path.join(tmp, "raw.jsonl")
        with open(raw_path, "wb") as f:
            for name in ("train.jsonl", "test.jsonl"):
                with open(os.path.join(args.corpus, name), "rb") as src:
                    f.write(src.read())
        # Flush the 70 MB just written before timing: their write-back takes
        # CPU from the first runs (bench/NOTES.md, "The run of record of 21:22
        # and its reruns").
        os.sync()
        for lo, hi in ranges:
            rows.append(((lo, hi), bench_one(args, path, raw_path, lo, hi)))
    print("load average before/after: %.2f / %.2f (the run shares the machine)" % (load0, os.getloadavg()[0]))
    print()
    print("| corpus | scikit-learn vectorize | topicd vectorize (%d threads) | speed-up | "
          "scikit-learn end to end (CPU) | topicd end to end (CPU) | speed-up | "
          "scikit-learn peak RSS | topicd peak RSS |" % args.threads)
    print("|---|---|---|---|---|---|---|---|---|")
    for (lo, hi), (sk, tm, _) in rows:
        if sk[3] != tm[3]:
            print("warning: shapes differ: sklearn %r, topicd %r" % (sk[3], tm[3]), file=sys.stderr)
        ngram = "" if (lo, hi) == (1, 1) else ", ngram_range (%d, %d)" % (lo, hi)
        print("| 20news, all %d docs stripped%s, %d x %d | %.3f s | %.3f s | %.1fx | %.2f s (%.2f s) | "
              "%.2f s (%.2f s) | %.1fx | %.0f MiB | %.0f MiB |" % (
                  tm[3][0], ngram, tm[3][0], tm[3][1], sk[0], tm[0], sk[0] / tm[0], sk[1], sk[4],
                  tm[1], tm[4], sk[1] / tm[1], sk[2], tm[2]))
    print()
    print("| corpus | scikit-learn fit_transform alone | topicd whole process, %d threads (CPU) | "
          "speed-up | scikit-learn peak RSS | topicd peak RSS |" % args.threads)
    print("|---|---|---|---|---|---|")
    for (lo, hi), (sk, _, wh) in rows:
        if sk[3] != wh[3]:
            print("warning: shapes differ: sklearn %r, topicd whole process %r" % (sk[3], wh[3]),
                  file=sys.stderr)
        ngram = "" if (lo, hi) == (1, 1) else ", ngram_range (%d, %d)" % (lo, hi)
        print("| 20news, all %d docs%s, %d x %d | %.3f s | %.3f s (%.2f s) | %.1fx | %.0f MiB | "
              "%.0f MiB |" % (wh[3][0], ngram, wh[3][0], wh[3][1], sk[0], wh[1], wh[4],
                              sk[0] / wh[1], sk[2], wh[2]))
    print()
    print("whole process: `topicd vectorize --quiet` on the raw JSON Lines, stripping headers, "
          "footers and quotes itself and writing its whole summary to a pipe, against "
          "scikit-learn's fit_transform alone on the documents stripped beforehand; fastest of "
          "%d runs in turns." % args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
