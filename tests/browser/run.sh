#!/bin/sh
# tests/browser/run.sh: the web page in headless Chromium, driven by Selenium
# (tests/browser/test_ui.py says what it checks), against two servers of its
# own: one open (no keys, as `make run`), one with an API key. Chromium and
# its driver come from Debian (scripts/deps.sh browser installs them);
# Selenium is pinned and installed once into a virtual environment under
# build/tools/. Screenshots of each page at desktop and phone width go to
# SHOTS (build/screenshots; `make screenshots`). Exits non-zero on a failure.
set -eu
cd "$(dirname "$0")/../.."
VERSION=4.51.0
venv=build/tools/selenium-$VERSION
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    echo "browser: installing selenium $VERSION from PyPI into $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "selenium==$VERSION"
fi
topicd=${TOPICD:-build/topicd}
[ -x "$topicd" ] || { echo "browser: no $topicd (make first)" >&2; exit 2; }
command -v chromedriver >/dev/null 2>&1 || { echo "browser: no chromedriver (scripts/deps.sh browser)" >&2; exit 2; }

. tests/lib/topicd.sh
dir=$(mktemp -d "${TMPDIR:-/tmp}/topicd-browser-XXXXXX")
cleanup() {
    topicd_stop_all
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

topicd_start open "$dir/open" --workers 2
key=$("$topicd" keys create --data-dir "$dir/keyed" --tenant browser 2>/dev/null)
case "$key" in tpk_*) ;; *)
    echo "browser: could not create an API key" >&2
    exit 1
    ;;
esac
topicd_start keyed "$dir/keyed" --workers 2

shots=${SHOTS:-build/screenshots}
"$venv/bin/python" tests/browser/test_ui.py --open "http://127.0.0.1:$open_port" \
    --keyed "http://127.0.0.1:$keyed_port" --key "$key" \
    --fixture tests/fixtures/browser/corpus.jsonl --shots "$shots"
