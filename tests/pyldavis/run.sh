#!/bin/sh
# tests/pyldavis/run.sh: pyLDAvis.prepare(**data) accepts what GET
# /v1/jobs/{id}/pyldavis.json answers (tests/pyldavis/check.py), on a real
# server: a corpus of the 20 Newsgroups' four categories when
# ../shared/corpora/20news is there (CORPUS=file.jsonl picks another), else
# tests/fixtures/api/small.jsonl; an NMF job; its pyldavis.json and model.
# pyLDAvis is pinned and installed once into a virtual environment under
# build/tools/ (PYLDAVIS_PYTHON=path uses a Python that has it instead).
#   TOPICD   the binary (build/topicd)
set -eu
cd "$(dirname "$0")/../.."
VERSION=3.4.0
if [ -n "${PYLDAVIS_PYTHON:-}" ]; then
    py=$PYLDAVIS_PYTHON
else
    venv=build/tools/pyldavis-$VERSION
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyLDAvis' 2>/dev/null; then
        echo "pyldavis: installing pyLDAvis $VERSION from PyPI into $venv"
        rm -rf "$venv"
        "${PYTHON:-python3}" -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "pyLDAvis==$VERSION"
    fi
    py=$venv/bin/python
fi
topicd=${TOPICD:-build/topicd}
[ -x "$topicd" ] || { echo "pyldavis: no $topicd (make first)" >&2; exit 2; }
corpus=${CORPUS:-}
if [ -z "$corpus" ]; then
    corpus=tests/fixtures/api/small.jsonl
    [ -f ../shared/corpora/20news/train.jsonl ] && corpus=../shared/corpora/20news/train.jsonl
fi

. tests/lib/topicd.sh
dir=$(mktemp -d "${TMPDIR:-/tmp}/topicd-pyldavis-XXXXXX")
cleanup() {
    topicd_stop_all
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
topicd_start server "$dir/data" --workers 1
base=http://127.0.0.1:$server_port

cid=$(curl -sf -H 'Content-Type: application/x-ndjson' --data-binary "@$corpus" \
    "$base/v1/corpora" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
jid=$(curl -sf -H 'Content-Type: application/json' --data-binary \
    "{\"corpus_id\":\"$cid\",\"vectorizer\":{\"stop_words\":\"english\",\"min_df\":2},\
\"model\":{\"method\":\"nmf\",\"n_topics\":5}}" \
    "$base/v1/jobs" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
state=queued
for _ in $(seq 600); do
    state=$(curl -sf "$base/v1/jobs/$jid" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    case $state in succeeded | failed | cancelled) break ;; esac
    sleep 1
done
[ "$state" = succeeded ] || { echo "pyldavis: job $jid $state" >&2; exit 1; }
curl -sf -o "$dir/pyldavis.json" "$base/v1/jobs/$jid/pyldavis.json"
curl -sf -o "$dir/model.npz" "$base/v1/jobs/$jid/model"
"$py" tests/pyldavis/check.py "$dir/pyldavis.json" "$dir/model.npz"
