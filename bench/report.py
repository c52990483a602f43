#!/usr/bin/env python3
"""docs/benchmarks.md and docs/benchmarks.svg from bench/compare.sh's results (JSON lines).

    bench/report.py RESULTS.jsonl OUT.md OUT.svg "InfluxDB version"
"""
import json
import math
import os
import platform
import subprocess
import sys

results = [json.loads(line) for line in open(sys.argv[1])]
md_path, svg_path, influx_version = sys.argv[2], sys.argv[3], sys.argv[4]

# TSBS's heavy query types (the rest are light); the targets of the fresh-data issue.
HEAVY = ("double-groupby", "high-cpu-all", "lastpoint", "groupby-orderby-limit")
TARGET = {"light": 1.0, "heavy": 0.5}
STATES = [
    ("buffer", "in the write buffer only"),
    ("persisted", "right after a persist: a new process, new files, not compacted"),
    ("compacted", "persisted and compacted"),
]


def weight(t):
    return "heavy" if t.startswith(HEAVY) else "light"


def ratio(f, i):
    return f"{f / i:.2f}x" if i else "-"


cpu_model = next(
    (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
    platform.processor(),
)
mem_gb = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))) / 1024 / 1024
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

L = []
L.append("# Benchmarks: Fletch and InfluxDB 1.6.7\n")
L.append("Measured by `bench/compare.sh` in one run on one machine; regenerate with the same command.\n")
L.append(f"Machine: {os.cpu_count()} cores ({cpu_model}), {mem_gb:.0f} GiB memory. Fletch {commit} (release build), {influx_version}.\n")
L.append(
    "Client: `fletch-bench` (TSBS devops cpu-only: 10 tags, 10 fields, a row per host every 10 s), "
    "4 connections, batches of 5000 lines; the query texts are TSBS's own (its InfluxDB query "
    "generator's), plus two earlier forms kept for comparison (`lastpoint-last`, "
    "`groupby-orderby-limit-desc`). Each load, and each round of queries, starts once both servers "
    "are idle. Per query type, the same seeded queries against each server in alternating rounds; "
    "medians and p95 over all of them; server CPU per query is the serving process's CPU time (all "
    "threads) over the type's iterations; Fletch's answers are compared with InfluxDB's.\n"
)
L.append(
    "States of the data: **compacted** (loaded with the buffers persisting as usual, then "
    "persisted and compacted: the load, memory and disk figures come from this one), **buffer** "
    "(fresh servers whose write buffers hold the whole set), **persisted** (those servers "
    "restarted to persist their buffers, not yet compacted: the first queries of a new process on "
    "new files). Targets: light types at most 1.0x InfluxDB's median, heavy types (double-groupby, "
    "high-cpu-all, lastpoint, groupby-orderby-limit) at most 0.5x, in every state.\n"
)
L.append("![query medians](benchmarks.svg)\n")

missed = []
for r in results:
    if r.get("kind") != "tsbs":
        continue
    il, fl = r["influx_load"], r["fletch_load"]
    rows = il["points"]
    name = f"{r['scale']} hosts x {r['duration']}"
    L.append(f"## {name} ({rows} rows, {rows * 10} field values)\n")
    L.append("| | InfluxDB 1.6.7 | Fletch | Fletch / InfluxDB |")
    L.append("|---|---|---|---|")
    L.append(f"| ingest, field values/s | {il['fields_per_sec']:.0f} | {fl['fields_per_sec']:.0f} | {ratio(fl['fields_per_sec'], il['fields_per_sec'])} |")
    L.append(f"| ingest, points/s | {il['points_per_sec']:.0f} | {fl['points_per_sec']:.0f} | {ratio(fl['points_per_sec'], il['points_per_sec'])} |")
    L.append(f"| batch latency median / p99, ms | {il['latency_ms']['median']} / {il['latency_ms']['p99']} | {fl['latency_ms']['median']} / {fl['latency_ms']['p99']} | |")
    L.append(f"| peak resident memory during load, MiB | {r['influx_peak_kb'] / 1024:.0f} | {r['fletch_peak_kb'] / 1024:.0f} | {ratio(r['fletch_peak_kb'], r['influx_peak_kb'])} |")
    L.append(f"| resident memory after persistence, MiB | {r['influx_rss_kb'] / 1024:.0f} | {r['fletch_rss_kb'] / 1024:.0f} | {ratio(r['fletch_rss_kb'], r['influx_rss_kb'])} |")
    if "fletch_anon_kb" in r:
        L.append(f"| of which anonymous (heap), MiB; the rest is file-backed (the executable's code, mapped files) | {r['influx_anon_kb'] / 1024:.0f} | {r['fletch_anon_kb'] / 1024:.0f} | {ratio(r['fletch_anon_kb'], r['influx_anon_kb'])} |")
    L.append(f"| on disk after persistence, bytes | {r['influx_disk']} | {r['fletch_disk']} | {ratio(r['fletch_disk'], r['influx_disk'])} |")
    L.append(f"| bytes per field value | {r['influx_disk'] / (rows * 10):.2f} | {r['fletch_disk'] / (rows * 10):.2f} | |")
    L.append("")
    if fl["fields_per_sec"] < 3 * il["fields_per_sec"]:
        missed.append(f"{name}: ingest {ratio(fl['fields_per_sec'], il['fields_per_sec'])} (target at least 3x)")
    if r["fletch_disk"] > 0.3 * r["influx_disk"]:
        missed.append(f"{name}: disk {ratio(r['fletch_disk'], r['influx_disk'])} (target at most 0.3x)")
    if r["fletch_rss_kb"] > r["influx_rss_kb"]:
        missed.append(f"{name}: memory at rest {ratio(r['fletch_rss_kb'], r['influx_rss_kb'])} (target at most 1x)")
    for state, what in STATES:
        servers = r["states"].get(state, {})
        iq = {q["type"]: q for q in servers.get("influx", [])}
        L.append(f"### {name}: {state} ({what})\n")
        L.append("| query | InfluxDB median ms | Fletch median ms | Fletch p95 ms | Fletch / InfluxDB | target | server CPU ms/query, InfluxDB / Fletch | answers |")
        L.append("|---|---|---|---|---|---|---|---|")
        cpu = lambda q: f"{float(q['server_cpu_ms']):.2f}" if q.get("server_cpu_ms") is not None else "-"
        for q in servers.get("fletch", []):
            i = iq.get(q["type"], {})
            im, fm = float(i.get("median_ms", 0) or 0), float(q["median_ms"])
            same = "equal" if q["mismatches"] == 0 and q["errors"] == 0 else f"{q['mismatches']} differ, {q['errors']} errors"
            if q.get("quiet") is False or i.get("quiet") is False:
                same += " (timed while a server was still busy)"
            target = TARGET[weight(q["type"])]
            tsbs = q["type"] not in ("lastpoint-last", "groupby-orderby-limit-desc")
            met = im > 0 and fm <= target * im
            mark = (f"≤ {target}x: " + ("met" if met else "**missed**")) if tsbs else "(kept form)"
            if tsbs and not met:
                missed.append(f"{name}, {state}: {q['type']} {ratio(fm, im)} (target {target}x)")
            L.append(f"| {q['type']} | {im:.3f} | {fm:.3f} | {float(q['p95_ms']):.3f} | {ratio(fm, im)} | {mark} | {cpu(i)} / {cpu(q)} | {same} |")
        L.append("")
    mixed = r["states"].get("mixed", {})
    if mixed:
        loads = r.get("mixed_load", {})
        achieved = lambda s: f"{loads[s]['points_per_sec']:.0f}" if loads.get(s) else "-"
        L.append(f"### {name}: queries while a load runs\n")
        L.append(
            f"A second process writes the set's hosts' newer points (going on from the set's end) at up to {r['mixed_rate']} points/s, "
            f"half of Fletch's ingest rate above, while the query types run one after another "
            f"(answers not compared: the servers hold different amounts of the newer data). "
            f"Points/s the load reached: InfluxDB {achieved('influx')}, Fletch {achieved('fletch')}.\n"
        )
        iq = {q["type"]: q for q in mixed.get("influx", [])}
        L.append("| query | InfluxDB p50 ms | InfluxDB p99 ms | Fletch p50 ms | Fletch p99 ms | errors (InfluxDB / Fletch) |")
        L.append("|---|---|---|---|---|---|")
        def p50_p99(q):
            if not q:
                return "-", "-"
            if "unfinished_s" in q:
                return f"not done in {q['unfinished_s']} s", "-"
            return f"{float(q['median_ms']):.3f}", f"{float(q['p99_ms']):.3f}"
        for q in mixed.get("fletch", []):
            i = iq.get(q["type"], {})
            (i50, i99), (f50, f99) = p50_p99(i), p50_p99(q)
            L.append(f"| {q['type']} | {i50} | {i99} | {f50} | {f99} | {i.get('errors', '-')} / {q.get('errors', '-')} |")
        L.append("")

for r in results:
    if r.get("kind") != "cardinality":
        continue
    s = r["servers"]
    rows = s["fletch"]["load"]["points"]
    name = f"high cardinality, {r['scale']} hosts x {r['duration']}"
    L.append(f"## {name} ({rows} rows, {r['scale']} series of 10 fields: {r['scale'] * 10} field series)\n")
    L.append("| | InfluxDB 1.6.7 inmem | InfluxDB 1.6.7 tsi1 | Fletch | Fletch / inmem | Fletch / tsi1 |")
    L.append("|---|---|---|---|---|---|")
    def row(label, f, fmt="{:.0f}"):
        i, t, x = f(s["influx"]), f(s["tsi1"]), f(s["fletch"])
        L.append(f"| {label} | {fmt.format(i)} | {fmt.format(t)} | {fmt.format(x)} | {ratio(x, i)} | {ratio(x, t)} |")
        return i, t, x
    i, t, x = row("ingest, points/s", lambda v: v["load"]["points_per_sec"])
    if x < 2 * max(i, t):
        missed.append(f"{name}: ingest {ratio(x, max(i, t))} of the faster InfluxDB (target at least 2x)")
    i, t, x = row("peak resident memory during load, MiB", lambda v: v["peak_kb"] / 1024)
    if x > min(i, t):
        missed.append(f"{name}: peak memory {ratio(x, min(i, t))} (target at most 1x)")
    row("resident memory after persistence, MiB", lambda v: v["rss_kb"] / 1024)
    row("on disk after persistence, bytes", lambda v: v["disk"])
    L.append("")
    q = r["queries"]
    L.append("| query | InfluxDB inmem median ms | InfluxDB tsi1 median ms | Fletch median ms | Fletch p95 ms | answers (compared with inmem) |")
    L.append("|---|---|---|---|---|---|")
    for t, fq in q.get("fletch", {}).items():
        im = float(q.get("influx", {}).get(t, {}).get("median_ms", 0) or 0)
        tm = float(q.get("tsi1", {}).get(t, {}).get("median_ms", 0) or 0)
        fm = float(fq["median_ms"])
        same = "equal" if fq["mismatches"] == 0 and fq["errors"] == 0 else f"{fq['mismatches']} differ, {fq['errors']} errors"
        if fm > min(im, tm):
            missed.append(f"{name}: {t} {fm:.3f} ms against {min(im, tm):.3f} ms (target at most InfluxDB's)")
        L.append(f"| {t} | {im:.3f} | {tm:.3f} | {fm:.3f} | {float(fq['p95_ms']):.3f} | {same} |")
    L.append("")

L.append("## Targets missed in this run\n")
L.extend(f"- {m}" for m in missed) if missed else L.append("None.")
L.append("")
notes = "docs/benchmarks-notes.md"
if os.path.exists(notes):
    L.append(open(notes).read())
open(md_path, "w").write("\n".join(L) + "\n")

# SVG: grouped bars of query medians (log scale) for the first data set, compacted state.
first = next((r for r in results if r.get("kind") == "tsbs"), None)
if first is not None:
    state = first["states"].get("compacted", {})
    iq = {q["type"]: float(q["median_ms"]) for q in state.get("influx", [])}
    fq = [(q["type"], float(q["median_ms"])) for q in state.get("fletch", [])]
    W, H, left, top, bottom = 1100, 360, 60, 50, 60
    n = len(fq)
    bw = (W - left - 20) / max(n, 1)
    lo = -1
    hi = max(1, math.ceil(math.log10(max([v for _, v in fq] + list(iq.values()) + [1]))))
    y = lambda v: top + (H - top - bottom) * (1 - (math.log10(max(v, 10 ** lo)) - lo) / (hi - lo))
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">']
    s.append(f'<text x="{left}" y="24" font-size="14">Query median latency, ms (log scale): {first["scale"]} hosts x {first["duration"]}, compacted</text>')
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
