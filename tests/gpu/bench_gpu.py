#!/usr/bin/env python3
"""bench_gpu.py - the GPU benchmark of tests/gpu/run.sh.

All 18,846 20 Newsgroups documents (train then test, scikit-learn's order),
headers/footers/quotes stripped, English stop words, TF-IDF: vectorized once
by topicd (written as Matrix Market), then on that same matrix:
  randomized SVD k=100, NMF k=20 (cd), NMF k=20 (mu)
by topicd on the GPU, topicd on the CPU, and scikit-learn on the CPU.
topicd's times are per job with the backend context already made, as a
server worker runs it (tests/gpu/bench_fit.c); scikit-learn's are the
fit calls. Prints a Markdown table and checks GPU vs CPU agreement:
singular values within 1e-4 relative, NMF error within 0.5%.

Exit status: 0 all ran and agree (or GPU parts skipped with --no-gpu),
1 a disagreement or failure.
"""
import argparse
import gzip
import json
import lzma
import os
import subprocess
import sys
import time


def opener(path):
    for ext, fn in (("", open), (".xz", lzma.open), (".gz", gzip.open)):
        if os.path.exists(path + ext):
            return fn(path + ext, "rt", encoding="utf-8")
    raise FileNotFoundError(path + "[.xz|.gz]")


def load_docs(corpus, limit):
    """Raw texts in scikit-learn's all20_shuffle42 order, train then test."""
    with opener(os.path.join(corpus, "sklearn_order.json")) as f:
        orders = json.load(f)["orders"]
    docs = []
    for split in ("train", "test"):
        by_id = {}
        with opener(os.path.join(corpus, split + ".jsonl")) as f:
            for line in f:
                d = json.loads(line)
                by_id[d["id"]] = d["text"]
        docs += [by_id[i] for i in orders[split]["all20_shuffle42"]]
    return docs[:limit] if limit else docs


def run(cmd, timeout):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s %s" % (cmd[0], p.returncode, p.stdout[-1500:],
                                                      p.stderr[-1500:]))
    return p.stdout, time.time() - t0


def topicd_job(bench_fit, mtx, device, method, k, solver, timeout):
    cmd = [bench_fit, mtx, device, method, str(k)] + ([solver] if solver else [])
    out, _ = run(cmd, timeout)
    return json.loads(out)


def sklearn_job(X, method, k, solver):
    import numpy as np  # noqa: F401
    if method == "svd":
        from sklearn.utils.extmath import randomized_svd
        t0 = time.time()
        _, s, _ = randomized_svd(X, k, random_state=0)
        return {"seconds": time.time() - t0, "singular_values": list(s), "error": None}
    from sklearn.decomposition import NMF
    t0 = time.time()
    nmf = NMF(n_components=k, solver=solver, random_state=1, max_iter=200, tol=1e-4)
    nmf.fit_transform(X)
    return {"seconds": time.time() - t0, "error": float(nmf.reconstruction_err_),
            "n_iter": int(nmf.n_iter_)}


HEADER = ("| job | scikit-learn (s) | topicd CPU (s) | topicd GPU (s) | GPU vs sklearn "
          "| GPU vs topicd CPU | agreement / error |\n|---|---|---|---|---|---|---|")
ROW = "| %s | %s | %s | %s | %s | %s | %s |"


def fmt_s(r):
    return "%.3f" % r["seconds"] if r and "seconds" in r else "-"


def ratio(a, b):
    if not a or not b or "seconds" not in a or "seconds" not in b or b["seconds"] <= 0:
        return "-"
    return "%.1fx" % (a["seconds"] / b["seconds"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topicd", required=True)
    ap.add_argument("--bench-fit", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--limit", type=int, default=0, help="first N documents only (a smoke run)")
    ap.add_argument("--no-gpu", action="store_true", help="topicd CPU and scikit-learn only")
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--budget", type=float, default=420.0,
                    help="seconds; scikit-learn runs are skipped once this is spent")
    ap.add_argument("--svd-k", type=int, default=100)
    ap.add_argument("--nmf-k", type=int, default=20)
    ap.add_argument("--job-timeout", type=float, default=90.0,
                    help="seconds each topicd job may take before it counts as failed")
    a = ap.parse_args()
    start = time.time()
    os.makedirs(a.work, exist_ok=True)

    docs = load_docs(a.corpus, a.limit)
    jsonl = os.path.join(a.work, "docs.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for t in docs:
            f.write(json.dumps({"text": t}) + "\n")
    mtx = os.path.join(a.work, "X.mtx")
    spec = {"preprocess": {"strip": ["headers", "footers", "quotes"]},
            "vectorizer": {"stop_words": "english"}}
    _, vec_s = run([a.topicd, "vectorize", "--summary", "--spec", json.dumps(spec),
                    "--matrix-market", mtx, jsonl], 300)
    X = None
    if not a.no_sklearn:
        import scipy.io
        X = scipy.io.mmread(mtx).tocsr()
        X.sort_indices()
    print("corpus: %d documents, vectorized by topicd in %.2f s" % (len(docs), vec_s))
    print(HEADER, flush=True)

    cases = [("randomized SVD k=%d" % a.svd_k, "svd", a.svd_k, None),
             ("NMF k=%d (cd)" % a.nmf_k, "nmf", a.nmf_k, "cd"),
             ("NMF k=%d (mu)" % a.nmf_k, "nmf", a.nmf_k, "mu")]
    rows, problems = [], []
    shape = None
    for name, method, k, solver in cases:
        gpu = cpu = sk = None
        try:
            cpu = topicd_job(a.bench_fit, mtx, "cpu", method, k, solver, a.job_timeout)
            shape = (cpu["n_documents"], cpu["n_features"], cpu["nnz"])
        except Exception as e:  # noqa: BLE001
            problems.append("%s: topicd cpu: %s" % (name, e))
        if not a.no_gpu:
            try:
                gpu = topicd_job(a.bench_fit, mtx, "gpu", method, k, solver, a.job_timeout)
            except Exception as e:  # noqa: BLE001
                problems.append("%s: topicd gpu: %s" % (name, e))
        if X is not None and time.time() - start < a.budget:
            try:
                sk = sklearn_job(X, method, k, solver)
            except Exception as e:  # noqa: BLE001
                problems.append("%s: scikit-learn: %s" % (name, e))
        elif X is not None:
            print("  %s: scikit-learn skipped (time budget spent)" % name)
        # agreement
        if gpu and cpu:
            if method == "svd":
                worst = max(abs(g / c - 1.0) for g, c in
                            zip(gpu["singular_values"], cpu["singular_values"]))
                err_txt = "max rel. diff of singular values %.1e" % worst
                if worst > 1e-4:
                    problems.append("%s: singular values differ by %.2e (> 1e-4)" % (name, worst))
            else:
                rel = abs(gpu["error"] / cpu["error"] - 1.0)
                err_txt = "error gpu %.4f / cpu %.4f" % (gpu["error"], cpu["error"])
                if rel > 5e-3:
                    problems.append("%s: NMF error differs by %.2f%% (> 0.5%%)" % (name, 100 * rel))
        elif cpu and method == "nmf":
            err_txt = "error cpu %.4f" % cpu["error"]
        else:
            err_txt = "-"
        if sk and sk.get("error") is not None:
            err_txt += ", sklearn %.4f" % sk["error"]
        rows.append((name, sk, cpu, gpu, err_txt))
        # Each row as it finishes, so that a run cut short still has it.
        print(ROW % (name, fmt_s(sk), fmt_s(cpu), fmt_s(gpu), ratio(sk, gpu), ratio(cpu, gpu),
                     err_txt) + "  (%.0f s elapsed)" % (time.time() - start), flush=True)

    print()
    if shape:
        print("Matrix: %d x %d, %d non-zeros. GPU time: per job, context made once "
              "(CUDA start-up %s s not included)." % (shape[0], shape[1], shape[2],
                                                      "-" if not rows or not rows[0][3] else
                                                      "%.2f" % rows[0][3].get("seconds_context", 0)))
    print()
    print(HEADER)
    for name, sk, cpu, gpu, err_txt in rows:
        print(ROW % (name, fmt_s(sk), fmt_s(cpu), fmt_s(gpu), ratio(sk, gpu), ratio(cpu, gpu),
                     err_txt))
    print()
    for p in problems:
        print("PROBLEM: " + p)
    print("bench_gpu: %s in %.0f s" % ("ok" if not problems else "FAILED", time.time() - start))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
