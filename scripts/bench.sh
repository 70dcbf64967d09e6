#!/usr/bin/env bash
# make bench: every benchmark, printing its figures (timings are figures, not tests).
set -uo pipefail
B=${1:-build-bench}
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(date -u +%FT%TZ)"
[ -x scripts/bench-check.sh ] && { echo "== aidstat check (1 million rows)"; scripts/bench-check.sh "$B/bin"; }
[ -x "$B/bench_ledger" ] && { echo "== ledger group commit"; "$B/bench_ledger"; }
echo "== end to end (real daemons, durable commits)"
python3 scripts/bench_e2e.py "$B"
for s in scripts/bench-http.sh scripts/bench-feed.sh; do
  [ -x "$s" ] && { echo "== $s"; "$s" "$B"; }
done
[ -x "$B/bench_report" ] && { echo "== report"; "$B/bench_report"; }
exit 0
