#!/usr/bin/env bash
# bench-check.sh BIN_DIR: `aidstat check` over 1,000,000 generated rows (two counties, one year),
# timed and printed as rows/s. A figure, not a test: the target is under 2 s on a 2-core machine.
set -euo pipefail
BIN=${1:-build-bench/bin}
ROWS=${ROWS:-1000000}
AIDSTAT="$BIN/aidstat"
[ -x "$AIDSTAT" ] || { echo "bench-check: $AIDSTAT not found (build first)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
YEAR=$(( $(TZ=Asia/Shanghai date +%Y) - 1 ))
"$AIDSTAT" gen --counties 360730,360733 --events "$ROWS" --year "$YEAR" --seed 1 >"$TMP/rows.csv"
SIZE=$(stat -c %s "$TMP/rows.csv")
cat "$TMP/rows.csv" >/dev/null # in the page cache, as a file just dropped in a spool would be
T0=$(date +%s.%N)
"$AIDSTAT" check --stats "$TMP/rows.csv" >"$TMP/out.txt" 2>&1 || {
    echo "bench-check: aidstat check failed:" >&2
    tail -n 20 "$TMP/out.txt" >&2
    exit 1
}
T1=$(date +%s.%N)
awk -v t0="$T0" -v t1="$T1" -v n="$ROWS" -v b="$SIZE" 'BEGIN {
    s = t1 - t0
    printf "aidstat check: %d rows (%.0f MB) in %.2f s = %.0f rows/s, %.0f MB/s\n", n, b / 1e6, s, n / s, b / 1e6 / s
}'
