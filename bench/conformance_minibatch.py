#!/usr/bin/env python3
"""conformance_minibatch.py - topicd's solver "minibatch" against
scikit-learn's MiniBatchNMF on all 18,846 20 Newsgroups documents (the
TF-IDF matrix of fitcorpus.py), init nndsvda.

Checks (exit status 1 if any fails): for each case, the reconstruction error
averaged over seeds 0, 1, 2 within 0.5% of scikit-learn's average for the same
settings (k = 20 with the defaults; k = 10 with batch_size 512 and
forget_factor 0.5); each seed's n_iter and n_steps are printed beside
scikit-learn's n_iter_ and n_steps_. topicd replays scikit-learn's batches
(gen_batches: contiguous rows in X's order, no shuffle) and its init's random
draws, so the two usually agree far closer than the bound.
--quick: the 4-category matrix (2,034 documents), k = 5, one case.

usage: python3 bench/conformance_minibatch.py [--topicd build/topicd] [--corpus DIR] [--quick]
"""
import argparse
import os
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fitcorpus  # noqa: E402

CASES = [  # (k, MiniBatchNMF parameters beyond n_components, init and random_state)
    (20, {}),
    (10, {"batch_size": 512, "forget_factor": 0.5}),
]
SEEDS = (0, 1, 2)
BOUND = 0.005


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topicd", default="build/topicd")
    ap.add_argument("--corpus", default=fitcorpus.CORPUS)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()

    from sklearn.decomposition import MiniBatchNMF
    from sklearn.exceptions import ConvergenceWarning
    warnings.simplefilter("ignore", ConvergenceWarning)

    which = "fastai4" if a.quick else "all"
    cases = [(5, {})] if a.quick else CASES
    X, _ = fitcorpus.tfidf(fitcorpus.load_docs(which, a.corpus))
    tmp = tempfile.mkdtemp(prefix="topicd-conf-mb-")
    mtx = os.path.join(tmp, which + ".mtx")
    fitcorpus.write_mtx(X, mtx)
    print("%s TF-IDF: %d x %d, nnz %d" % (which, X.shape[0], X.shape[1], X.nnz), flush=True)

    failures = []
    for k, extra in cases:
        sk_errs, td_errs = [], []
        for seed in SEEDS:
            t0 = time.time()
            m = MiniBatchNMF(n_components=k, init="nndsvda", random_state=seed, **extra)
            m.fit_transform(X)
            sk_wall = time.time() - t0
            spec = {"model": dict({"method": "nmf", "n_topics": k, "solver": "minibatch",
                                   "init": "nndsvda"}, **extra), "seed": seed}
            res, td_wall, _ = fitcorpus.run_topicd(a.topicd, mtx, spec)
            sk_errs.append(m.reconstruction_err_)
            td_errs.append(res["reconstruction_error"])
            print("  k=%d %s seed %d: sklearn %.6f (n_iter %d, n_steps %d, %.1f s), "
                  "topicd %.6f (n_iter %d, n_steps %d, passes %d, %.1f s)"
                  % (k, extra or "defaults", seed, m.reconstruction_err_, m.n_iter_, m.n_steps_,
                     sk_wall, res["reconstruction_error"], res["n_iter"], res.get("n_steps", 0),
                     res.get("passes_over_x", 0), td_wall), flush=True)
        sk, td = sum(sk_errs) / len(sk_errs), sum(td_errs) / len(td_errs)
        rel = abs(td - sk) / sk
        name = "minibatch k=%d %s" % (k, extra or "defaults")
        ok = rel <= BOUND
        print("%-4s %-50s topicd %.6f, sklearn %.6f (mean of %d seeds, %.2e relative)"
              % ("ok" if ok else "FAIL", name, td, sk, len(SEEDS), rel), flush=True)
        if not ok:
            failures.append(name)
    if failures:
        print("conformance_minibatch: %d failed: %s" % (len(failures), ", ".join(failures)))
        sys.exit(1)
    print("conformance_minibatch: all passed")


if __name__ == "__main__":
    main()
