"""model_size.py - how big a kept model is (bench/NOTES.md, "Kept models").

For 20 Newsgroups fits (scikit-learn's NMF and TruncatedSVD on the TF-IDF
matrix fitcorpus.py builds): the components' bytes raw and deflated
(zlib level 1, 6, 9) in float64 and float32, and what float32 components do
to a transform: max |T32 - T64| / max |T64| and ||T32 - T64||_F / ||T64||_F.
  /work/venv/bin/python bench/model_size.py [--which all|fastai4] [--k 20] [--corpus DIR]
      [--methods nmf,truncated_svd]
"""
import argparse
import time
import zlib

import numpy as np
from sklearn.decomposition import NMF, TruncatedSVD

import fitcorpus


def deflated(a, level):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    t = time.time()
    n = len(c.compress(a.tobytes())) + len(c.flush())
    return n, time.time() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--which", default="all")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--corpus", default=fitcorpus.CORPUS)
    p.add_argument("--methods", default="nmf,truncated_svd")
    a = p.parse_args()
    docs = fitcorpus.load_docs(a.which, a.corpus)
    X, vocab = fitcorpus.tfidf(docs)
    print(f"{a.which}: X {X.shape}, nnz {X.nnz}, k {a.k}")
    for name, model in [("nmf", NMF(a.k, init="nndsvda", max_iter=200, random_state=0)),
                        ("truncated_svd", TruncatedSVD(a.k, random_state=0))]:
        if name not in a.methods.split(","):
            continue
        t = time.time()
        model.fit(X)
        fit_s = time.time() - t
        C = model.components_
        print(f"{name}: fit {fit_s:.1f} s, components {C.shape}, zeros {np.mean(C == 0):.3f}")
        for dt in (np.float64, np.float32):
            raw = C.astype(dt)
            row = [f"  {np.dtype(dt).name}: raw {raw.nbytes / 1e6:.2f} MB"]
            for level in (1, 6, 9):
                n, s = deflated(raw, level)
                row.append(f"level {level} {n / 1e6:.2f} MB ({n / raw.nbytes:.0%}, {s:.2f} s)")
            print(", ".join(row))
        T64 = model.transform(X)
        model.components_ = C.astype(np.float32).astype(np.float64)
        T32 = model.transform(X)
        model.components_ = C
        d = T32 - T64
        print(f"  float32 components: transform max rel {np.abs(d).max() / np.abs(T64).max():.2e},"
              f" frobenius rel {np.linalg.norm(d) / np.linalg.norm(T64):.2e}")


if __name__ == "__main__":
    main()
