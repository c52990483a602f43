#!/usr/bin/env bash
# Ingest while anti-entropy runs, against the same ingest with anti-entropy off.
#
#   bench/entropy.sh            cold set 400 hosts x 12h, then 100 hosts x 48h measured
#   bench/entropy.sh --quick    cold set 20 hosts x 1h, then 10 hosts x 1h
#
# Each run starts three fletchd on loopback (meta and data nodes, replication factor 2) with
# `[anti-entropy] check-interval = "1s"`, enabled or not, and loads a "cold" data set into one
# database (2016-01-01) and then the measured set into another (2016-02-01, other shard
# groups). The cold set stays in the write buffer (it is not persisted within the run), so
# every anti-entropy pass reads it whole on both owners again (buffered rows are never served
# from the digest cache): the checker is as busy as it can be during the measured load. The
# measured load starts once a first check has finished (anti-entropy on) or once the servers
# are idle (off). Settings alternate, RUNS (default 2) each; the median of each is reported,
# with when the check under way during each measured load finished (after the load: the
# checker was reading throughout). Target: the runs with anti-entropy at most 10% below those
# without. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
RUNS="${RUNS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fletch-target}"
cargo build --release --bin fletchd --bin fletch-bench >&2
BIN="$CARGO_TARGET_DIR/release"

WORK="$(mktemp -d /var/tmp/fletch-entropy-bench.XXXXXX)"
PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}
trap stop_all EXIT

if [ "$QUICK" = 1 ]; then
  cold=(--scale 20 --duration 1h --start 2016-01-01T00:00:00Z --seed 7)
  measured=(--scale 10 --duration 1h --start 2016-02-01T00:00:00Z --seed 123)
else
  cold=(--scale 400 --duration 12h --start 2016-01-01T00:00:00Z --seed 7)
  measured=(--scale 100 --duration 48h --start 2016-02-01T00:00:00Z --seed 123)
fi

wait_ping() { # url
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$1/ping" && return 0
    sleep 0.2
  done
  echo "no answer from $1" >&2
  return 1
}

# start DIR HTTP_PORT META_HTTP_PORT TCP_PORT ENABLED [JOIN]
start() {
  local dir="$1"
  mkdir -p "$dir"
  local join=()
  [ -n "${6:-}" ] && join=(-join "$6")
  RUST_LOG=warn FLETCH_ANTI_ENTROPY_ENABLED="$5" FLETCH_ANTI_ENTROPY_CHECK_INTERVAL=1s \
    "$BIN/fletchd" --dir "$dir" --http-bind-address "127.0.0.1:$2" \
    --meta-http-bind-address "127.0.0.1:$3" --meta-bind-address "127.0.0.1:$4" "${join[@]}" \
    >"$dir/log" 2>&1 &
  PIDS+=($!)
  wait_ping "http://127.0.0.1:$2"
}

# The newest anti-entropy check any node has finished (ns; 0 if none).
last_check() {
  for port in 38191 38291 38391; do
    curl -s "http://127.0.0.1:$port/status" || echo '{}'
    echo
  done | python3 -c '
import json, sys
best = 0
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    checks = json.loads(line).get("anti_entropy") or []
    for c in (checks.values() if isinstance(checks, dict) else checks):
        best = max(best, c.get("checked_at", 0))
print(best)'
}

run() { # ENABLED RUN_NUMBER
  local base="$WORK/$1-$2"
  start "$base/n1" 38186 38191 38188 "$1"
  start "$base/n2" 38286 38291 38288 "$1" 127.0.0.1:38191
  start "$base/n3" 38386 38391 38388 "$1" 127.0.0.1:38191
  local urls="http://127.0.0.1:38186,http://127.0.0.1:38286,http://127.0.0.1:38386"
  for _ in $(seq 1 100); do
    n=$(curl -s "http://127.0.0.1:38186/query" --data-urlencode "q=SHOW SERVERS" | python3 -c '
import json, sys
series = json.load(sys.stdin)["results"][0].get("series", [])
print(sum(len(s.get("values", [])) for s in series if s["name"] == "data_nodes"))')
    [ "$n" -ge 3 ] && break
    sleep 0.2
  done
  local pids
  pids=$(IFS=,; echo "${PIDS[*]}")
  "$BIN/fletch-bench" load "${cold[@]}" --url "$urls" --db cold --replication 2 --workers 4 \
    --batch-size 5000 --json >/dev/null
  local quiet=(--quiet-pid "$pids")
  if [ "$1" = true ]; then
    # A first check of the cold shard done: the checker is at work from now on.
    for _ in $(seq 1 600); do
      [ "$(last_check)" -gt 0 ] && break
      sleep 0.2
    done
    [ "$(last_check)" -gt 0 ] || { echo "anti-entropy never checked" >&2; return 1; }
    quiet=()
  fi
  local before rate took started next=""
  before=$(last_check)
  started=$(date +%s%N)
  "$BIN/fletch-bench" load "${measured[@]}" --url "$urls" --db hot --replication 2 --workers 4 \
    --batch-size 5000 "${quiet[@]}" --json >"$base/report.json"
  rate=$(sed -n 's/.*"points_per_sec":\([0-9.]*\).*/\1/p' "$base/report.json")
  took=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$base/report.json")
  if [ "$1" = true ]; then
    # When the check under way during the load finished (bounded wait): after the load's
    # end, the checker was at work throughout.
    for _ in $(seq 1 600); do
      after=$(last_check)
      if [ "$after" != "$before" ]; then
        next=$(( (after - started) / 1000000 ))
        break
      fi
      sleep 0.2
    done
  fi
  echo "$1 $rate ${next:-none} $took"
  stop_all
}

results=()
for r in $(seq 1 "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then order="false true"; else order="true false"; fi
  for setting in $order; do
    line=$(run "$setting" "$r")
    echo "run $r: anti-entropy=$line" >&2
    results+=("$line")
  done
done

printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
off = [float(r[1]) for r in rows if r[0] == "false"]
on = [float(r[1]) for r in rows if r[0] == "true"]
ends = ["%s (load %.0f)" % (r[2], float(r[3]) * 1000) for r in rows if r[0] == "true"]
fmt = lambda xs: ", ".join("%.0f" % x for x in xs)
print("| anti-entropy | points/s (median) | runs | next check finished (ms after the load began) |")
print("|---|---|---|---|")
print("| off | %.0f | %s | |" % (statistics.median(off), fmt(off)))
print("| on, check-interval 1s | %.0f | %s | %s |" % (statistics.median(on), fmt(on), ", ".join(ends)))
print("\nratio: %.2fx (target: at least 0.90x)" % (statistics.median(on) / statistics.median(off)))
'
