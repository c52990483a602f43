#!/usr/bin/env bash
# SQL over Arrow Flight SQL against InfluxQL over HTTP, on one fletchd, with fletch-bench.
#
#   bench/flight.sh            4000 hosts x 1h for the full-table read, 100 x 12h for TSBS
#   bench/flight.sh --quick    400 x 1h and 10 x 1h
#
# 1. A full-table `SELECT * FROM cpu` over Flight SQL (GetFlightInfo, then DoGet; every batch
#    read, nothing converted) on the 4000 x 1h data once persisted: rows per second over
#    loopback (target: at least 5M rows/s) and the time to the first batch.
# 2. The TSBS query types in InfluxQL over HTTP /query and in SQL over Flight SQL (the SQL
#    forms of bench/src/query.rs), the same seeded picks, ITERATIONS (default 40) per type in
#    alternating rounds of 10 once the server is idle; every SQL answer is compared with the
#    InfluxQL form's (same rows and numbers). Target: SQL no slower than InfluxQL.
# Prints markdown tables. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
ITERATIONS="${ITERATIONS:-40}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fletch-target}"
cargo build --release --bin fletchd --bin fletch-bench >&2
BIN="$CARGO_TARGET_DIR/release"

WORK="$(mktemp -d /var/tmp/fletch-flight-bench.XXXXXX)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

HTTP=127.0.0.1:48086
URL="http://$HTTP"
FLETCH_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION=2s FLETCH_DATA_COMPACT_FULL_WRITE_COLD_DURATION=2s \
  RUST_LOG=warn "$BIN/fletchd" --dir "$WORK/node" --http-bind-address "$HTTP" \
  --meta-http-bind-address 127.0.0.1:48091 --meta-bind-address 127.0.0.1:48088 >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "$URL/ping" && break; sleep 0.2; done

# Bytes under the node's data once they stop changing (bounded: 3 minutes).
settle() {
  local last=-1 same=0 now
  for _ in $(seq 1 90); do
    now=$(du -sb "$WORK/node/data" "$WORK/node/wal" 2>/dev/null | awk '{s += $1} END {print s}')
    if [ "$now" = "$last" ]; then same=$((same + 1)); [ "$same" -ge 3 ] && break; else same=0; fi
    last=$now
    sleep 2
  done
}

if [ "$QUICK" = 1 ]; then
  wide=(--scale 400 --duration 1h --start 2016-01-01T00:00:00Z --seed 123)
  tsbs=(--scale 10 --duration 1h --start 2016-01-01T00:00:00Z --seed 123)
else
  wide=(--scale 4000 --duration 1h --start 2016-01-01T00:00:00Z --seed 123)
  tsbs=(--scale 100 --duration 12h --start 2016-01-01T00:00:00Z --seed 123)
fi

echo "-- load ${wide[1]} hosts x ${wide[3]} into wide" >&2
"$BIN/fletch-bench" load "${wide[@]}" --url "$URL" --db wide --workers 4 --batch-size 5000 --quiet-pid "$PID" --json >/dev/null
echo "-- load ${tsbs[1]} hosts x ${tsbs[3]} into tsbs" >&2
"$BIN/fletch-bench" load "${tsbs[@]}" --url "$URL" --db tsbs --workers 4 --batch-size 5000 --quiet-pid "$PID" --json >/dev/null
echo "-- waiting for the node to persist and compact" >&2
settle

echo "-- full-table read over Flight SQL" >&2
flight=$("$BIN/fletch-bench" flight --url "$URL" --db wide --sql "SELECT * FROM cpu" --iterations 5 --json)

echo "-- TSBS types: InfluxQL over HTTP, SQL over Flight SQL" >&2
qlog="$WORK/queries.jsonl"
: >"$qlog"
rounds=$(( (ITERATIONS + 9) / 10 ))
for t in $("$BIN/fletch-bench" types); do
  for r in $(seq 0 $((rounds - 1))); do
    common=("${tsbs[@]}" --url "$URL" --db tsbs --types "$t" --iterations 10 --skip $((r * 10)) --quiet-pid "$PID" --server-pid "$PID" --json)
    if [ $((r % 2)) = 0 ]; then order="influxql sql"; else order="sql influxql"; fi
    for lang in $order; do
      if [ "$lang" = sql ]; then
        out=$("$BIN/fletch-bench" query "${common[@]}" --language sql --reference "$URL") || true
      else
        out=$("$BIN/fletch-bench" query "${common[@]}") || true
      fi
      echo "{\"language\": \"$lang\", \"reports\": ${out:-[]}}" >>"$qlog"
    done
  done
done

python3 - "$flight" "$qlog" <<'EOF'
import json, statistics, sys
f = json.loads(sys.argv[1])
rate = f["rows_per_sec_median"]
print("| full-table `SELECT * FROM cpu` over Flight SQL | |")
print("|---|---|")
print(f"| rows | {f['rows']} |")
print(f"| median of {f['runs']} runs | {f['median_seconds']:.3f} s, {rate / 1e6:.2f}M rows/s (target: at least 5M rows/s: {'met' if rate >= 5e6 else 'not met'}) |")
print(f"| best run | {f['rows_per_sec_best'] / 1e6:.2f}M rows/s |")
print(f"| first batch after, ms | {', '.join(f'{x:.1f}' for x in f['first_batch_ms'])} |")
print()
lat = {"influxql": {}, "sql": {}}
cpu = {"influxql": {}, "sql": {}}
bad = {}
for line in open(sys.argv[2]):
    row = json.loads(line)
    for rep in row["reports"]:
        lat[row["language"]].setdefault(rep["type"], []).extend(rep.get("latencies_ms", []))
        if rep.get("server_cpu_ms") is not None:
            cpu[row["language"]].setdefault(rep["type"], []).append(float(rep["server_cpu_ms"]))
        if row["language"] == "sql":
            bad[rep["type"]] = bad.get(rep["type"], 0) + rep.get("mismatches", 0) + rep.get("errors", 0)
print("| query | InfluxQL over HTTP, median ms | SQL over Flight SQL, median ms | SQL / InfluxQL | server CPU ms/query, InfluxQL / SQL | target: SQL no slower | SQL answers |")
print("|---|---|---|---|---|---|---|")
for t in lat["influxql"]:
    i, s = lat["influxql"][t], lat["sql"].get(t, [])
    if not i or not s:
        print(f"| {t} | | | | | | no result |")
        continue
    mi, ms = statistics.median(i), statistics.median(s)
    c = lambda l: f"{statistics.mean(cpu[l][t]):.2f}" if cpu[l].get(t) else "-"
    answers = "same numbers" if bad.get(t, 0) == 0 else f"{bad[t]} differ or failed"
    print(f"| {t} | {mi:.2f} | {ms:.2f} | {ms / mi:.2f}x | {c('influxql')} / {c('sql')} | {'met' if ms <= mi else 'not met'} | {answers} |")
EOF
