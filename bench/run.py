#!/usr/bin/env python3
"""`make bench`: every benchmark, side by side with scikit-learn, into one table.

Runs bench/bench_text.py (vectorization) and bench/bench_fit.py (SVD, NMF)
on the 20 Newsgroups corpus, each printing a markdown table, and writes them
together with the date, the machine and the commands to --out.

usage: python3 bench/run.py [--topicd build/topicd] [--corpus ../shared/corpora/20news]
       [--out bench/results.md] [--only PART] [--gensim-python PYTHON] [--shapes | --all-rows]
(coherence_gensim.py, topic coherence beside gensim's, runs with --gensim-python.)
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def reference_versions(python):
    """The reference libraries' versions, as the Python that runs the
    comparisons imports them (issue #19: today's PyPI releases)."""
    code = ("import numpy, scipy, sklearn; "
            "print(f'scikit-learn {sklearn.__version__}, SciPy {scipy.__version__}, "
            "numpy {numpy.__version__}')")
    proc = subprocess.run([python, "-c", code], stdout=subprocess.PIPE, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown versions"


def all_parts(all_rows):
    """Every part: (key, when, title, script, its arguments beyond --topicd
    and --corpus); when is None (always), "all-rows" (with --all-rows) or
    "shapes" (with --shapes or --all-rows)."""
    parts = [
        ("text", None, "Vectorization (all 18,846 documents, stripped, stop_words=english)",
         "bench_text.py", []),
        ("fit", None, "Factorizations (all 18,846 documents, stripped, TF-IDF)", "bench_fit.py",
         []),
        ("sweep", None, "Sweeps over n_topics against separate fits", "bench_sweep.py", []),
        ("coherence", None, "Topic coherence beside gensim (all 18,846 documents, stripped)",
         "coherence_gensim.py", ["--mode", "bench"]),
        # The rest of issue #19's rows. One run where scikit-learn takes
        # minutes a run (k = 50, KL, the long shape); elsewhere the fastest
        # of 3, since one run each read 7.5x and 11.1x for the same work
        # (bench/NOTES.md, "The run of record for issue #19").
        ("nmf-k10", "all-rows", "NMF k = 10, cd and hals (all 18,846 documents)",
         "bench_fit.py", ["--only", "nmf", "--nmf-k", "10", "--repeat", "3"]),
        ("nmf-k50", "all-rows", "NMF k = 50, cd and hals (all 18,846 documents), one run each",
         "bench_fit.py", ["--only", "nmf", "--nmf-k", "50", "--repeat", "1"]),
        ("kl", "all-rows", "NMF k = 20 with beta_loss kullback-leibler (mu), one run each",
         "bench_fit.py", ["--only", "kl", "--repeat", "1"]),
    ]
    short_repeat = "3" if all_rows else "1"
    for shape, what, repeat in (("short", "60,000 short documents", short_repeat),
                                ("long", "2,000 long documents", "1")):
        parts.append(("shape-" + shape, "shapes", f"NMF on a synthetic corpus of {what} "
                      "(bench/shapes.py)", "bench_fit.py", ["--shape", shape, "--repeat", repeat]))
    return parts


def selected(when, args):
    return (when is None or (when == "all-rows" and args.all_rows)
            or (when == "shapes" and (args.shapes or args.all_rows)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topicd", default="build/topicd")
    ap.add_argument("--corpus", default=os.path.join(HERE, "..", "..", "shared", "corpora", "20news"))
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--only", choices=[part[0] for part in all_parts(False)],
                    help="that part alone, with or without --shapes and --all-rows")
    ap.add_argument("--shapes", action="store_true",
                    help="also bench_fit.py's NMF rows on bench/shapes.py's two corpus shapes "
                    "(long: scikit-learn's cd takes minutes a run)")
    ap.add_argument("--all-rows", action="store_true",
                    help="every row of issue #19: the shapes (short the fastest of 3), NMF k = 10 "
                    "(fastest of 3) and 50, KL (about 20 minutes more than without)")
    ap.add_argument("--gensim-python", default=os.environ.get("GENSIM_PYTHON", sys.executable),
                    help="the Python that runs coherence_gensim.py (needs gensim)")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.corpus, "train.jsonl")):
        sys.exit(f"bench: no 20 Newsgroups corpus at {args.corpus} (pass --corpus)")

    parts = [(key, title, script, extra) for key, when, title, script, extra
             in all_parts(args.all_rows)
             if args.only == key or (args.only is None and selected(when, args))]
    out = [f"# topicd benchmarks\n",
           f"Run {datetime.datetime.now().isoformat(timespec='seconds')} on {machine()}.\n",
           f"Against {reference_versions(sys.executable)} ({sys.executable}).\n",
           "Every row runs topicd and scikit-learn/SciPy in the same run, on the same input; "
           "ratios are scikit-learn time / topicd time.\n"]
    failed = False
    for key, title, script, extra_args in parts:
        path = os.path.join(HERE, script)
        if not os.path.exists(path):
            print(f"bench: {script} missing, skipped", file=sys.stderr)
            continue
        python = args.gensim_python if key == "coherence" else sys.executable
        cmd = [python, path] + extra_args + ["--topicd", args.topicd, "--corpus", args.corpus]
        print("bench: " + " ".join(cmd), file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            failed = True
            print(f"bench: {script} exited {proc.returncode}", file=sys.stderr)
        extra = "".join(" " + a for a in extra_args)
        out.append(f"\n## {title}\n\nCommand: `python3 bench/{script}{extra} --topicd {args.topicd}`\n\n")
        out.append(proc.stdout)
    with open(args.out, "w") as f:
        f.write("".join(out))
    print(f"bench: wrote {args.out}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
