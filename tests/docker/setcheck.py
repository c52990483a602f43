#!/usr/bin/env python3
"""A Jepsen-style set check of replicated writes on the docker-compose cluster.

Writers send unique points (one per request) to every node with consistency `one` or
`quorum`, into a database of replication factor 2, while a seeded schedule kills
(`docker kill -s KILL`), pauses (`docker pause`) and partitions (`docker network
disconnect`) one node at a time. Then everything heals, hinted handoff drains, anti-entropy
repairs (`fletchd ctl entropy repair`), and every replica is read directly: a query on an owner
reads its own copy.

Each write's outcome: 204 = ok, 4xx or a refused connection = failed, anything else (5xx,
timeout, a connection that broke) = unknown. The check: every ok point is on every owner (nothing acknowledged is lost), nothing is
on any owner that was never sent, and the unknown ones are reported (found or not). History,
seed and the containers' logs are kept under --out. Loops are bounded in count and time.

    setcheck.py --project P --ports 8086,8186,8286 --seed 7 --seconds 30 --out DIR
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

NODES = ["influx1", "influx2", "influx3"]
DB = "jepsen"


def http(port, path, data=None, timeout=5.0):
    url = f"http://127.0.0.1:{port}{path}"
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception as e:  # connection refused, reset, timeout
        return None, str(e)


def query(port, q, timeout=15.0):
    body = urllib.parse.urlencode({"q": q}).encode()
    status, text = http(port, "/query", body, timeout)
    if status != 200:
        raise RuntimeError(f"{q}: {status} {text}")
    return json.loads(text)


def docker(*args):
    subprocess.run(["docker", *args], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", required=True)
    ap.add_argument("--ports", required=True)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--max-writes", type=int, default=3000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ports = dict(zip(NODES, a.ports.split(",")))
    container = lambda n: f"{a.project}_{n}_1"
    network = f"{a.project}_default"
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    print(f"setcheck: seed {a.seed}, history in {a.out}", flush=True)

    query(ports["influx1"], f"CREATE DATABASE {DB} WITH REPLICATION 2")

    history = []  # (writer, value, consistency, outcome, detail)
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(1, a.max_writes + 1))

    def writer(wid):
        node = NODES[wid % 3]
        while not stop.is_set():
            with lock:
                v = next(counter, None)
            if v is None:
                return
            level = "one" if v % 2 else "quorum"
            # Unique per point; times in the first week of 1970: a cold shard group, which
            # anti-entropy checks.
            line = f"jset,w=w{wid} v={v}i {v}\n".encode()
            status, text = http(ports[node], f"/write?db={DB}&precision=s&consistency={level}", line, 5.0)
            if status == 204:
                outcome = "ok"
            elif status and 400 <= status < 500:
                outcome = "failed"
            elif status is None and "refused" in text:
                # Never reached the server (a killed or cut-off node): not applied.
                outcome = "failed"
            else:
                outcome = "unknown"
            with lock:
                history.append((wid, v, level, node, outcome, f"{status} {text.strip()[:120]}"))
            # Paced, so that the writes span the faults (about 150 per second in all).
            time.sleep(0.2 if status is None else 0.04)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()

    # The nemesis: one fault at a time, healed before the next.
    faults = []
    deadline = time.time() + a.seconds
    while time.time() < deadline and any(t.is_alive() for t in threads):
        time.sleep(rng.uniform(1.0, 3.0))
        n = rng.choice(NODES)
        kind = rng.choice(["kill", "pause", "partition"])
        faults.append((round(time.time(), 3), kind, n))
        if kind == "kill":
            docker("kill", "-s", "KILL", container(n))
            time.sleep(rng.uniform(2.0, 4.0))
            docker("start", container(n))
        elif kind == "pause":
            docker("pause", container(n))
            time.sleep(rng.uniform(2.0, 4.0))
            docker("unpause", container(n))
        else:
            docker("network", "disconnect", network, container(n))
            time.sleep(rng.uniform(2.0, 4.0))
            docker("network", "connect", "--alias", n, network, container(n))
    stop.set()
    for t in threads:
        t.join(timeout=30)

    # Heal everything, then wait (bounded) for every node to answer and the queues to drain.
    for n in NODES:
        docker("unpause", container(n))
        docker("network", "connect", "--alias", n, network, container(n))
        docker("start", container(n))

    def answers(n):
        try:
            query(ports[n], "SHOW DATABASES", 5.0)
            return True
        except Exception:
            return False

    def depth(n):
        v = query(ports[n], "SHOW STATS FOR 'hh_processor'", 5.0)
        total = 0
        for s in v["results"][0].get("series", []):
            total += s["values"][0][s["columns"].index("queueDepth")]
        return total

    end = time.time() + 120
    while time.time() < end:
        try:
            if all(answers(n) for n in NODES) and sum(depth(n) for n in NODES) == 0:
                break
        except Exception:
            pass
        time.sleep(1)
    else:
        print("setcheck: FAIL: the cluster did not heal and drain within 120 s", file=sys.stderr)
        return 1

    # Anti-entropy, now rather than at its next interval.
    shards = query(ports["influx1"], "SHOW SHARDS")
    owners = {}
    for s in shards["results"][0].get("series", []):
        if s.get("name") != DB:
            continue
        cols = s["columns"]
        for row in s["values"]:
            shard = row[cols.index("id")]
            owners[shard] = [int(o) for o in row[cols.index("owners")].split(",") if o]
    for shard in owners:
        subprocess.run(
            ["docker", "exec", container("influx1"), "fletchd", "ctl", "--bind", "localhost:8088",
             "entropy", "repair", str(shard)],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300,
        )

    # Every replica, read on its owner (data node ids 2, 4, 6 are influx1..3 in join order).
    by_id = {}
    servers = query(ports["influx1"], "SHOW SERVERS")["results"][0]["series"][0]
    for row in servers["values"]:
        by_id[row[0]] = row[1].split(":")[0]
    reads = {}
    for shard, os_ in owners.items():
        for o in os_:
            n = by_id[o]
            v = query(ports[n], f"SELECT v FROM {DB}..jset", 30.0)
            rows = v["results"][0].get("series", [{}])[0].get("values", [])
            reads[(shard, n)] = {r[1] for r in rows}

    ok = {v for (_, v, _, _, o, _) in history if o == "ok"}
    unknown = {v for (_, v, _, _, o, _) in history if o == "unknown"}
    sent = {v for (_, v, _, _, _, _) in history}
    problems = []
    for (shard, n), got in sorted(reads.items()):
        lost = ok - got
        unexpected = got - sent
        if lost:
            problems.append(f"shard {shard} on {n}: {len(lost)} acknowledged points lost, e.g. {sorted(lost)[:10]}")
        if unexpected:
            problems.append(f"shard {shard} on {n}: {len(unexpected)} points never sent, e.g. {sorted(unexpected)[:10]}")
    everywhere = set.intersection(*reads.values()) if reads else set()
    summary = {
        "seed": a.seed,
        "writes": len(history),
        "ok": len(ok),
        "failed": sum(1 for h in history if h[4] == "failed"),
        "unknown": len(unknown),
        "unknown_found_on_every_owner": len(unknown & everywhere),
        "faults": faults,
        "replicas": {f"{s}@{n}": len(g) for (s, n), g in reads.items()},
        "problems": problems,
    }
    with open(os.path.join(a.out, "history.jsonl"), "w") as f:
        for h in history:
            f.write(json.dumps(dict(zip(["writer", "value", "consistency", "node", "outcome", "detail"], h))) + "\n")
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    logs = subprocess.run(["docker-compose", "-p", a.project, "logs", "--no-color"], capture_output=True, text=True)
    with open(os.path.join(a.out, "logs.txt"), "w") as f:
        f.write(logs.stdout + logs.stderr)
    print("setcheck: " + json.dumps({k: summary[k] for k in ["writes", "ok", "failed", "unknown", "unknown_found_on_every_owner", "replicas"]}))
    print(f"setcheck: faults {faults}")
    if problems or not ok:
        for p in problems:
            print("setcheck: FAIL: " + p, file=sys.stderr)
        if not ok:
            print("setcheck: FAIL: no write was acknowledged", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
