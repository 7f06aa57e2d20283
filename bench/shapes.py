#!/usr/bin/env python3
"""shapes.py - two synthetic corpus shapes for the NMF benchmarks (issue #19),
beside 20 Newsgroups: many short documents and few long ones. Not in the tests.

    short: 60,000 documents of 30-80 words, about 80,000 distinct terms after
           TfidfVectorizer(stop_words="english")
    long:  2,000 documents of 5,000 words

Each is drawn from an LDA-like generative process, so that NMF finds topics in
it as it does in real text, not noise:
- a vocabulary of made-up words (two to four syllables, letters only, none an
  English stop word; the first ones are the shortest, as in real text);
- a background distribution, Zipf over the whole vocabulary (s = 1.05), for
  the words every topic uses;
- T topics, each Zipf (s = 1.1) over its own random 4,000 words;
- a document: a length, topic proportions ~ Dirichlet(alpha), then each word
  from the background with probability `bg`, else from a topic drawn from
  the proportions.
numpy's Generator(PCG64(seed)) draws everything, so a seed gives the same
corpus on every run (with the same numpy; numpy does not promise the same
streams across its releases).

usage: python3 bench/shapes.py short|long OUT.jsonl [--seed 0]
Output: one {"id": "s<i>", "text": ...} per line.
"""
import argparse
import json
import sys

import numpy as np

SHAPES = {
    # documents, (min, max) words, vocabulary size, topics, Dirichlet alpha,
    # background share
    "short": dict(n_docs=60000, words=(30, 80), vocab=85000, topics=30, alpha=0.1, bg=0.35),
    "long": dict(n_docs=2000, words=(5000, 5000), vocab=60000, topics=30, alpha=0.1, bg=0.35),
}
TOPIC_WORDS = 4000

ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
          "br", "ch", "cl", "dr", "gr", "kr", "pl", "st", "tr", "sh", "th"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
SYLLABLES = [o + v for o in ONSETS for v in VOWELS]  # 196


def vocabulary(size):
    """size distinct made-up words, shortest first (frequent words are short)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    words, ns = [], len(SYLLABLES)
    n_syl = 2
    while len(words) < size:
        for i in range(ns ** n_syl):
            w, r = "", i
            for _ in range(n_syl):
                w += SYLLABLES[r % ns]
                r //= ns
            if w not in ENGLISH_STOP_WORDS:
                words.append(w)
                if len(words) == size:
                    break
        n_syl += 1
    return words


def zipf_cdf(n, s):
    p = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    c = np.cumsum(p)
    return c / c[-1]


def generate(shape, seed=0):
    """Yields the shape's documents as strings."""
    cfg = SHAPES[shape]
    rng = np.random.Generator(np.random.PCG64(seed))
    words = np.array(vocabulary(cfg["vocab"]))
    V, T = cfg["vocab"], cfg["topics"]
    # the background's ranks are the vocabulary's order; each topic's words a
    # random set, in a random order of rank
    bg_cdf = zipf_cdf(V, 1.05)
    topic_words = [rng.choice(V, size=TOPIC_WORDS, replace=False) for _ in range(T)]
    topic_cdf = zipf_cdf(TOPIC_WORDS, 1.1)
    lo, hi = cfg["words"]
    batch = max(1, 200000 // hi)  # documents at a time: bounded memory
    for d0 in range(0, cfg["n_docs"], batch):
        nd = min(batch, cfg["n_docs"] - d0)
        lens = rng.integers(lo, hi + 1, size=nd)
        theta = rng.dirichlet([cfg["alpha"]] * T, size=nd)
        total = int(lens.sum())
        doc_of = np.repeat(np.arange(nd), lens)
        # each token's topic from its document's proportions (inverse CDF)
        cum = np.cumsum(theta, axis=1)
        u = rng.random(total)
        z = (u[:, None] > cum[doc_of]).sum(axis=1).clip(0, T - 1)
        tokens = np.empty(total, dtype=np.int64)
        from_bg = rng.random(total) < cfg["bg"]
        nb = int(from_bg.sum())
        tokens[from_bg] = np.searchsorted(bg_cdf, rng.random(nb))
        topical = ~from_bg
        ranks = np.searchsorted(topic_cdf, rng.random(int(topical.sum())))
        zt = z[topical]
        picked = np.empty(len(zt), dtype=np.int64)
        for t in range(T):
            sel = zt == t
            picked[sel] = topic_words[t][ranks[sel]]
        tokens[topical] = picked
        ends = np.cumsum(lens)
        starts = ends - lens
        for i in range(nd):
            yield " ".join(words[tokens[starts[i]:ends[i]]])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    with open(a.out, "w", encoding="utf-8") as f:
        for i, text in enumerate(generate(a.shape, a.seed)):
            f.write(json.dumps({"id": "s%d" % i, "text": text}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
