#!/usr/bin/env bash
# Ingest of a replicated cluster against a single node, on one machine, with fletch-bench.
#
#   bench/cluster.sh            100 hosts x 12h (432k points of 10 fields), twice each
#   bench/cluster.sh --quick    10 hosts x 1h
#
# Then the TSBS query types against each: the single node, and the cluster through n1 (a data
# node owning some of the shards; the others are read from their owners, aggregates as partial
# aggregates there). ITERATIONS (default 40) queries per type, in alternating rounds of 10 once
# both setups are idle; the cluster's answers are compared with the single node's. Targets:
# heavy types at most 1.5x the single node's median, light ones at most 2x plus 1 ms.
#
# Loads the same data set into one fletchd, then into three fletchd on loopback that form a
# cluster (each a meta and a data node) with a database of replication factor 2, through all
# three nodes (the connections spread over them, so two of three batches reach a node that
# owns only some of their shards and forwards the rest). Same connections (4) and batches
# (5000 lines) for both. The cluster writes every point twice, on the same cores, so its
# ingest is at best about half of one node's; the target is at least 0.45x. Each load runs
# once the servers are idle, twice per setup; the best of each is reported. Every wait is
# bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
ITERATIONS="${ITERATIONS:-40}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fletch-target}"
cargo build --release --bin fletchd --bin fletch-bench >&2
BIN="$CARGO_TARGET_DIR/release"

WORK="$(mktemp -d /var/tmp/fletch-cluster-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_ping() { # url
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$1/ping" && return 0
    sleep 0.2
  done
  echo "no answer from $1" >&2
  return 1
}

# start NAME HTTP_PORT META_HTTP_PORT TCP_PORT [JOIN]
start() {
  local dir="$WORK/$1"
  mkdir -p "$dir"
  local join=()
  [ -n "${5:-}" ] && join=(-join "$5")
  RUST_LOG=warn "$BIN/fletchd" --dir "$dir" --http-bind-address "127.0.0.1:$2" \
    --meta-http-bind-address "127.0.0.1:$3" --meta-bind-address "127.0.0.1:$4" "${join[@]}" \
    >"$dir/log" 2>&1 &
  PIDS+=($!)
  wait_ping "http://127.0.0.1:$2"
}

if [ "$QUICK" = 1 ]; then
  data=(--scale 10 --duration 1h --start 2016-01-01T00:00:00Z --seed 123)
else
  data=(--scale 100 --duration 12h --start 2016-01-01T00:00:00Z --seed 123)
fi
load() { # db urls [replication]
  local extra=()
  [ -n "${3:-}" ] && extra=(--replication "$3")
  local pids
  pids=$(IFS=,; echo "${PIDS[*]}")
  "$BIN/fletch-bench" load "${data[@]}" --url "$2" --db "$1" "${extra[@]}" --workers 4 \
    --batch-size 5000 --quiet-pid "$pids" --json | sed -n 's/.*"points_per_sec":\([0-9.]*\).*/\1/p'
}
best() { printf '%s\n' "$@" | sort -g | tail -n 1; }

echo "-- one node" >&2
start single 38086 38091 38088
s1=$(load one "http://127.0.0.1:38086")
s2=$(load two "http://127.0.0.1:38086")
SINGLE_PID="${PIDS[0]}"
PIDS=()

echo "-- three nodes, replication factor 2" >&2
start n1 38186 38191 38188
start n2 38286 38291 38288 127.0.0.1:38191
start n3 38386 38391 38388 127.0.0.1:38191
urls="http://127.0.0.1:38186,http://127.0.0.1:38286,http://127.0.0.1:38386"
data_nodes() {
  curl -s "http://127.0.0.1:38186/query" --data-urlencode "q=SHOW SERVERS" | python3 -c '
import json, sys
series = json.load(sys.stdin)["results"][0].get("series", [])
print(sum(len(s.get("values", [])) for s in series if s["name"] == "data_nodes"))'
}
for _ in $(seq 1 100); do
  [ "$(data_nodes)" -ge 3 ] && break
  sleep 0.2
done
c1=$(load one "$urls" 2)
c2=$(load two "$urls" 2)

PIDS+=("$SINGLE_PID")

echo "-- queries: one node, and the cluster through n1" >&2
qlog="$WORK/queries.jsonl"
: >"$qlog"
quiet=$(IFS=,; echo "${PIDS[*]}")
rounds=$(( (ITERATIONS + 9) / 10 ))
for t in $("$BIN/fletch-bench" types); do
  for r in $(seq 0 $((rounds - 1))); do
    common=("${data[@]}" --db one --types "$t" --iterations 10 --skip $((r * 10)) --quiet-pid "$quiet" --json)
    if [ $((r % 2)) = 0 ]; then order="single cluster"; else order="cluster single"; fi
    for setup in $order; do
      if [ "$setup" = single ]; then
        out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://127.0.0.1:38086" --server-pid "$SINGLE_PID") || true
      else
        out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://127.0.0.1:38186" --reference "http://127.0.0.1:38086") || true
      fi
      echo "{\"setup\": \"$setup\", \"reports\": ${out:-[]}}" >>"$qlog"
    done
  done
done

single=$(best "$s1" "$s2") cluster=$(best "$c1" "$c2")
ratio=$(awk -v c="$cluster" -v s="$single" 'BEGIN { printf "%.2f", c / s }')
echo "| setup | points/s (best of 2) | runs |"
echo "|---|---|---|"
printf '| one node | %.0f | %.0f, %.0f |\n' "$single" "$s1" "$s2"
printf '| 3 nodes, RF 2, through all three | %.0f | %.0f, %.0f |\n' "$cluster" "$c1" "$c2"
echo "ratio: ${ratio}x (target: at least 0.45x)"
echo
python3 - "$qlog" <<'EOF'
import json, statistics, sys
lat = {"single": {}, "cluster": {}}
bad = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    for rep in row["reports"]:
        lat[row["setup"]].setdefault(rep["type"], []).extend(rep.get("latencies_ms", []))
        if row["setup"] == "cluster":
            bad[rep["type"]] = bad.get(rep["type"], 0) + rep.get("mismatches", 0) + rep.get("errors", 0)
HEAVY = ("high-cpu-all", "double-groupby", "groupby-orderby-limit", "lastpoint")
print("| query | one node median ms | cluster median ms | cluster / one node | target | answers |")
print("|---|---|---|---|---|---|")
for t in lat["single"]:
    s, c = lat["single"][t], lat["cluster"].get(t, [])
    if not s or not c:
        print(f"| {t} | | | | | no result |")
        continue
    ms, mc = statistics.median(s), statistics.median(c)
    heavy = t.startswith(HEAVY)
    ok = mc <= 1.5 * ms if heavy else mc <= 2 * ms + 1.0
    target = "<= 1.5x" if heavy else "<= 2x + 1 ms"
    answers = "equal" if bad.get(t, 0) == 0 else f"{bad[t]} differ"
    print(f"| {t} | {ms:.2f} | {mc:.2f} | {mc / ms:.2f}x | {target}: {'met' if ok else 'not met'} | {answers} |")
EOF
