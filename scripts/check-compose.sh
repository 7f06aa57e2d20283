#!/bin/sh
# check-compose.sh [FILE...]: checks docker/compose.yaml (or FILEs) against
# the Compose specification's JSON schema, with check-jsonschema from PyPI,
# which ships that schema (its builtin vendor.compose-spec, taken from
# github.com/compose-spec/compose-spec, Apache-2.0). No Docker engine is
# needed. check-jsonschema is pinned, so the schema changes only with the pin,
# and installed once into a virtual environment under build/tools/.
set -eu
cd "$(dirname "$0")/.."
VERSION=0.39.0
venv=build/tools/check-jsonschema-$VERSION
if [ ! -x "$venv/bin/check-jsonschema" ]; then
    echo "check-compose: installing check-jsonschema $VERSION from PyPI into $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "check-jsonschema==$VERSION"
fi
[ $# -gt 0 ] || set -- docker/compose.yaml
exec "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$@"
