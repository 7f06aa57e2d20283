#!/bin/sh
# The container's entry point: `topicd <args>` as PID 1 (exec, so SIGTERM
# reaches topicd directly and it drains gracefully). The configuration comes
# from TOPICD_* variables; `docker run IMAGE serve --help` lists them.
set -e
exec /usr/local/bin/topicd "$@"
