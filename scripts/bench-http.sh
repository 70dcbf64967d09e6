#!/usr/bin/env bash
# HTTP, query and stream latency benchmark (called by make bench): /api/totals by county, the
# query endpoint and `aidstat query`, and /api/stream, at province scale while 10,000 events/s
# are being ingested. Real aggregator on loopback, free ports, temporary folder.
#   scripts/bench-http.sh [BUILD_DIR] [bench_http.py options]
set -euo pipefail
B=${1:-build-bench}
shift || true
# Debian's python3 (the test library's interpreter; another python3 first in PATH may lack modules)
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
exec timeout 600 "$PY" "$(dirname "$0")/bench_http.py" "$B" "$@"
