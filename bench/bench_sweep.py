#!/usr/bin/env python3
"""bench_sweep.py - a sweep over n_topics (core/sweep.h) against the separate
fits it replaces, in the same run: truncated SVD over k = 5, 10, ..., 50 on
all 18,846 stripped 20 Newsgroups documents (randomized and lanczos: one
factorization at k = 50, every smaller k derived), NMF (cd) over k = 5, 10,
15, 20 on the course notebook's four categories (2,034 documents), cold and
warm-started. Each run is its own `topicd fit --matrix-market-in` process;
seconds are the result's compute time (timings init + fit, reading the
matrix excluded; a sweep's are the whole sweep's), the separate fits'
summed, the fastest of --repeat runs made in turns. Also reported: the largest
relative difference of each k's reconstruction error between the sweep and
the separate fit, and for NMF the iterations (sum over k) and each k's error.
Prints a markdown table.

usage: python3 bench/bench_sweep.py [--topicd build/topicd] [--corpus DIR] [--only svd|nmf]
       [--repeat 3]
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fitcorpus  # noqa: E402


def compute_seconds(res):
    t = res.get("timings", {})
    return t.get("init", 0.0) + t.get("fit", 0.0)


def sweep_vs_separate(topicd, mtx, model, ks, repeat):
    """Runs the sweep and the separate fits in turns, repeat times (the
    machine is shared: the fastest of each counts); returns (sweep result,
    sweep seconds, [separate results], separate seconds summed)."""
    spec = {"model": dict(model, n_topics=ks)}
    one = {key: v for key, v in model.items() if key != "warm_start"}  # a sweep's only
    best, best_alone = None, None
    for _ in range(repeat):
        res, _, _ = fitcorpus.run_topicd(topicd, mtx, spec)
        if best is None or compute_seconds(res) < compute_seconds(best):
            best = res
        alone = [fitcorpus.run_topicd(topicd, mtx, {"model": dict(one, n_topics=k)})[0]
                 for k in ks]
        total = sum(compute_seconds(r) for r in alone)
        if best_alone is None or total < best_alone[1]:
            best_alone = (alone, total)
    return best, compute_seconds(best), best_alone[0], best_alone[1]


def max_rel(sweep, alone):
    return max(abs(p["reconstruction_error"] - r["reconstruction_error"]) / r["reconstruction_error"]
               for p, r in zip(sweep["sweep"], alone))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topicd", default="build/topicd")
    ap.add_argument("--corpus", default=fitcorpus.CORPUS)
    ap.add_argument("--only", choices=["svd", "nmf"])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, in turns; the fastest counts")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="topicd-bench-sweep-")
    rows = []
    if a.only in (None, "svd"):
        X, _ = fitcorpus.tfidf(fitcorpus.load_docs("all", a.corpus))
        mtx = os.path.join(tmp, "all.mtx")
        fitcorpus.write_mtx(X, mtx)
        ks = list(range(5, 55, 5))
        for algo in ("randomized", "lanczos"):
            model = {"method": "truncated_svd", "algorithm": algo}
            res, secs, alone, alone_secs = sweep_vs_separate(a.topicd, mtx, model, ks, a.repeat)
            rows.append((f"svd {algo} k=5..50 (10 k), all docs", secs, alone_secs,
                         max_rel(res, alone), res["n_topics"], res["sweep_rule"], ""))
    if a.only in (None, "nmf"):
        X, _ = fitcorpus.tfidf(fitcorpus.load_docs("fastai4", a.corpus))
        mtx = os.path.join(tmp, "fastai4.mtx")
        fitcorpus.write_mtx(X, mtx)
        ks = [5, 10, 15, 20]
        for warm in (False, True):
            model = {"method": "nmf", "solver": "cd"}
            if warm:
                model["warm_start"] = True
            spec_res, secs, alone, alone_secs = sweep_vs_separate(a.topicd, mtx, model, ks, a.repeat)
            its = sum(p["n_iter"] for p in spec_res["sweep"])
            its_alone = sum(r["n_iter"] for r in alone)
            errs = ", ".join("%.4f/%.4f" % (p["reconstruction_error"], r["reconstruction_error"])
                             for p, r in zip(spec_res["sweep"], alone))
            rows.append((f"nmf cd k=5,10,15,20 {'warm' if warm else 'cold'}, fastai4", secs,
                         alone_secs, max_rel(spec_res, alone), spec_res["n_topics"],
                         spec_res["sweep_rule"],
                         f"iterations {its} vs {its_alone}; error sweep/alone by k: {errs}"))
    print("| sweep | sweep s | separate fits s | separate / sweep | max rel. error diff "
          "| suggested k | rule | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s, alone_s, rel, k, rule, notes in rows:
        print(f"| {name} | {s:.2f} | {alone_s:.2f} | {alone_s / s:.2f}x | {rel:.1e} | {k} | {rule} "
              f"| {notes} |")


if __name__ == "__main__":
    main()
