#!/usr/bin/env python3
"""conformance_fit.py - topicd's factorizations against scikit-learn / SciPy on
the same 20 Newsgroups TF-IDF matrix (see fitcorpus.py).

Checks (exit status 1 if any fails):
- truncated SVD, randomized: as accurate as sklearn's randomized_svd, both
  measured against scipy.sparse.linalg.svds (max relative error of the top k);
- truncated SVD, lanczos: within 1e-6 (relative) of svds;
- NMF cd and mu (same init, nndsvda, and seed): reconstruction error within
  0.5% of sklearn's; and the documented facts (4 categories, k=5, seed 1:
  43.71; with --all, all 18,846 documents, k=20 cd: 132.67 in 197 iterations);
- the topics' words (randomized SVD k=10, NMF cd k=5): the same terms in the
  same order as each sklearn component's largest positive weights.

usage: python3 bench/conformance_fit.py [--topicd build/topicd] [--all]
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fitcorpus  # noqa: E402


def rel_err(got, ref):
    return max(abs(g - r) / r for g, r in zip(got, ref))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topicd", default="build/topicd")
    ap.add_argument("--all", action="store_true", help="also the all-documents NMF k=20 facts")
    ap.add_argument("--corpus", default=fitcorpus.CORPUS)
    a = ap.parse_args()

    import numpy as np
    from scipy.sparse.linalg import svds
    from sklearn.decomposition import NMF
    from sklearn.utils.extmath import randomized_svd

    failures = []

    def check(name, ok, detail):
        print("%-4s %-46s %s" % ("ok" if ok else "FAIL", name, detail))
        if not ok:
            failures.append(name)

    def check_top_words(name, res, components, n_top=10):
        # What a scikit-learn user would list: each component's n_top
        # (topicd's default n_top_words) largest positive weights, a stable
        # sort keeping the lower term first.
        same, n_words = 0, 0
        for topic, comp in zip(res["topics"], components):
            want = [int(j) for j in np.argsort(-comp, kind="stable") if comp[j] > 0][:n_top]
            got = [w["index"] for w in topic["words"]]
            n_words += len(want)
            same += sum(1 for g, w in zip(got, want) if g == w) if len(got) == len(want) else 0
        check(name, same == n_words and n_words > 0 and len(res["topics"]) == len(components),
              "%d of %d words the same, in the same order" % (same, n_words))

    tmp = tempfile.mkdtemp(prefix="topicd-conf-")
    docs = fitcorpus.load_docs("fastai4", a.corpus)
    X, _ = fitcorpus.tfidf(docs)
    mtx = os.path.join(tmp, "fastai4.mtx")
    fitcorpus.write_mtx(X, mtx)
    print("fastai4 TF-IDF: %d x %d, nnz %d" % (X.shape[0], X.shape[1], X.nnz))

    for k in (10, 50):
        ref = svds(X, k=k, solver="arpack", random_state=0)[1][::-1]
        _, sk, sk_vt = randomized_svd(X, k, random_state=0)
        res, _, _ = fitcorpus.run_topicd(a.topicd, mtx, {
            "model": {"method": "truncated_svd", "n_topics": k, "algorithm": "randomized"},
            "seed": 0})
        e_sk, e_td = rel_err(sk, ref), rel_err(res["singular_values"], ref)
        check("svd randomized k=%d vs svds" % k, e_td <= 1.1 * e_sk + 1e-12,
              "topicd %.2e, sklearn %.2e (max relative error)" % (e_td, e_sk))
        if k == 10:
            check_top_words("svd randomized k=10 top words", res, sk_vt)
        res, _, _ = fitcorpus.run_topicd(a.topicd, mtx, {
            "model": {"method": "truncated_svd", "n_topics": k, "algorithm": "lanczos"},
            "seed": 0})
        e_l = rel_err(res["singular_values"], ref)
        check("svd lanczos k=%d vs svds" % k, e_l <= 1e-6, "max relative error %.2e" % e_l)

    for solver in ("cd", "mu"):
        m = NMF(n_components=5, random_state=1, solver=solver, init="nndsvda")
        m.fit(X)
        res, _, _ = fitcorpus.run_topicd(a.topicd, mtx, {
            "model": {"method": "nmf", "n_topics": 5, "solver": solver, "init": "nndsvda"},
            "seed": 1})
        d = abs(res["reconstruction_error"] - m.reconstruction_err_) / m.reconstruction_err_
        check("nmf %s k=5 vs sklearn" % solver, d <= 0.005,
              "topicd %.4f (%d it), sklearn %.4f (%d it), diff %.2e"
              % (res["reconstruction_error"], res["n_iter"], m.reconstruction_err_, m.n_iter_, d))
        if solver == "cd":
            check("nmf cd k=5 reaches 43.71", abs(res["reconstruction_error"] - 43.71) < 0.005,
                  "%.4f" % res["reconstruction_error"])
            check_top_words("nmf cd k=5 top words", res, m.components_)
    res, _, _ = fitcorpus.run_topicd(a.topicd, mtx, {
        "model": {"method": "nmf", "n_topics": 5, "solver": "mu",
                  "beta_loss": "kullback-leibler", "init": "nndsvda"}, "seed": 1})
    m = NMF(n_components=5, random_state=1, solver="mu", beta_loss="kullback-leibler",
            init="nndsvda").fit(X)
    d = abs(res["reconstruction_error"] - m.reconstruction_err_) / m.reconstruction_err_
    check("nmf mu kullback-leibler k=5 vs sklearn", d <= 0.005,
          "topicd %.4f, sklearn %.4f" % (res["reconstruction_error"], m.reconstruction_err_))

    if a.all:
        docs = fitcorpus.load_docs("all", a.corpus)
        X, _ = fitcorpus.tfidf(docs)
        mtx = os.path.join(tmp, "all.mtx")
        fitcorpus.write_mtx(X, mtx)
        print("all TF-IDF: %d x %d, nnz %d" % (X.shape[0], X.shape[1], X.nnz))
        res, _, _ = fitcorpus.run_topicd(a.topicd, mtx, {
            "model": {"method": "nmf", "n_topics": 20, "solver": "cd"}, "seed": 0})
        check("nmf cd k=20 (all docs) reaches 132.67",
              abs(res["reconstruction_error"] - 132.67) / 132.67 <= 0.005,
              "%.4f in %d iterations (sklearn: 132.67 in 197)"
              % (res["reconstruction_error"], res["n_iter"]))
    print("%d checks failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
