"""Accelerated routes for NMF on the Kullback-Leibler divergence, measured in
numpy before any is written in C (issue #19: "KL ... and what an accelerated
route gives there"; bench/NOTES.md, "KL: what an accelerated route gives").

From scikit-learn's nndsvda init, counts the iterations each route needs to
reach scikit-learn's mu error (beta_loss="kullback-leibler", tol 1e-4):

  replay  scikit-learn's mu, as a check that the updates here are its own
  extra   mu with Ang & Gillis's extrapolation and restarts (the parameters
          hals uses), the extrapolated factors clamped at 1e-12, not 0:
          mu never moves an element off zero
  ccd     cyclic coordinate descent with one Newton step per coordinate
          (Hsieh & Dhillon 2011), all rows of a topic's column at once

usage: python3 bench/kl_routes.py MTX [--k 20] [--seed 0] [--ref ERROR]
       [--routes replay,extra,ccd] [--max-iter 200]
Without --ref, scikit-learn's NMF is fitted first to get it.
"""
import argparse
import time

import numpy as np
import scipy.io
import scipy.sparse as sp

EPS32 = np.finfo(np.float32).eps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mtx")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ref", type=float)
    ap.add_argument("--routes", default="replay,extra,ccd")
    ap.add_argument("--max-iter", type=int, default=200)
    a = ap.parse_args()
    from sklearn.decomposition import NMF
    from sklearn.decomposition._nmf import _initialize_nmf
    X = scipy.io.mmread(a.mtx).tocsr()
    X.sort_indices()
    ref = a.ref
    if ref is None:
        t = time.time()
        m = NMF(n_components=a.k, solver="mu", beta_loss="kullback-leibler",
                random_state=a.seed).fit(X)
        ref = m.reconstruction_err_
        print("sklearn mu: %d it, error %.10f, %.1f s" % (m.n_iter_, ref, time.time() - t))
    W0, H0 = _initialize_nmf(X, a.k, init="nndsvda", random_state=a.seed)
    m_, n_ = X.shape
    rows = np.repeat(np.arange(m_), np.diff(X.indptr))
    cols = X.indices.astype(np.int64)
    xd = X.data

    def wh_nz(W, H):
        return np.einsum("ik,ik->i", W[rows], H.T[cols])

    def error(W, H, v=None):
        v = np.maximum(wh_nz(W, H) if v is None else v, EPS32)
        return np.sqrt(2 * (np.sum(xd * np.log(xd / v)) - xd.sum() + W.sum(0) @ H.sum(1)))

    def ratio(W, H):
        v = wh_nz(W, H)
        v[v < EPS32] = EPS32
        return sp.csr_matrix((xd / v, X.indices, X.indptr), shape=X.shape)

    def update_w(W, H):  # scikit-learn's _multiplicative_update_w, beta 1
        den = H.sum(1)
        den[den == 0] = 1
        return W * ((ratio(W, H) @ H.T) / den)

    def update_h(W, H):  # _multiplicative_update_h, beta 1
        den = W.sum(0)[:, None]
        den[den == 0] = 1
        Hn = H * ((ratio(W, H).T @ W).T / den)
        Hn[Hn < np.finfo(np.float64).eps] = 0.0
        return Hn

    def report(route, it, e, extra=""):
        print("%s: %d it, error %.10f (%+.1e vs sklearn)%s" % (route, it, e, (e - ref) / ref,
                                                              extra), flush=True)

    routes = a.routes.split(",")
    if "replay" in routes:
        W, H = W0.copy(), H0.copy()
        for it in range(1, a.max_iter + 1):
            W = update_w(W, H)
            H = update_h(W, H)
            if error(W, H) <= ref * (1 + 1e-12):
                break
        report("replay", it, error(W, H))
    if "extra" in routes:
        beta, beta_bar, eta, gamma, gamma_bar = 0.5, 1.0, 1.5, 1.01, 1.005
        Wn, Hn = W0.copy(), H0.copy()
        Wh, Hh = Wn.copy(), Hn.copy()
        e_prev, restarts = error(Wn, Hn), 0
        for it in range(1, a.max_iter + 1):
            W1 = update_w(Wh, Hh)
            Wh1 = np.maximum(W1 + beta * (W1 - Wn), 1e-12)
            H1 = update_h(Wh1, Hh)
            Hh1 = np.maximum(H1 + beta * (H1 - Hn), 1e-12)
            e = error(W1, H1)
            if e > e_prev:  # restart from the last pair that lowered the error
                restarts += 1
                Wh, Hh = Wn, Hn
                beta_bar, beta = beta, beta / eta
            else:
                Wn, Hn, Wh, Hh, e_prev = W1, H1, Wh1, Hh1, e
                beta, beta_bar = min(beta_bar, gamma * beta), min(1.0, gamma_bar * beta_bar)
            if e_prev <= ref:
                break
        report("extra", it, e_prev, ", %d restarts, an error pass each iteration" % restarts)
    if "ccd" in routes:
        W, H = W0.copy(), H0.copy()
        v = wh_nz(W, H)

        def newton(x, g, h):
            step = np.maximum(x - g / np.where(h > 0, h, 1.0), 0.0)
            return np.where(h > 0, step, np.where(g > 0, 0.0, x))

        # Where v underflows the curvature overflows to inf, and the Newton
        # step leaves the coordinate as it is: wanted, so not warned about.
        np.seterr(over="ignore")
        for it in range(1, a.max_iter + 1):
            for r in range(a.k):
                hc = H[r][cols]
                q = xd * hc / np.maximum(v, 1e-300)
                g = H[r].sum() - np.bincount(rows, q, m_)
                h = np.bincount(rows, q * hc / np.maximum(v, 1e-300), m_)
                w = newton(W[:, r], g, h)
                v += (w - W[:, r])[rows] * hc
                W[:, r] = w
            for r in range(a.k):
                wc = W[:, r][rows]
                q = xd * wc / np.maximum(v, 1e-300)
                g = W[:, r].sum() - np.bincount(cols, q, n_)
                h = np.bincount(cols, q * wc / np.maximum(v, 1e-300), n_)
                hn = newton(H[r], g, h)
                v += (hn - H[r])[cols] * wc
                H[r] = hn
            if error(W, H, v) <= ref:
                break
        report("ccd", it, error(W, H, v), ", 2 k passes over the non-zeros each iteration")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
