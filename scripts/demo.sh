#!/usr/bin/env bash
# make demo: an aggregator and three county collectors on loopback with embedded defaults, data
# under var/demo/, generated sample data, the provincial totals printed, a draft report for the
# current year, and the dashboard at http://127.0.0.1:7680 until Ctrl-C.
set -euo pipefail
BIN=${1:-build/bin}
ROOT=var/demo
YEAR=$(date +%Y)
COUNTIES=(360730 360733 360781)   # 宁都县, 会昌县, 瑞金市

pids=()
cleanup() {
  echo
  echo "demo: stopping the daemons (SIGTERM: they commit and exit cleanly)"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$ROOT"
echo "demo: starting aidstat-aggregator (data in $ROOT/aggregator, log in $ROOT/aggregator.log)"
"$BIN/aidstat-aggregator" --data "$ROOT/aggregator" >"$ROOT/aggregator.log" 2>&1 &
pids+=($!)
for c in "${COUNTIES[@]}"; do
  echo "demo: starting aidstat-collector for county $c (spool $ROOT/collector-$c/spool)"
  "$BIN/aidstat-collector" --county "$c" --data "$ROOT/collector-$c" \
    >"$ROOT/collector-$c.log" 2>&1 &
  pids+=($!)
done

for i in $(seq 50); do "$BIN/aidstat" status >/dev/null 2>&1 && break; sleep 0.2; done

seed=1
for c in "${COUNTIES[@]}"; do
  f="$ROOT/collector-$c/spool/demo-$YEAR-$seed.csv"
  mkdir -p "$(dirname "$f")"
  "$BIN/aidstat" gen --counties "$c" --events 2000 --year "$YEAR" --seed "$seed" --bad 3 >"$f.tmp"
  mv "$f.tmp" "$f"
  echo "demo: dropped $(basename "$f") (2000 rows, 3 of them deliberately bad) into county $c's spool"
  seed=$((seed + 1))
done

echo "demo: waiting for the collectors to deliver..."
for i in $(seq 150); do
  backlog=$("$BIN/aidstat" status --format json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); c=d["collectors"]; print(sum(x["backlog"] for x in c) if len(c)==3 else -1)' 2>/dev/null || echo -1)
  done_files=$(ls "$ROOT"/collector-*/spool/done/*.csv 2>/dev/null | grep -vc errors || true)
  [ "$backlog" = "0" ] && [ "$done_files" -ge 3 ] && break
  sleep 0.2
done

echo
"$BIN/aidstat" status
echo
echo "Provincial totals for $YEAR by county:"
"$BIN/aidstat" query --year "$YEAR" --by county
echo
echo "Rejected rows are listed next to each file, e.g.:"
ls "$ROOT"/collector-*/spool/done/*.errors.csv 2>/dev/null | head -3
if "$BIN/aidstat" report --help >/dev/null 2>&1; then
  echo
  "$BIN/aidstat" report --year "$YEAR" && echo "demo: draft report for $YEAR written (see the aggregator's reports/$YEAR/)"
fi
echo
echo "Dashboard: http://127.0.0.1:7680  — press Ctrl-C to stop."
wait
