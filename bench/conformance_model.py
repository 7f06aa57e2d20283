"""conformance_model.py - a topicd model file against scikit-learn, on the
20 Newsgroups' four categories (bench/fitcorpus.py 'fastai4'):

1. `topicd fit --save-model` writes NMF (unigrams, and unigrams plus
   bigrams; and solver minibatch, rebuilt as MiniBatchNMF) and truncated-SVD
   models; the
   README's snippet (bench/model_sklearn.py) rebuilds TfidfVectorizer from
   each, and its matrix of the documents must be topicd vectorize's (same
   entries, values to 1e-12).
2. Its transform: SVD's X V must be the fit's own document-topic weights
   (U S) within 1e-6 relative (the components are stored as float32); NMF's
   (scikit-learn's solver with H fixed) must reconstruct X about as well as
   the fit did (within 1%).
3. tests/pyldavis/run.sh: pyLDAvis.prepare(**data) accepts the
   pyldavis.json a server answers for an NMF job of the same documents
   (PYLDAVIS_PYTHON: a Python with pyLDAvis; else run.sh installs it).

usage: python bench/conformance_model.py [--topicd build/topicd] [--corpus DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import scipy.io
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fitcorpus  # noqa: E402
import model_sklearn  # noqa: E402


def topicd(*args):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({r.returncode}): {r.stderr}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topicd", default=os.path.join(HERE, "..", "build", "topicd"))
    ap.add_argument("--corpus", default=fitcorpus.CORPUS)
    args = ap.parse_args()
    docs = fitcorpus.load_docs("fastai4", args.corpus)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "docs.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"text": d}) + "\n")
        cases = [("nmf", {"stop_words": "english"}),
                 ("truncated_svd", {"stop_words": "english"}),
                 ("nmf", {"stop_words": "english", "ngram_range": [1, 2], "min_df": 2}),
                 ("nmf", {"stop_words": "english"}, {"solver": "minibatch", "batch_size": 256})]
        for method, vec_spec, *more in cases:
            mtx = os.path.join(tmp, "X.mtx")
            topicd(args.topicd, "vectorize", "--quiet", "--spec",
                   json.dumps({"vectorizer": vec_spec}), "--matrix-market", mtx, path)
            Xt = sp.csr_matrix(scipy.io.mmread(mtx), dtype=np.float64)
            Xt.sort_indices()
            npz = os.path.join(tmp, method + ".npz")
            spec = {"vectorizer": vec_spec,
                    "model": dict({"method": method, "n_topics": 10}, **(more[0] if more else {})),
                    "return": {"document_topics": True}}
            res = topicd(args.topicd, "fit", "--quiet", "--spec", json.dumps(spec),
                         "--save-model", npz, path)
            vec, model, meta = model_sklearn.load(npz)
            X = sp.csr_matrix(vec.transform(docs), dtype=np.float64)
            X.sort_indices()
            same = (X.shape == Xt.shape and np.array_equal(X.indptr, Xt.indptr)
                    and np.array_equal(X.indices, Xt.indices))
            dv = float(np.abs(X.data - Xt.data).max()) if same and X.nnz else float("inf")
            good = same and dv <= 1e-12
            ok &= good
            print(f"model {method} {json.dumps(vec_spec)} {json.dumps(more)}: {os.path.getsize(npz)} bytes (model_bytes"
                  f" {res['model_bytes']}); rebuilt TfidfVectorizer {X.shape}, nnz {X.nnz},"
                  f" same structure {same}, max |diff| {dv:.2e}: {'ok' if good else 'FAIL'}")
            T = model.transform(X)
            W = np.asarray(res["document_topics"])
            if method == "truncated_svd":
                rel = float(np.abs(T - W).max() / np.abs(W).max())
                good = rel <= 1e-6
                print(f"  transform vs the fit's U S: max rel {rel:.2e}: {'ok' if good else 'FAIL'}")
            else:
                H = model.components_
                err = float(np.sqrt(sp.linalg.norm(X) ** 2 - 2 * np.sum((X @ H.T) * T)
                                    + np.sum((T.T @ T) * (H @ H.T))))
                fit_err = res["reconstruction_error"]
                good = err <= fit_err * 1.01
                print(f"  transform's ||X - W H|| {err:.6f} vs the fit's {fit_err:.6f}:"
                      f" {'ok' if good else 'FAIL'}")
            ok &= good
        env = dict(os.environ, CORPUS=path, TOPICD=os.path.abspath(args.topicd))
        run = os.path.join(HERE, "..", "tests", "pyldavis", "run.sh")
        r = subprocess.run([run], env=env, capture_output=True, text=True)
        last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"pyldavis: {last}: {'ok' if r.returncode == 0 else 'FAIL'}")
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
        ok &= r.returncode == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
