#!/bin/sh
# check-openapi.sh [FILE...]: checks api/openapi.yaml (or FILEs), the contract
# topicd serves at /v1/openapi.yaml, against the OpenAPI specification with
# openapi-spec-validator from PyPI: a YAML slip that still parses (a flow-style
# description with a comma turns into a stray key) fails here, not in a
# client's code generator. The validator is pinned, so what it accepts changes
# only with the pin, and installed once into a virtual environment under
# build/tools/, as scripts/check-compose.sh installs check-jsonschema.
set -eu
cd "$(dirname "$0")/.."
VERSION=0.9.0
venv=build/tools/openapi-spec-validator-$VERSION
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    echo "check-openapi: installing openapi-spec-validator $VERSION from PyPI into $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator==$VERSION"
fi
[ $# -gt 0 ] || set -- api/openapi.yaml
exec "$venv/bin/openapi-spec-validator" "$@"
