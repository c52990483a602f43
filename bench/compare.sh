#!/usr/bin/env bash
# Fletch and InfluxDB 1.6.7 side by side, in one run on one machine, with fletch-bench.
#
#   bench/compare.sh            the data sets of the benchmark issue (100 hosts x 12h, 4000 x 1h)
#   bench/compare.sh --quick    a small smoke size (10 hosts x 1h)
#
# Installs influxdb from Debian if missing, starts both servers on loopback ports, loads the same
# data into each (4 connections, batches of 5000 lines), waits until both have persisted and
# compacted, measures peak and current resident memory and bytes on disk, runs every TSBS query
# type against each (Fletch's answers compared with InfluxDB's), and writes docs/benchmarks.md
# with the tables and docs/benchmarks.svg. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
ITERATIONS="${ITERATIONS:-20}"
ROUNDS="${ROUNDS:-4}"
OUT_MD="${OUT_MD:-docs/benchmarks.md}"
OUT_SVG="${OUT_SVG:-docs/benchmarks.svg}"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fletch-target}"
cargo build --release --bin fletchd --bin fletch-bench >&2
BIN="$CARGO_TARGET_DIR/release"

if ! command -v influxd >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null
fi

WORK="$(mktemp -d /var/tmp/fletch-compare.XXXXXX)"
INFLUX_PID="" FLETCH_PID=""
cleanup() {
  [ -n "$INFLUX_PID" ] && kill "$INFLUX_PID" 2>/dev/null || true
  [ -n "$FLETCH_PID" ] && kill "$FLETCH_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

IHTTP=127.0.0.1:18186 IRPC=127.0.0.1:18188 FHTTP=127.0.0.1:28186 FMETA=127.0.0.1:28191

wait_ping() { # url
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$1/ping" && return 0
    sleep 0.2
  done
  echo "no answer from $1" >&2
  return 1
}

start_influx() { # dir
  cat >"$1/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "$IRPC"
[meta]
  dir = "$1/meta"
[data]
  dir = "$1/data"
  wal-dir = "$1/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "2s"
  compact-full-write-cold-duration = "2s"
[coordinator]
  max-select-buckets = 100000
[monitor]
  store-enabled = false
[http]
  bind-address = "$IHTTP"
  log-enabled = false
[logging]
  level = "warn"
EOF
  influxd -config "$1/influxdb.conf" >"$1/log" 2>&1 &
  INFLUX_PID=$!
  wait_ping "http://$IHTTP"
}

start_fletch() { # dir
  FLETCH_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION=2s FLETCH_DATA_COMPACT_FULL_WRITE_COLD_DURATION=2s \
    RUST_LOG=warn "$BIN/fletchd" --dir "$1" --http-bind-address "$FHTTP" --meta-http-bind-address "$FMETA" \
    --meta-bind-address 127.0.0.1:28188 >"$1/log" 2>&1 &
  FLETCH_PID=$!
  wait_ping "http://$FHTTP"
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

if [ "$QUICK" = 1 ]; then
  SETS="10:1h"
else
  SETS="100:12h 4000:1h"
fi

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
for set in $SETS; do
  scale="${set%%:*}" duration="${set##*:}"
  echo "== data set: $scale hosts x $duration" >&2
  data=(--scale "$scale" --duration "$duration" --start 2016-01-01T00:00:00Z --seed 123)
  idir="$WORK/influx-$scale" fdir="$WORK/fletch-$scale"
  mkdir -p "$idir" "$fdir"
  start_influx "$idir"
  start_fletch "$fdir"

  # Each load starts once both servers are idle (bounded): Fletch's must not share the machine
  # with InfluxDB compacting what it was just loaded with, nor InfluxDB's with Fletch starting.
  echo "-- load InfluxDB" >&2
  iload=$("$BIN/fletch-bench" load "${data[@]}" --url "http://$IHTTP" --workers 4 --batch-size 5000 --quiet-pid "$INFLUX_PID,$FLETCH_PID" --json)
  echo "-- load Fletch" >&2
  fload=$("$BIN/fletch-bench" load "${data[@]}" --url "http://$FHTTP" --workers 4 --batch-size 5000 --quiet-pid "$INFLUX_PID,$FLETCH_PID" --json)
  ipeak=$(kb "$INFLUX_PID" VmHWM) fpeak=$(kb "$FLETCH_PID" VmHWM)

  echo "-- waiting for both to persist and compact" >&2
  idisk=$(settled_bytes "$idir/data" "$idir/wal")
  fdisk=$(settled_bytes "$fdir/data" "$fdir/wal")
  irss=$(kb "$INFLUX_PID" VmRSS) frss=$(kb "$FLETCH_PID" VmRSS)

  echo "-- queries" >&2
  # Per type, ROUNDS alternating rounds (InfluxDB first in even rounds, Fletch first in odd
  # ones) of ITERATIONS / ROUNDS queries each, together the type's first ITERATIONS seeded
  # queries: latencies on this machine drift by tens of percent within minutes, and
  # alternating keeps that drift out of the ratio. Every round starts once both servers are
  # idle; Fletch's answers are compared with InfluxDB's after its timed queries.
  qlog="$WORK/queries-$scale.jsonl"
  : >"$qlog"
  per=$(((ITERATIONS + ROUNDS - 1) / ROUNDS))
  for t in $("$BIN/fletch-bench" types); do
    for r in $(seq 0 $((ROUNDS - 1))); do
      common=("${data[@]}" --types "$t" --iterations "$per" --skip $((r * per)) --quiet-pid "$INFLUX_PID,$FLETCH_PID" --json)
      if [ $((r % 2)) = 0 ]; then order="influx fletch"; else order="fletch influx"; fi
      for server in $order; do
        if [ "$server" = influx ]; then
          out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://$IHTTP" --server-pid "$INFLUX_PID") || true
        else
          # Exits non-zero when an answer differs; the report (mismatches counted) is still printed.
          out=$("$BIN/fletch-bench" query "${common[@]}" --url "http://$FHTTP" --server-pid "$FLETCH_PID" --reference "http://$IHTTP") || true
        fi
        echo "{\"server\": \"$server\", \"reports\": ${out:-[]}}" >>"$qlog"
      done
    done
  done
  merged=$(python3 - "$qlog" <<'EOF'
import json, math, sys
by = {"influx": {}, "fletch": {}}
for line in open(sys.argv[1]):
    row = json.loads(line)
    for rep in row["reports"]:
        by[row["server"]].setdefault(rep["type"], []).append(rep)
def nearest(v, p):  # nearest rank, as fletch-bench reports it
    return v[min(max(math.ceil(p * len(v)), 1), len(v)) - 1] if v else 0.0
def merge(reps):
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
print(json.dumps({s: [merge(reps) for reps in types.values()] for s, types in by.items()}))
EOF
)
  iq=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["influx"]))' "$merged")
  fq=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["fletch"]))' "$merged")

  python3 - "$scale" "$duration" "$iload" "$fload" "$ipeak" "$fpeak" "$idisk" "$fdisk" "$irss" "$frss" "$iq" "$fq" >>"$RESULTS" <<'EOF'
import json, sys
a = sys.argv[1:]
print(json.dumps({
    "scale": int(a[0]), "duration": a[1],
    "influx_load": json.loads(a[2]), "fletch_load": json.loads(a[3]),
    "influx_peak_kb": int(a[4]), "fletch_peak_kb": int(a[5]),
    "influx_disk": int(a[6]), "fletch_disk": int(a[7]),
    "influx_rss_kb": int(a[8]), "fletch_rss_kb": int(a[9]),
    "influx_queries": json.loads(a[10]), "fletch_queries": json.loads(a[11]),
}))
EOF
  cleanup
  INFLUX_PID="" FLETCH_PID=""
done

python3 - "$RESULTS" "$OUT_MD" "$OUT_SVG" "$(influxd version 2>/dev/null | head -1)" <<'EOF'
import json, os, platform, subprocess, sys
results = [json.loads(l) for l in open(sys.argv[1])]
md_path, svg_path, influx_version = sys.argv[2], sys.argv[3], sys.argv[4]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
mem_gb = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) / 1024 / 1024
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
L = []
L.append("# Benchmarks: Fletch and InfluxDB 1.6.7\n")
L.append("Measured by `bench/compare.sh` in one run on one machine; regenerate with the same command.\n")
L.append(f"Machine: {os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB memory. Fletch {commit} (release build), {influx_version}.\n")
L.append("Client: `fletch-bench` (TSBS devops cpu-only: 10 tags, 10 fields, a row per host every 10 s), 4 connections, batches of 5000 lines. Each load, and each round of queries, starts once both servers are idle. Per query type, the same seeded queries against each server in alternating rounds; medians and p95 over all of them; server CPU per query is the serving process's CPU time (all threads) over the type's iterations; Fletch's answers are compared with InfluxDB's.\n")
L.append("![query medians](benchmarks.svg)\n")
for r in results:
    il, fl = r["influx_load"], r["fletch_load"]
    rows = il["points"]
    L.append(f"## {r['scale']} hosts x {r['duration']} ({rows} rows, {rows * 10} field values)\n")
    L.append("| | InfluxDB 1.6.7 | Fletch | Fletch / InfluxDB |")
    L.append("|---|---|---|---|")
    ratio = lambda f, i: f"{f / i:.2f}x" if i else "-"
    L.append(f"| ingest, field values/s | {il['fields_per_sec']:.0f} | {fl['fields_per_sec']:.0f} | {ratio(fl['fields_per_sec'], il['fields_per_sec'])} |")
    L.append(f"| ingest, points/s | {il['points_per_sec']:.0f} | {fl['points_per_sec']:.0f} | {ratio(fl['points_per_sec'], il['points_per_sec'])} |")
    L.append(f"| batch latency median / p99, ms | {il['latency_ms']['median']} / {il['latency_ms']['p99']} | {fl['latency_ms']['median']} / {fl['latency_ms']['p99']} | |")
    L.append(f"| peak resident memory during load, MiB | {r['influx_peak_kb'] / 1024:.0f} | {r['fletch_peak_kb'] / 1024:.0f} | {ratio(r['fletch_peak_kb'], r['influx_peak_kb'])} |")
    L.append(f"| resident memory after persistence, MiB | {r['influx_rss_kb'] / 1024:.0f} | {r['fletch_rss_kb'] / 1024:.0f} | {ratio(r['fletch_rss_kb'], r['influx_rss_kb'])} |")
    L.append(f"| on disk after persistence, bytes | {r['influx_disk']} | {r['fletch_disk']} | {ratio(r['fletch_disk'], r['influx_disk'])} |")
    L.append(f"| bytes per field value | {r['influx_disk'] / (rows * 10):.2f} | {r['fletch_disk'] / (rows * 10):.2f} | |")
    L.append("")
    L.append("| query | InfluxDB median ms | Fletch median ms | Fletch p95 ms | Fletch / InfluxDB | server CPU ms/query, InfluxDB / Fletch | answers |")
    L.append("|---|---|---|---|---|---|---|")
    iq = {q["type"]: q for q in r["influx_queries"]}
    cpu = lambda q: f"{float(q['server_cpu_ms']):.2f}" if q.get("server_cpu_ms") is not None else "-"
    for q in r["fletch_queries"]:
        i = iq.get(q["type"], {})
        im, fm = float(i.get("median_ms", 0) or 0), float(q["median_ms"])
        same = "equal" if q["mismatches"] == 0 and q["errors"] == 0 else f"{q['mismatches']} differ, {q['errors']} errors"
        if q.get("quiet") is False or i.get("quiet") is False:
            same += " (timed while a server was still busy)"
        L.append(f"| {q['type']} | {im:.3f} | {fm:.3f} | {float(q['p95_ms']):.3f} | {ratio(fm, im)} | {cpu(i)} / {cpu(q)} | {same} |")
    L.append("")
notes = "docs/benchmarks-notes.md"
if os.path.exists(notes):
    L.append(open(notes).read())
open(md_path, "w").write("\n".join(L) + "\n")

# SVG: grouped bars of query medians (log scale) for the first data set.
r = results[0]
iq = {q["type"]: float(q["median_ms"]) for q in r["influx_queries"]}
fq = [(q["type"], float(q["median_ms"])) for q in r["fletch_queries"]]
import math
W, H, left, top, bottom = 980, 360, 60, 50, 60
n = len(fq)
bw = (W - left - 20) / max(n, 1)
lo, hi = -1, max(1, math.ceil(math.log10(max([v for _, v in fq] + list(iq.values()) + [1]))))
y = lambda v: top + (H - top - bottom) * (1 - (math.log10(max(v, 10 ** lo)) - lo) / (hi - lo))
s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">']
s.append(f'<text x="{left}" y="24" font-size="14">Query median latency, ms (log scale): {r["scale"]} hosts x {r["duration"]}</text>')
for e in range(lo, hi + 1):
    yy = y(10 ** e)
    s.append(f'<line x1="{left}" x2="{W-20}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/><text x="{left-8}" y="{yy+4:.1f}" text-anchor="end">{10**e:g}</text>')
for k, (t, fv) in enumerate(fq):
    x0 = left + k * bw + bw * 0.15
    for j, (v, color) in enumerate([(iq.get(t, 0), "#8c8c8c"), (fv, "#2b6cb0")]):
        yy = y(v)
        s.append(f'<rect x="{x0 + j * bw * 0.35:.1f}" y="{yy:.1f}" width="{bw*0.33:.1f}" height="{H-bottom-yy:.1f}" fill="{color}"/>')
    s.append(f'<text text-anchor="middle" font-size="10" x="{x0 + bw*0.34:.1f}" y="{H-bottom+16+14*(k%2)}">{t}</text>')
s.append(f'<rect x="{W-220}" y="30" width="12" height="12" fill="#8c8c8c"/><text x="{W-204}" y="40">InfluxDB 1.6.7</text>')
s.append(f'<rect x="{W-120}" y="30" width="12" height="12" fill="#2b6cb0"/><text x="{W-104}" y="40">Fletch</text>')
s.append("</svg>")
open(svg_path, "w").write("\n".join(s) + "\n")
print(f"wrote {md_path} and {svg_path}", file=sys.stderr)
EOF
