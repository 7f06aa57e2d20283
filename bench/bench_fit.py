#!/usr/bin/env python3
"""bench_fit.py - topicd's factorizations side by side with scikit-learn and
SciPy, in the same run, on all 18,846 stripped 20 Newsgroups documents
(TF-IDF as fitcorpus.py builds it): truncated SVD k=10 and k=100 (topicd
randomized and lanczos vs sklearn randomized_svd and scipy svds), NMF k=20
(cd and mu, topicd on all CPUs and on one thread vs sklearn; topicd's hals
against sklearn's cd, also as a whole process from the stripped documents:
read + vectorize + fit; with --kl, mu on the Kullback-Leibler divergence;
with --shape, the cd and hals rows on a corpus bench/shapes.py makes instead:
many short documents or few long ones), and NMF k=20 solver "minibatch" against
sklearn's MiniBatchNMF with the same defaults, with topicd cd's and hals's peak
RSS on the same matrix beside it (--only minibatch runs these alone). Each job
runs in its own process; reported:
compute seconds (the fit, not reading the matrix), peak RSS of that process,
error (SVD: max relative error of the k singular values against svds; NMF:
reconstruction error), speed-up over the Python counterpart. Prints a
markdown table.

usage: python3 bench/bench_fit.py [--topicd build/topicd] [--only svd|nmf|kl|minibatch]
       [--repeat 3] [--repeat-svd 5] [--nmf-k 20] [--nmf-seeds 0,1] [--shape short|long]
       [--kl]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fitcorpus  # noqa: E402
import shapes  # noqa: E402

PY_JOB = r"""
import json, resource, sys, time
import scipy.sparse as sp
job = json.loads(sys.argv[1])
X = sp.load_npz(job["npz"]).tocsr()
t = time.time()
out = {}
if job["kind"] == "randomized_svd":
    from sklearn.utils.extmath import randomized_svd
    out["s"] = list(randomized_svd(X, job["k"], random_state=0)[1])
elif job["kind"] == "svds":
    from scipy.sparse.linalg import svds
    out["s"] = sorted(svds(X, k=job["k"], random_state=0)[1], reverse=True)
elif job["kind"] == "minibatch":
    from sklearn.decomposition import MiniBatchNMF
    m = MiniBatchNMF(n_components=job["k"], init="nndsvda", random_state=job.get("seed", 0))
    m.fit(X)
    out["error"] = float(m.reconstruction_err_)
    out["n_iter"] = int(m.n_iter_)
    out["n_steps"] = int(m.n_steps_)
else:
    from sklearn.decomposition import NMF
    m = NMF(n_components=job["k"], solver=job["solver"], random_state=job.get("seed", 0),
            beta_loss=job.get("beta_loss", "frobenius")).fit(X)
    out["error"] = float(m.reconstruction_err_)
    out["n_iter"] = int(m.n_iter_)
out["seconds"] = time.time() - t
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps(out))
"""


def py_env():
    env = dict(os.environ)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(var, None)
    return env


def run_py(job):
    out, _, _ = fitcorpus.run_child([sys.executable, "-c", PY_JOB, json.dumps(job)],
                                    env=py_env())
    return json.loads(out)


def rel_err(got, ref):
    return max(abs(g - r) / r for g, r in zip(got, ref))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topicd", default="build/topicd")
    ap.add_argument("--only", choices=["svd", "nmf", "kl", "minibatch"])
    ap.add_argument("--corpus", default=fitcorpus.CORPUS)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of every NMF job; the fastest counts (the machine is shared)")
    # The SVD jobs take seconds, and their ratios moved across the targets
    # from one run of 3 to the next; more turns cost little there.
    ap.add_argument("--repeat-svd", type=int, default=5,
                    help="runs of every SVD job; the fastest counts")
    ap.add_argument("--nmf-k", default="20",
                    help="comma-separated k of the cd/hals rows (mu runs at k = 20)")
    ap.add_argument("--nmf-seeds", default="0,1",
                    help="comma-separated seeds of the cd/hals rows: scikit-learn's cd stops after "
                    "about 105 iterations with 0 and runs to about 200 with 1 (issue #19)")
    ap.add_argument("--shape", choices=sorted(shapes.SHAPES),
                    help="instead of 20 Newsgroups, the NMF cd and hals rows (--nmf-k, "
                    "--nmf-seeds) on a corpus bench/shapes.py makes: many short documents or "
                    "few long ones")
    ap.add_argument("--kl", action="store_true",
                    help="also NMF mu with beta_loss kullback-leibler, k = 20 (long)")
    ap.add_argument("--shape-seed", type=int, default=0, help="the shape's generator seed")
    a = ap.parse_args()
    import scipy.sparse as sp

    tmp = tempfile.mkdtemp(prefix="topicd-bench-")
    if a.shape:
        docs = list(shapes.generate(a.shape, a.shape_seed))
        name = "the %s shape (bench/shapes.py, seed %d)" % (a.shape, a.shape_seed)
    else:
        docs = fitcorpus.load_docs("all", a.corpus)
        name = "all 20 Newsgroups, stripped"
    X, _ = fitcorpus.tfidf(docs)
    npz, mtx = os.path.join(tmp, "all.npz"), os.path.join(tmp, "all.mtx")
    sp.save_npz(npz, X)
    fitcorpus.write_mtx(X, mtx)
    docs_path = os.path.join(tmp, "stripped.jsonl")
    with open(docs_path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")
    del docs
    # The inputs just written (about 100 MB) would still be written back to
    # disk during the first timed runs, taking CPU from them (bench/NOTES.md,
    # "The run of record of 21:22 and its reruns").
    os.sync()
    print("%s, TF-IDF (stop_words='english'): %d x %d, nnz %d"
          % (name, X.shape[0], X.shape[1], X.nnz), flush=True)
    rows = []

    def topicd_once(spec, threads=None):
        res, wall, rss = fitcorpus.run_topicd(a.topicd, mtx, spec, threads=threads)
        tim = res.get("timings", {})
        secs = tim.get("init", 0) + tim.get("fit", 0) if tim else res.get("seconds_fit", wall)
        return res, secs, rss

    # Every job runs --repeat-svd (SVD) or --repeat (NMF) times, each in a
    # fresh process, and the fastest run counts, for topicd and for the
    # Python side alike: other tenants of the machine only ever add time. The runs of a group take turns (svds,
    # randomized_svd, topicd, topicd, svds, ...), so a slow spell of the
    # machine falls on every side, not on one.
    def best_of(thunks, secs, repeat):
        best = [None] * len(thunks)
        for _ in range(max(1, repeat)):
            for i, thunk in enumerate(thunks):
                r = thunk()
                if best[i] is None or secs(r) < secs(best[i]):
                    best[i] = r
        return best

    def topicd_whole(spec):
        """topicd fit on the stripped documents: the whole process's wall time
        (read + vectorize + fit), as a user pays it."""
        cmd = [a.topicd, "fit", "--spec", json.dumps(spec), "--format", "jsonl", docs_path]
        out, wall, _ = fitcorpus.run_child(cmd)
        return json.loads(out), wall, 0.0

    def against_sklearn(res, sk):
        """The error relative to scikit-learn's cd on the same job: issue #19
        asks for at or below it, which four printed digits cannot show."""
        return "%+.1e vs sklearn" % ((res["reconstruction_error"] - sk["error"]) / sk["error"])

    def secs_of(r):
        return r["seconds"] if isinstance(r, dict) else r[1]

    if a.shape:
        # The shape's NMF rows: scikit-learn's cd against topicd's cd and hals,
        # init + fit (its share of init beside) and whole process, in turns.
        for k in [int(v) for v in a.nmf_k.split(",")]:
            for seed in [int(v) for v in a.nmf_seeds.split(",")]:
                job = "%s k=%d seed %d" % (a.shape, k, seed)
                specs = [{"model": {"method": "nmf", "n_topics": k, "solver": solver},
                          "seed": seed} for solver in ("cd", "hals")]
                wholes = [dict(spec, vectorizer={"stop_words": "english"}) for spec in specs]
                sk, cd, cdw, hals, halsw = best_of(
                    [lambda: run_py({"kind": "nmf", "k": k, "solver": "cd", "seed": seed,
                                     "npz": npz}),
                     lambda: topicd_once(specs[0]), lambda: topicd_whole(wholes[0]),
                     lambda: topicd_once(specs[1]), lambda: topicd_whole(wholes[1])],
                    secs_of, a.repeat)
                rows.append(("NMF cd (sklearn)", job, sk["seconds"], sk["rss_mb"],
                             "%.4f (%d it)" % (sk["error"], sk["n_iter"]), None))
                for name, (res, secs, rss) in (("topicd cd", cd), ("topicd cd, whole process", cdw),
                                               ("topicd hals", hals),
                                               ("topicd hals, whole process", halsw)):
                    tim = res.get("timings", {})
                    rows.append((name, job, secs, rss, "%.4f (%d it, %d passes; init %.2f s; %s)" % (
                        res["reconstruction_error"], res["n_iter"], res.get("passes_over_x", 0),
                        tim.get("init", 0), against_sklearn(res, sk)), sk["seconds"] / secs))
                print("%s done" % job, flush=True)
    def topicd_mtx_wall(spec):
        """topicd fit --matrix-market-in: the whole process's wall time (start,
        read the Matrix Market, upload, fit, write the JSON)."""
        res, wall, rss = fitcorpus.run_topicd(a.topicd, mtx, spec)
        return res, wall, rss

    if a.only in (None, "svd") and not a.shape:
        for k in (10, 100):
            specs = [{"model": {"method": "truncated_svd", "n_topics": k, "algorithm": algo},
                      "seed": 0} for algo in ("randomized", "lanczos")]
            # k = 10 randomized also as whole processes, against the same
            # randomized_svd call: what a user pays (issue #19).
            whole_svd = [lambda: topicd_mtx_wall(specs[0]),
                         lambda: topicd_whole(dict(specs[0],
                                                   vectorizer={"stop_words": "english"}))]
            ref, sk, rnd, lan, *rnd_whole = best_of(
                [lambda: run_py({"kind": "svds", "k": k, "npz": npz}),
                 lambda: run_py({"kind": "randomized_svd", "k": k, "npz": npz}),
                 lambda: topicd_once(specs[0]), lambda: topicd_once(specs[1])] +
                (whole_svd if k == 10 else []), secs_of, a.repeat_svd)
            rows.append(("svds (scipy, ARPACK)", "svd k=%d" % k, ref["seconds"], ref["rss_mb"],
                         "0 (reference)", None))
            rows.append(("randomized_svd (sklearn)", "svd k=%d" % k, sk["seconds"], sk["rss_mb"],
                         "%.1e" % rel_err(sk["s"], ref["s"]), None))
            for algo, base, (res, secs, rss) in (("randomized", sk, rnd), ("lanczos", ref, lan)):
                rows.append(("topicd %s" % algo, "svd k=%d" % k, secs, rss,
                             "%.1e" % rel_err(res["singular_values"], ref["s"]),
                             base["seconds"] / secs))
            for name, (res, secs, rss) in zip(
                    ("topicd randomized, whole process (--matrix-market-in)",
                     "topicd randomized, whole process from the documents"), rnd_whole):
                rows.append((name, "svd k=%d" % k, secs, rss,
                             "%.1e" % rel_err(res["singular_values"], ref["s"]),
                             sk["seconds"] / secs))
            print("svd k=%d done" % k, flush=True)
    if a.only in (None, "nmf") and not a.shape:
        # hals has no scikit-learn counterpart: its rows stand against
        # scikit-learn's cd with the same k, init and seed, which it must
        # match or beat in error (issue #19), in runs taking turns with it.
        for k in [int(v) for v in a.nmf_k.split(",")]:
            for seed in [int(v) for v in a.nmf_seeds.split(",")]:
                job = "nmf k=%d seed %d" % (k, seed)
                specs = [{"model": {"method": "nmf", "n_topics": k, "solver": solver},
                          "seed": seed} for solver in ("cd", "hals")]
                whole = {"vectorizer": {"stop_words": "english"}, "model": specs[1]["model"],
                         "seed": seed}
                sk, cd, cd1, hals, hals1, hw = best_of(
                    [lambda: run_py({"kind": "nmf", "k": k, "solver": "cd", "seed": seed,
                                     "npz": npz}),
                     lambda: topicd_once(specs[0]), lambda: topicd_once(specs[0], threads=1),
                     lambda: topicd_once(specs[1]),
                     lambda: topicd_once(specs[1], threads=1), lambda: topicd_whole(whole)],
                    secs_of, a.repeat)
                rows.append(("NMF cd (sklearn)", job, sk["seconds"], sk["rss_mb"],
                             "%.4f (%d it)" % (sk["error"], sk["n_iter"]), None))
                for name, (res, secs, rss) in (("topicd cd", cd), ("topicd cd, 1 thread", cd1),
                                               ("topicd hals", hals),
                                               ("topicd hals, 1 thread", hals1),
                                               ("topicd hals, whole process", hw)):
                    rows.append((name, job, secs, rss, "%.4f (%d it, %d passes; %s)" % (
                        res["reconstruction_error"], res["n_iter"], res.get("passes_over_x", 0),
                        against_sklearn(res, sk)), sk["seconds"] / secs))
                print("%s done" % job, flush=True)
        for solver in ("mu",) if "20" in a.nmf_k.split(",") else ():
            spec = {"model": {"method": "nmf", "n_topics": 20, "solver": solver}, "seed": 0}
            # scikit-learn's NMF makes its sparse products (scipy) and cd's
            # coordinate updates (Cython) on one core; only its dense
            # products use BLAS threads. topicd on one thread gives the
            # per-core ratio.
            sk, (res, secs, rss), (res1, secs1, rss1) = best_of(
                [lambda: run_py({"kind": "nmf", "k": 20, "solver": solver, "npz": npz}),
                 lambda: topicd_once(spec), lambda: topicd_once(spec, threads=1)], secs_of,
                a.repeat)
            rows.append(("NMF (sklearn)", "nmf k=20 %s" % solver, sk["seconds"], sk["rss_mb"],
                         "%.4f (%d it)" % (sk["error"], sk["n_iter"]), None))
            rows.append(("topicd", "nmf k=20 %s" % solver, secs, rss,
                         "%.4f (%d it)" % (res["reconstruction_error"], res["n_iter"]),
                         sk["seconds"] / secs))
            rows.append(("topicd, 1 thread", "nmf k=20 %s" % solver, secs1, rss1,
                         "%.4f (%d it)" % (res1["reconstruction_error"], res1["n_iter"]),
                         sk["seconds"] / secs1))
            print("nmf %s done" % solver, flush=True)
    if (a.kl or a.only == "kl") and not a.shape:
        # mu on the generalized Kullback-Leibler divergence (sqrt(2 KL) is
        # the error either side reports), k = 20, seed 0.
        job = "nmf k=20 mu kullback-leibler"
        spec = {"model": {"method": "nmf", "n_topics": 20, "solver": "mu",
                          "beta_loss": "kullback-leibler"}, "seed": 0}
        sk, (res, secs, rss) = best_of(
            [lambda: run_py({"kind": "nmf", "k": 20, "solver": "mu", "npz": npz,
                             "beta_loss": "kullback-leibler"}),
             lambda: topicd_once(spec)], secs_of, a.repeat)
        rows.append(("NMF (sklearn)", job, sk["seconds"], sk["rss_mb"],
                     "%.4f (%d it)" % (sk["error"], sk["n_iter"]), None))
        rows.append(("topicd", job, secs, rss, "%.4f (%d it, %d passes)" % (
            res["reconstruction_error"], res["n_iter"], res.get("passes_over_x", 0)),
            sk["seconds"] / secs))
        print("%s done" % job, flush=True)
    if a.only in (None, "minibatch") and not a.shape:
        # MiniBatchNMF with its defaults (batch_size 1024, forget_factor 0.7,
        # max_no_improvement 10), init nndsvda as topicd's; topicd replays
        # its batches. cd and hals run once beside it, for their peak RSS on
        # the same matrix (their times are the nmf group's rows).
        job = "nmf k=20 minibatch seed 0"
        spec = {"model": {"method": "nmf", "n_topics": 20, "solver": "minibatch",
                          "init": "nndsvda"}, "seed": 0}
        sk, mb, mb1 = best_of(
            [lambda: run_py({"kind": "minibatch", "k": 20, "seed": 0, "npz": npz}),
             lambda: topicd_once(spec), lambda: topicd_once(spec, threads=1)], secs_of, a.repeat)
        rows.append(("MiniBatchNMF (sklearn)", job, sk["seconds"], sk["rss_mb"],
                     "%.4f (%d it, %d steps)" % (sk["error"], sk["n_iter"], sk["n_steps"]), None))
        for name, (res, secs, rss) in (("topicd minibatch", mb), ("topicd minibatch, 1 thread", mb1)):
            rows.append((name, job, secs, rss, "%.4f (%d it, %d steps, %d passes)" % (
                res["reconstruction_error"], res["n_iter"], res.get("n_steps", 0),
                res.get("passes_over_x", 0)), sk["seconds"] / secs))
        for solver in ("cd", "hals"):
            res, secs, rss = topicd_once({"model": {"method": "nmf", "n_topics": 20,
                                                    "solver": solver}, "seed": 0})
            rows.append(("topicd %s (for its RSS)" % solver, job, secs, rss,
                         "%.4f (%d it, %d passes)" % (res["reconstruction_error"], res["n_iter"],
                                                      res.get("passes_over_x", 0)), None))
        print("%s done" % job, flush=True)

    print()
    print("| job | implementation | seconds | peak RSS (MB) | error | speed-up |")
    print("|---|---|---:|---:|---|---:|")
    for impl, job, secs, rss, err, ratio in rows:
        print("| %s | %s | %.2f | %.0f | %s | %s |" % (job, impl, secs, rss, err,
                                                     "%.1fx" % ratio if ratio else ""))
    print("\nseconds: the fastest of %d runs (SVD) or %d (NMF), each in its own process. "
          "SVD error: max relative error of the k singular values against svds; "
          "speed-up: topicd randomized vs randomized_svd, lanczos vs svds, NMF vs sklearn "
          "(hals vs sklearn's cd; its whole process reads the stripped documents, vectorizes "
          "and fits, against NMF.fit alone; its RSS is not measured; minibatch vs "
          "MiniBatchNMF.fit). "
          "SVD seconds: topicd's init + fit timings against the randomized_svd or svds call "
          "alone; the whole-process rows are the wall time of topicd fit reading the Matrix "
          "Market, or reading, vectorizing and fitting the stripped documents, against the same "
          "randomized_svd call. "
          "Python processes' RSS includes the interpreter and libraries."
          % (max(1, a.repeat_svd), max(1, a.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
