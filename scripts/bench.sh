#!/usr/bin/env bash
# make bench: every benchmark, printing its figures (timings are figures, not tests).
set -uo pipefail
B=${1:-build-bench}
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(date -u +%FT%TZ)"
[ -x scripts/bench-check.sh ] && { echo "== aidstat check (1 million rows)"; scripts/bench-check.sh "$B/bin"; }
[ -x "$B/bin/bench_ledger" ] && { echo "== ledger group commit"; "$B/bin/bench_ledger"; }
echo "== end to end (real daemons, durable commits)"
timeout 1800 python3 scripts/bench_e2e.py "$B" || echo "bench_e2e: failed or timed out (exit $?)"
for s in scripts/bench-http.sh scripts/bench-feed.sh; do
  [ -x "$s" ] && { echo "== $s"; timeout 900 "$s" "$B" || echo "$s: failed or timed out (exit $?)"; }
done
[ -x "$B/bin/bench_report" ] && { echo "== report"; "$B/bin/bench_report"; }
exit 0
