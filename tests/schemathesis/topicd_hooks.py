"""schemathesis hooks for tests/schemathesis/run.sh (schemathesis.toml loads them)."""

import schemathesis
from schemathesis import GenerationMode


@schemathesis.hook
def filter_case(context, case):
    """Drops the negative cases of a multipart/form-data body.

    A form part carries bytes, not a JSON type: a "file" generated as a
    number, an object or null goes out as its text, which is a valid file, so
    the server rightly accepts it. Only the body of that media type is
    dropped; its positive cases and every other body are still sent.
    """
    meta = getattr(case, "_meta", None)
    if case.media_type is None or not case.media_type.startswith("multipart/form-data"):
        return True
    if meta is None:
        return True
    for location, info in meta.components.items():
        if str(getattr(location, "value", location)) == "body" and info.mode == GenerationMode.NEGATIVE:
            return False
    return True
