#!/usr/bin/env bash
# Fault tests of the docker-compose cluster (three containers on their own network): the
# cluster forms with -join and every node lists the others by their service names; the
# leader's container is killed and a catalog change goes through the survivors; it comes back
# as itself; a node cut off from the network cannot change the catalog while the majority can,
# and catches up once reconnected; then a set check of replicated writes under faults
# (setcheck.py). Every wait is a condition polled against a deadline.
#
#   tests/docker/cluster.sh            (builds fletch:local with FLETCH_PROFILE=debug binaries)
set -euo pipefail
cd "$(dirname "$0")/../.."

project="fletchtest$$"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export FLETCH_PORT1="$(free_port)" FLETCH_PORT2="$(free_port)" FLETCH_PORT3="$(free_port)"
compose() { docker-compose -p "$project" -f docker-compose.yml "$@"; }
cleanup() { compose down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

port_of() { case "$1" in influx1) echo "$FLETCH_PORT1" ;; influx2) echo "$FLETCH_PORT2" ;; influx3) echo "$FLETCH_PORT3" ;; esac; }
q() { curl -s -m 15 -XPOST "http://127.0.0.1:$(port_of "$1")/query" --data-urlencode "q=$2" || true; }
# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds, or fails the test.
wait_until() {
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "FAIL: timed out waiting for $what" >&2
      compose logs --tail 30 >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}
passed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }

FLETCH_PROFILE="${FLETCH_PROFILE:-debug}" docker/build.sh
compose up -d >/dev/null

# Every node lists the three by service name; the first node is meta 1 / data 2, the others
# got their ids in the order they joined.
lists_all() {
  q "$1" 'SHOW SERVERS' | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0]["series"]
data = {r[1]: (r[0], r[2]) for r in s[0]["values"]}
meta = {r[1]: (r[0], r[2]) for r in s[1]["values"]}
names = ["influx1", "influx2", "influx3"]
assert sorted(data) == [n + ":8086" for n in names], data
assert sorted(meta) == [n + ":8091" for n in names], meta
assert all(data[n + ":8086"][1] == meta[n + ":8091"][1] == n + ":8088" for n in names)
assert meta["influx1:8091"][0] == 1 and data["influx1:8086"][0] == 2
ids = [v[0] for v in data.values()] + [v[0] for v in meta.values()]
assert sorted(ids) == [1, 2, 3, 4, 5, 6], ids
assert [r[0] for r in s[0]["values"]] == sorted(r[0] for r in s[0]["values"])
' 2>/dev/null
}
for n in influx1 influx2 influx3; do
  wait_until 90 "$n to list all three nodes" lists_all "$n"
done
ok "the cluster formed; SHOW SERVERS on every node lists all three by service name"

no_error() { local r; r="$(q "$1" "$2")"; [[ "$r" == '{"results":[{"statement_id":0}]}' ]]; }
wait_until 30 "CREATE DATABASE through a follower" no_error influx3 'CREATE DATABASE one'
ok "a catalog change sent to a follower is forwarded to the leader"

# The leader's service name, from its tcp address in SHOW META STATUS.
leader_of() { q "$1" 'SHOW META STATUS' | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]["series"][0]["values"]; print([r[1] for r in v if r[2]=="leader"][0].split(":")[0])'; }
leader="$(leader_of influx2)"
survivor=influx2; [ "$leader" = influx2 ] && survivor=influx3
docker kill "${project}_${leader}_1" >/dev/null
wait_until 60 "a catalog change without the old leader" no_error "$survivor" 'CREATE DATABASE two'
ok "with the leader ($leader) killed, a change goes through the survivors"

docker start "${project}_${leader}_1" >/dev/null
has_two() { q "$leader" 'SHOW DATABASES' | grep -q '\["two"\]'; }
wait_until 90 "the old leader to come back and catch up" has_two
wait_until 30 "the old leader to list the same servers" lists_all "$leader"
ok "the killed node restarts as itself and catches up"

# Cut one follower off: it cannot change the catalog, the majority can.
leader_now="$(leader_of influx1)"
cut=influx1; for n in influx1 influx2 influx3; do [ "$n" != "$leader_now" ] && cut="$n" && break; done
# (A disconnected container loses its published port: talk to it from inside.)
inside() { docker exec "${project}_${cut}_1" fletch -execute "$1" -format json 2>&1 || true; }
docker network disconnect "${project}_default" "${project}_${cut}_1"
r="$(inside 'CREATE DATABASE lonely')"
case "$r" in
  *'meta service unavailable: no quorum'*) ;;
  *) echo "FAIL: the cut-off node answered: $r" >&2; exit 1 ;;
esac
wait_until 30 "a change on the majority side" no_error "$leader_now" 'CREATE DATABASE three'
ok "a node cut off from the network refuses catalog changes; the majority goes on"
docker network connect --alias "$cut" "${project}_default" "${project}_${cut}_1"
has_three() { inside 'SHOW DATABASES' | grep -q '\["three"\]'; }
wait_until 60 "the reconnected node to catch up" has_three
ok "reconnected, it catches up"

# A Jepsen-style set check of replicated writes under kills, pauses and partitions
# (tests/docker/setcheck.py); each run's history, seed and logs are kept outside the clone.
seed="${FLETCH_SETCHECK_SEED:-$RANDOM}"
out="/var/tmp/fletch-setcheck/$(date +%Y%m%dT%H%M%S)-$seed"
if timeout 600 python3 tests/docker/setcheck.py --project "$project" \
    --ports "$FLETCH_PORT1,$FLETCH_PORT2,$FLETCH_PORT3" --seed "$seed" --seconds 30 --out "$out"; then
  ok "set check: every acknowledged write is on every owner after kills, pauses and partitions (seed $seed, $out)"
else
  echo "FAIL: set check (seed $seed; history, summary and logs in $out)" >&2
  exit 1
fi

echo "docker cluster: $passed passed"
