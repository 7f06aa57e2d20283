#!/usr/bin/env python3
"""`make conformance`: topicd against scikit-learn/SciPy on 20 Newsgroups.

Runs bench/conformance_text.py (vocabulary and TF-IDF values to 1e-12),
bench/conformance_fit.py (singular values, NMF reconstruction error),
bench/conformance_model.py (a model file rebuilt as scikit-learn objects;
pyLDAvis.prepare on pyldavis.json), bench/conformance_transform.py (a kept
model's transform of new documents, to 1e-6 of scikit-learn's),
bench/conformance_minibatch.py (solver "minibatch" against MiniBatchNMF's
error, 3 seeds), then
bench/coherence_gensim.py (model.coherence against gensim, run with
--gensim-python: a Python that has gensim); exits non-zero when any case
disagrees.

usage: python3 bench/conformance.py [--topicd build/topicd] [--corpus DIR] [--quick]
       [--gensim-python PYTHON]
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topicd", default="build/topicd")
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "shared", "corpora", "20news"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gensim-python", default=os.environ.get("GENSIM_PYTHON", sys.executable),
                    help="the Python that runs coherence_gensim.py (needs gensim)")
    args = ap.parse_args()
    status = 0
    for script in ("conformance_text.py", "conformance_fit.py", "conformance_model.py",
                   "conformance_transform.py", "conformance_minibatch.py"):
        path = os.path.join(HERE, script)
        if not os.path.exists(path):
            print(f"conformance: {script} missing", file=sys.stderr)
            status = 1
            continue
        cmd = [sys.executable, path, "--topicd", args.topicd, "--corpus", args.corpus]
        # --quick: the small cases only; the fit checks add the all-documents
        # NMF k=20 facts otherwise.
        if script in ("conformance_text.py", "conformance_minibatch.py") and args.quick:
            cmd.append("--quick")
        if script == "conformance_fit.py" and not args.quick:
            cmd.append("--all")
        print("conformance: " + " ".join(cmd), flush=True)
        status |= subprocess.run(cmd).returncode != 0
    cmd = [args.gensim_python, os.path.join(HERE, "coherence_gensim.py"), "--topicd", args.topicd,
           "--corpus", args.corpus]
    print("conformance: " + " ".join(cmd), flush=True)
    status |= subprocess.run(cmd).returncode != 0
    sys.exit(status)


if __name__ == "__main__":
    main()
