#!/bin/sh
# scripts/bench-python.sh: prints the path of a Python with the reference
# libraries `make bench` and `make conformance` compare against, installing
# them once from PyPI into build/tools/bench-<versions>/. Issue #19: ratios
# are taken against the releases users install today, not Debian's older
# packages (Debian 12's scikit-learn 1.2.1 is several times slower at
# randomized_svd, which flatters topicd). Progress goes to stderr, the path
# alone to stdout.
#   PYTHON   the interpreter that makes the virtual environment (python3)
set -eu
cd "$(dirname "$0")/.."
SKLEARN=1.9.1
SCIPY=1.17.1
NUMPY=2.4.6
venv=build/tools/bench-sklearn$SKLEARN-scipy$SCIPY-numpy$NUMPY
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sklearn, scipy' 2>/dev/null; then
    echo "bench: installing scikit-learn $SKLEARN, SciPy $SCIPY, numpy $NUMPY from PyPI into $venv" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "scikit-learn==$SKLEARN" "scipy==$SCIPY" "numpy==$NUMPY" >&2
fi
echo "$PWD/$venv/bin/python"
