#!/usr/bin/env bash
# Fletch and InfluxDB 1.6.7 side by side, in one run on one machine, with fletch-bench.
#
#   bench/compare.sh            the data sets of the benchmark issues (100 hosts x 12h,
#                               4000 x 1h, and 100000 hosts x 30s for high cardinality)
#   bench/compare.sh --quick    a small smoke size of each (10 x 1h, 2000 x 30s)
#
# Installs influxdb from Debian if missing, starts both servers on loopback ports and, per
# TSBS data set, measures every query type (TSBS's own texts, Fletch's answers compared with
# InfluxDB's) in three states of the data:
#   compacted  loaded with the write buffers persisting as usual (ingest rate, peak memory),
#              then persisted and compacted (bytes on disk, resident memory at rest);
#   buffer     loaded again into fresh servers whose write buffers hold the whole set;
#   persisted  those servers restarted to persist their buffers, not yet compacted: the first
#              queries of a new process on new files;
# and a mixed run: the query types timed while a load of the set's hosts' newer points runs at
# half of Fletch's ingest rate (MIXED_SECONDS per server, default 600, shared among the types;
# a type not done in its share is reported as such).
# The high-cardinality set compares ingest, memory, disk and its own queries with InfluxDB on
# its default index (inmem) and on tsi1. Writes docs/benchmarks.md and docs/benchmarks.svg.
# Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
ITERATIONS="${ITERATIONS:-20}"
ROUNDS="${ROUNDS:-4}"
OUT_MD="${OUT_MD:-docs/benchmarks.md}"
OUT_SVG="${OUT_SVG:-docs/benchmarks.svg}"
START=2016-01-01T00:00:00Z # every data set's first point
if [ "$QUICK" = 1 ]; then
  SETS="${SETS:-10:1h}" CARD_SETS="${CARD_SETS:-2000:30s}"
else
  SETS="${SETS:-100:12h 4000:1h}" CARD_SETS="${CARD_SETS:-100000:30s}"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fletch-target}"
cargo build --release --bin fletchd --bin fletch-bench >&2
BIN="$CARGO_TARGET_DIR/release"

if ! command -v influxd >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null
fi

WORK="$(mktemp -d /var/tmp/fletch-compare.XXXXXX)"
INFLUX_PID="" FLETCH_PID="" TSI_PID="" LOAD_PID=""
stop() { # pid: TERM, then KILL after 60 s
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 300); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  for p in "$LOAD_PID" "$INFLUX_PID" "$FLETCH_PID" "$TSI_PID"; do stop "$p"; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

IHTTP=127.0.0.1:18186 IRPC=127.0.0.1:18188 FHTTP=127.0.0.1:28186 FMETA=127.0.0.1:28191
THTTP=127.0.0.1:18286 TRPC=127.0.0.1:18288

wait_ping() { # url
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$1/ping" && return 0
    sleep 0.2
  done
  echo "no answer from $1" >&2
  return 1
}

# The write-buffer settings of each state, for both servers:
#   settle   persist after 2 s without writes, compact after 2 s (the data set at rest);
#   buffer   hold everything in the buffer (4 GiB before a snapshot, nothing by age);
#   persist  persist after 2 s without writes, compact only after 4 h.
buffer_settings() { # state -> "snapshot-size max-size snapshot-cold compact-cold"
  case "$1" in
    settle) echo "26214400 1073741824 2s 2s" ;;
    buffer) echo "4294967296 8589934592 1h 4h" ;;
    persist) echo "26214400 8589934592 2s 4h" ;;
  esac
}

start_influx() { # dir state [index http rpc] -> sets INFLUX_PID (or TSI_PID for tsi1)
  local dir=$1 state=$2 index=${3:-inmem} http=${4:-$IHTTP} rpc=${5:-$IRPC}
  read -r snap max cold compact <<<"$(buffer_settings "$state")"
  cat >"$dir/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "$rpc"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  index-version = "$index"
  query-log-enabled = false
  cache-max-memory-size = $max
  cache-snapshot-memory-size = $snap
  cache-snapshot-write-cold-duration = "$cold"
  compact-full-write-cold-duration = "$compact"
  max-series-per-database = 0
  max-values-per-tag = 0
[coordinator]
  max-select-buckets = 100000
[monitor]
  store-enabled = false
[http]
  bind-address = "$http"
  log-enabled = false
[logging]
  level = "warn"
EOF
  influxd -config "$dir/influxdb.conf" >>"$dir/log" 2>&1 &
  if [ "$index" = tsi1 ]; then TSI_PID=$!; else INFLUX_PID=$!; fi
  wait_ping "http://$http"
}

start_fletch() { # dir state
  read -r snap max cold compact <<<"$(buffer_settings "$2")"
  FLETCH_DATA_CACHE_SNAPSHOT_MEMORY_SIZE=$snap FLETCH_DATA_CACHE_MAX_MEMORY_SIZE=$max \
    FLETCH_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION=$cold FLETCH_DATA_COMPACT_FULL_WRITE_COLD_DURATION=$compact \
    RUST_LOG=warn "$BIN/fletchd" --dir "$1" --http-bind-address "$FHTTP" --meta-http-bind-address "$FMETA" \
    --meta-bind-address 127.0.0.1:28188 >>"$1/log" 2>&1 &
  FLETCH_PID=$!
  wait_ping "http://$FHTTP"
}

stop_servers() {
  stop "$INFLUX_PID"; stop "$FLETCH_PID"; stop "$TSI_PID"
  INFLUX_PID="" FLETCH_PID="" TSI_PID=""
}

kb() { grep "^$2:" "/proc/$1/status" | awk '{print $2}'; }

# Bytes under the directories once they stop changing (bounded: 3 minutes).
settled_bytes() {
  local last=-1 same=0 now
  for _ in $(seq 1 90); do
    now=$(du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s}')
    if [ "$now" = "$last" ]; then
      same=$((same + 1))
      [ "$same" -ge 3 ] && break
    else
      same=0
    fi
    last=$now
    sleep 2
  done
  echo "$last"
}

load() { # url pids data... -> the load report (JSON)
  local url=$1 pids=$2
  shift 2
  "$BIN/fletch-bench" load "$@" --url "$url" --workers 4 --batch-size 5000 --quiet-pid "$pids" --json
}

# Per type, ROUNDS alternating rounds (InfluxDB first in even rounds, Fletch first in odd ones)
# of ITERATIONS / ROUNDS queries each, together the type's first ITERATIONS seeded queries:
# latencies on this machine drift by tens of percent within minutes, and alternating keeps that
# drift out of the ratio. Every round starts once both servers are idle; Fletch's answers are
# compared with InfluxDB's after its timed queries.
run_queries() { # state qlog types data...
  local state=$1 qlog=$2 types=$3
  shift 3
  local per=$(((ITERATIONS + ROUNDS - 1) / ROUNDS)) t r server out common order
  for t in $types; do
    for r in $(seq 0 $((ROUNDS - 1))); do
      common=("$@" --types "$t" --iterations "$per" --skip $((r * per)) --quiet-pid "$INFLUX_PID,$FLETCH_PID" --json)
      if [ $((r % 2)) = 0 ]; then order="influx fletch"; else order="fletch influx"; fi
      for server in $order; do
        if [ "$server" = influx ]; then
          out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://$IHTTP" --server-pid "$INFLUX_PID") || true
        else
          # Exits non-zero when an answer differs; the report (mismatches counted) is still printed.
          out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://$FHTTP" --server-pid "$FLETCH_PID" --reference "http://$IHTTP") || true
        fi
        echo "{\"state\": \"$state\", \"server\": \"$server\", \"reports\": ${out:-[]}}" >>"$qlog"
      done
    done
  done
}

# The query types timed while a paced load writes the set's hosts' newer points
# on the same server (one server at a time; the load is stopped when the queries end). Answers
# are not compared: the servers hold different amounts of the load when each query runs.
run_mixed() { # qlog rate load-data query-data...
  local qlog=$1 rate=$2 load_data=$3
  shift 3
  local server url pid out types t share reports one
  types=$("$BIN/fletch-bench" types)
  share=$((${MIXED_SECONDS:-600} / $(echo "$types" | wc -w) + 1))
  for server in influx fletch; do
    if [ "$server" = influx ]; then url="http://$IHTTP" pid=$INFLUX_PID; else url="http://$FHTTP" pid=$FLETCH_PID; fi
    # shellcheck disable=SC2086
    "$BIN/fletch-bench" load $load_data --url "$url" --workers 4 --batch-size 5000 --rate "$rate" --json \
      >"$WORK/mixed-load-$server.json" 2>/dev/null &
    LOAD_PID=$!
    sleep 3
    # Bounded: each type gets its share of MIXED_SECONDS; a type a server does not finish in
    # its share is reported as unfinished, and the other types keep their figures.
    reports=""
    for t in $types; do
      one=$(timeout "$share" "$BIN/fletch-bench" query "$@" --types "$t" \
        --iterations "$(((ITERATIONS + 3) / 4))" --url "$url" --server-pid "$pid" --json) || true
      one=$(python3 -c 'import json, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    r = []
print(json.dumps(r or [{"type": sys.argv[2], "unfinished_s": int(sys.argv[3])}])[1:-1])' "$one" "$t" "$share")
      reports="${reports:+$reports, }$one"
    done
    out="[$reports]"
    # TERM ends the load; it reports what went through (bounded: stop() kills it after 60 s).
    kill "$LOAD_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.2; done
    stop "$LOAD_PID"
    LOAD_PID=""
    echo "{\"state\": \"mixed\", \"server\": \"$server\", \"reports\": ${out:-[]}}" >>"$qlog"
  done
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
TYPES="$("$BIN/fletch-bench" types)"
for set in $SETS; do
  scale="${set%%:*}" duration="${set##*:}"
  echo "== data set: $scale hosts x $duration" >&2
  data=(--scale "$scale" --duration "$duration" --start "$START" --seed 123)
  qlog="$WORK/queries-$scale.jsonl"
  : >"$qlog"

  # Compacted: loaded as a user loads, then left to persist and compact. Each load starts once
  # both servers are idle (bounded).
  idir="$WORK/influx-$scale" fdir="$WORK/fletch-$scale"
  mkdir -p "$idir" "$fdir"
  start_influx "$idir" settle
  start_fletch "$fdir" settle
  echo "-- load InfluxDB" >&2
  iload=$(load "http://$IHTTP" "$INFLUX_PID,$FLETCH_PID" "${data[@]}")
  echo "-- load Fletch" >&2
  fload=$(load "http://$FHTTP" "$INFLUX_PID,$FLETCH_PID" "${data[@]}")
  ipeak=$(kb "$INFLUX_PID" VmHWM) fpeak=$(kb "$FLETCH_PID" VmHWM)
  echo "-- waiting for both to persist and compact" >&2
  idisk=$(settled_bytes "$idir/data" "$idir/wal")
  fdisk=$(settled_bytes "$fdir/data" "$fdir/wal")
  irss=$(kb "$INFLUX_PID" VmRSS) frss=$(kb "$FLETCH_PID" VmRSS)
  ianon=$(kb "$INFLUX_PID" RssAnon) fanon=$(kb "$FLETCH_PID" RssAnon)
  echo "-- queries, compacted" >&2
  run_queries compacted "$qlog" "$TYPES" "${data[@]}"

  echo "-- queries while a load runs" >&2
  # The set's own hosts going on past its end, as collectors write while dashboards read: the
  # same series (same seed), newer points, enough of them for 10 minutes at the rate. The
  # query types' windows lie inside the set, so what they read does not grow with the load
  # (a first version wrote other hosts over the set's own times: by the end both servers held
  # tens of times the set, a different amount each, and the all-host types compared nothing).
  rate=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["points_per_sec"] / 2))' "$fload")
  # Its start (the set's end) and length: 10 s between a host's points, rate * 600 points.
  read -r mixed_start mixed_duration <<<"$(python3 -c 'import datetime, re, sys
start, duration, rate, hosts = sys.argv[1:]
n, unit = re.fullmatch(r"(\d+)([smhd])", duration).groups()
end = datetime.datetime.fromisoformat(start) + datetime.timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: int(n)})
print(end.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{(int(rate) * 600 // int(hosts) + 1) * 10}s")' "$START" "$duration" "$rate" "$scale")"
  run_mixed "$qlog" "$rate" "--scale $scale --duration $mixed_duration --start $mixed_start --seed 123" "${data[@]}"
  stop_servers

  # Buffer, then persisted: fresh servers that hold the set in their write buffers, restarted
  # to persist them.
  bidir="$WORK/influx-buffer-$scale" bfdir="$WORK/fletch-buffer-$scale"
  mkdir -p "$bidir" "$bfdir"
  start_influx "$bidir" buffer
  start_fletch "$bfdir" buffer
  echo "-- load both, buffered" >&2
  load "http://$IHTTP" "$INFLUX_PID,$FLETCH_PID" "${data[@]}" >/dev/null
  load "http://$FHTTP" "$INFLUX_PID,$FLETCH_PID" "${data[@]}" >/dev/null
  echo "-- queries, buffer" >&2
  run_queries buffer "$qlog" "$TYPES" "${data[@]}"
  stop_servers
  start_influx "$bidir" persist
  start_fletch "$bfdir" persist
  echo "-- waiting for both to persist" >&2
  settled_bytes "$bidir/data" "$bidir/wal" >/dev/null
  settled_bytes "$bfdir/data" "$bfdir/wal" >/dev/null
  echo "-- queries, persisted" >&2
  run_queries persisted "$qlog" "$TYPES" "${data[@]}"
  stop_servers

  python3 - "$scale" "$duration" "$iload" "$fload" "$ipeak" "$fpeak" "$idisk" "$fdisk" "$irss" "$frss" "$qlog" \
    "$WORK/mixed-load-influx.json" "$WORK/mixed-load-fletch.json" "$rate" "$ianon" "$fanon" >>"$RESULTS" <<'EOF'
import json, math, sys
a = sys.argv[1:]
by = {}
for line in open(a[10]):
    row = json.loads(line)
    for rep in row["reports"]:
        by.setdefault(row["state"], {}).setdefault(row["server"], {}).setdefault(rep["type"], []).append(rep)
def nearest(v, p):  # nearest rank, as fletch-bench reports it
    return v[min(max(math.ceil(p * len(v)), 1), len(v)) - 1] if v else 0.0
def merge(reps):
    unfinished = [r for r in reps if "unfinished_s" in r]
    if unfinished:  # the mixed run: a type not done in its share of the time
        return unfinished[0]
    lat = sorted(x for r in reps for x in r["latencies_ms"])
    cpu = [r for r in reps if r.get("server_cpu_ms") is not None]
    timed = sum(r["count"] for r in cpu)
    return {
        "type": reps[0]["type"], "count": len(lat), "rounds": len(reps),
        "median_ms": nearest(lat, 0.5), "p95_ms": nearest(lat, 0.95), "p99_ms": nearest(lat, 0.99),
        "errors": sum(r["errors"] for r in reps), "mismatches": sum(r["mismatches"] for r in reps),
        "server_cpu_ms": sum(float(r["server_cpu_ms"]) * r["count"] for r in cpu) / timed if timed else None,
        "quiet": all(r.get("quiet") is not False for r in reps),
    }
def loaded(path):
    try:
        return json.load(open(path))
    except Exception:
        return None
states = {s: {srv: [merge(reps) for reps in types.values()] for srv, types in servers.items()} for s, servers in by.items()}
print(json.dumps({
    "kind": "tsbs", "scale": int(a[0]), "duration": a[1],
    "influx_load": json.loads(a[2]), "fletch_load": json.loads(a[3]),
    "influx_peak_kb": int(a[4]), "fletch_peak_kb": int(a[5]),
    "influx_disk": int(a[6]), "fletch_disk": int(a[7]),
    "influx_rss_kb": int(a[8]), "fletch_rss_kb": int(a[9]),
    "states": states,
    "mixed_rate": int(a[13]), "mixed_load": {"influx": loaded(a[11]), "fletch": loaded(a[12])},
    "influx_anon_kb": int(a[14]), "fletch_anon_kb": int(a[15]),
}))
EOF
done

# High cardinality: every host a series, a few rows each; InfluxDB on both of its indexes.
for set in $CARD_SETS; do
  scale="${set%%:*}" duration="${set##*:}"
  echo "== high cardinality: $scale hosts x $duration" >&2
  data=(--scale "$scale" --duration "$duration" --start "$START" --seed 123)
  idir="$WORK/influx-card" tdir="$WORK/influx-tsi-card" fdir="$WORK/fletch-card"
  mkdir -p "$idir" "$tdir" "$fdir"
  start_influx "$idir" settle
  start_influx "$tdir" settle tsi1 "$THTTP" "$TRPC"
  start_fletch "$fdir" settle
  all="$INFLUX_PID,$TSI_PID,$FLETCH_PID"
  echo "-- load InfluxDB (inmem), InfluxDB (tsi1), Fletch" >&2
  iload=$(load "http://$IHTTP" "$all" "${data[@]}")
  tload=$(load "http://$THTTP" "$all" "${data[@]}")
  fload=$(load "http://$FHTTP" "$all" "${data[@]}")
  ipeak=$(kb "$INFLUX_PID" VmHWM) tpeak=$(kb "$TSI_PID" VmHWM) fpeak=$(kb "$FLETCH_PID" VmHWM)
  echo "-- waiting for all three to persist and compact" >&2
  idisk=$(settled_bytes "$idir/data" "$idir/wal")
  tdisk=$(settled_bytes "$tdir/data" "$tdir/wal")
  fdisk=$(settled_bytes "$fdir/data" "$fdir/wal")
  irss=$(kb "$INFLUX_PID" VmRSS) trss=$(kb "$TSI_PID" VmRSS) frss=$(kb "$FLETCH_PID" VmRSS)
  qlog="$WORK/queries-card.jsonl"
  : >"$qlog"
  for t in series-cardinality tag-values-1 single-host-1 single-groupby-1-1-1 high-cpu-1; do
    common=("${data[@]}" --types "$t" --iterations "$ITERATIONS" --quiet-pid "$all" --json)
    out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://$IHTTP" --server-pid "$INFLUX_PID") || true
    echo "{\"server\": \"influx\", \"reports\": ${out:-[]}}" >>"$qlog"
    out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://$THTTP" --server-pid "$TSI_PID") || true
    echo "{\"server\": \"tsi1\", \"reports\": ${out:-[]}}" >>"$qlog"
    # Compared with the inmem index, whose cardinality is exact (tsi1's is an estimate).
    out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://$FHTTP" --server-pid "$FLETCH_PID" --reference "http://$IHTTP") || true
    echo "{\"server\": \"fletch\", \"reports\": ${out:-[]}}" >>"$qlog"
  done
  stop_servers
  python3 - "$scale" "$duration" "$iload" "$tload" "$fload" "$ipeak" "$tpeak" "$fpeak" "$idisk" "$tdisk" "$fdisk" \
    "$irss" "$trss" "$frss" "$qlog" >>"$RESULTS" <<'EOF'
import json, sys
a = sys.argv[1:]
queries = {}
for line in open(a[14]):
    row = json.loads(line)
    for rep in row["reports"]:
        queries.setdefault(row["server"], {})[rep["type"]] = rep
servers = {}
for i, s in enumerate(["influx", "tsi1", "fletch"]):
    servers[s] = {"load": json.loads(a[2 + i]), "peak_kb": int(a[5 + i]), "disk": int(a[8 + i]), "rss_kb": int(a[11 + i])}
print(json.dumps({"kind": "cardinality", "scale": int(a[0]), "duration": a[1], "servers": servers, "queries": queries}))
EOF
done

python3 bench/report.py "$RESULTS" "$OUT_MD" "$OUT_SVG" "$(influxd version 2>/dev/null | head -1)"
