#!/usr/bin/env bash
# Feed benchmark (called by make bench): throughput to 10 subscribers, replay of 1 million events.
# Real aggregator on loopback, free ports, temporary folder; bounded to 5 minutes.
#   scripts/bench-feed.sh [BUILD_DIR] [bench_feed.py options]
set -euo pipefail
B=${1:-build-bench}
shift || true
# Debian's python3 has python3-zmq (another python3 first in PATH may not)
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
exec timeout 300 "$PY" "$(dirname "$0")/bench_feed.py" "$B" "$@"
