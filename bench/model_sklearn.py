"""model_sklearn.py - a topicd model (.npz) as scikit-learn objects: the
README's snippet ("Models"), kept runnable. `make conformance` runs it
(bench/conformance_model.py).

    python bench/model_sklearn.py MODEL.npz DOCS.txt   (one document a line)

prints the documents' topic weights, scikit-learn's
model.transform(vectorizer.transform(docs)). topicd's "preprocess" (the 20
Newsgroups header/footer/quote stripping) is not the vectorizer's: apply it
to the documents first (sklearn.datasets._twenty_newsgroups.strip_newsgroup_*)
when metadata.json's vectorizer.strip is not 0.
"""
import sys

import numpy as np


def load(path):
    # --- the README's snippet, from here ---
    import json, numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.decomposition import NMF, TruncatedSVD
    z = np.load(path, allow_pickle=False); meta = json.loads(z["metadata.json"]); v, m = meta["vectorizer"], meta["model"]
    b, o = z["vocabulary_utf8"].tobytes(), z["vocabulary_offsets"]
    vec = TfidfVectorizer(vocabulary=[b[o[i]:o[i + 1]].decode() for i in range(len(o) - 1)], lowercase=bool(v["lowercase"]),
                          strip_accents=[None, "ascii", "unicode"][v["strip_accents"]], norm=["l2", "l1", None][v["norm"]],
                          use_idf=bool(v["use_idf"]), smooth_idf=bool(v["smooth_idf"]), sublinear_tf=bool(v["sublinear_tf"]), binary=bool(v["binary"]),
                      ngram_range=tuple(v.get("ngram_range", (1, 1))), stop_words="english" if v["english_stop_words"] else v["stop_words"])
    vec.idf_ = z["idf"]
    model = NMF(m["n_topics"], solver="mu" if m["solver"] == "mu" else "cd", beta_loss=m["beta_loss"], tol=m["tol"], max_iter=m["max_iter"],
                alpha_W=m["alpha_W"], alpha_H=m["alpha_H"], l1_ratio=m["l1_ratio"]) if meta["method"] == "nmf" else TruncatedSVD(m["n_topics"])
    model.components_, model.n_features_in_ = z["components"].astype(np.float64), len(o) - 1
    # --- to here: topics = model.transform(vec.transform(docs)) ---
    if meta["method"] == "nmf" and m["solver"] == "minibatch":
        # MiniBatchNMF.transform (its _solve_W) is not NMF's; it reads the
        # settings _check_params derives at fit time, derived here from a
        # one-row stand-in for the training matrix.
        import scipy.sparse as sp
        from sklearn.decomposition import MiniBatchNMF
        mb = MiniBatchNMF(m["n_topics"], beta_loss=m["beta_loss"], tol=m["tol"],
                          max_iter=m["max_iter"], alpha_W=m["alpha_W"], alpha_H=m["alpha_H"],
                          l1_ratio=m["l1_ratio"], transform_max_iter=m.get("transform_max_iter"))
        mb._check_params(sp.csr_matrix((1, len(o) - 1)))
        mb.components_, mb.n_features_in_ = model.components_, model.n_features_in_
        model = mb
    return vec, model, meta


def main():
    vec, model, meta = load(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        docs = [line.rstrip("\n") for line in f]
    np.savetxt(sys.stdout, model.transform(vec.transform(docs)), fmt="%.17g")


if __name__ == "__main__":
    main()
