#!/usr/bin/env bash
# Feed benchmark (called by make bench): throughput to 10 subscribers, replay of 1 million events.
#   scripts/bench-feed.sh [BUILD_DIR] [bench_feed.py options]
set -euo pipefail
B=${1:-build-bench}
shift || true
exec python3 "$(dirname "$0")/bench_feed.py" "$B" "$@"
