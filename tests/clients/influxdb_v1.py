"""The `influxdb` Python client (1.x API), every call of it, against one server.

Usage: python3 influxdb_v1.py HOST PORT [ACCEPT]

ACCEPT (default `application/json`) is the Accept header the client sends; the client's own
default is `application/x-msgpack`, which 1.6.7 answers in MessagePack and Fletch in JSON
(the client reads both).

Prints one JSON list: for each step, [name, "ok", result] or [name, "error", message]. The
Rust test (tests/tests/python_client.rs) runs it against InfluxDB 1.6.7 and against Fletch and
compares the two lists. Every timestamp is fixed, so the answers are the same on every run.
"""

import json
import sys

from influxdb import InfluxDBClient
from influxdb.resultset import ResultSet

host, port = sys.argv[1], int(sys.argv[2])
client = InfluxDBClient(host=host, port=port, database="py", headers={"Accept": sys.argv[3] if len(sys.argv) > 3 else "application/json"})
out = []


def plain(value):
    """Results as JSON: a ResultSet as the server's raw answer, generators as lists."""
    if isinstance(value, ResultSet):
        return value.raw
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "__next__"):
        return [plain(v) for v in value]
    return value


def step(name, f):
    try:
        out.append([name, "ok", plain(f())])
    except Exception as e:  # the client's own exception types, with the server's text
        out.append([name, "error", type(e).__name__, str(e)])


def points(measurement, base, scale, precision_name):
    return [
        {
            "measurement": measurement,
            "tags": {"host": host_name, "precision": precision_name},
            "time": base + i * scale,
            "fields": {"v": float(i), "n": i, "s": "x%d" % i, "b": i % 2 == 0},
        }
        for i, host_name in enumerate(["a", "b", "a"])
    ]


step("ping", lambda: bool(client.ping()))
# Databases.
step("create_database", lambda: client.create_database("py"))
step("create_database again", lambda: client.create_database("py"))
step("create_database other", lambda: client.create_database("py_other"))
step("get_list_database", client.get_list_database)
step("drop_database other", lambda: client.drop_database("py_other"))
step("drop_database missing", lambda: client.drop_database("py_missing"))
step("get_list_database after drop", client.get_list_database)

# Retention policies.
step(
    "create_retention_policy",
    lambda: client.create_retention_policy("week", "7d", 1, database="py", shard_duration="1d"),
)
step(
    "create_retention_policy conflicting",
    lambda: client.create_retention_policy("week", "8d", 1, database="py"),
)
step(
    "create_retention_policy on a missing database",
    lambda: client.create_retention_policy("week", "7d", 1, database="py_missing"),
)
step("get_list_retention_policies", lambda: client.get_list_retention_policies("py"))
step(
    "alter_retention_policy",
    lambda: client.alter_retention_policy("week", database="py", duration="14d", default=True),
)
step("get_list_retention_policies after alter", lambda: client.get_list_retention_policies("py"))
step(
    "alter_retention_policy back",
    lambda: client.alter_retention_policy("autogen", database="py", default=True),
)

# Users and privileges (authentication is off; both servers still keep users).
step("create_user", lambda: client.create_user("ann", "secret"))
step("create_user admin", lambda: client.create_user("root", "secret", admin=True))
step("create_user again", lambda: client.create_user("ann", "other"))
step("get_list_users", client.get_list_users)
step("set_user_password", lambda: client.set_user_password("ann", "new"))
step("set_user_password missing", lambda: client.set_user_password("nobody", "x"))
step("grant_privilege", lambda: client.grant_privilege("read", "py", "ann"))
step("get_list_privileges", lambda: client.get_list_privileges("ann"))
step("grant_privilege all", lambda: client.grant_privilege("all", "py", "ann"))
step("revoke_privilege", lambda: client.revoke_privilege("read", "py", "ann"))
step("get_list_privileges after revoke", lambda: client.get_list_privileges("ann"))
step("grant_admin_privileges", lambda: client.grant_admin_privileges("ann"))
step("get_list_users with admin", client.get_list_users)
step("revoke_admin_privileges", lambda: client.revoke_admin_privileges("ann"))
step("drop_user", lambda: client.drop_user("ann"))
step("drop_user missing", lambda: client.drop_user("ann"))
step("get_list_users after drop", client.get_list_users)

# Writes in every time precision, read back.
base_s = 1_500_000_000
for precision, base, scale in [
    (None, base_s * 10**9, 10**9),
    ("n", base_s * 10**9 + 7, 1),
    ("u", base_s * 10**6 + 3, 1),
    ("ms", base_s * 10**3 + 5, 1),
    ("s", base_s + 60, 1),
    ("m", base_s // 60 + 2, 1),
    ("h", base_s // 3600 + 1, 1),
]:
    name = precision or "default"
    step(
        "write_points precision=%s" % name,
        lambda: client.write_points(points("wp", base, scale, name), time_precision=precision),
    )
step("query written points", lambda: client.query("SELECT * FROM wp GROUP BY *"))
step(
    "write_points string times",
    lambda: client.write_points(
        [
            {"measurement": "st", "time": "2017-07-14T02:40:00Z", "fields": {"v": 1}},
            {"measurement": "st", "time": "2017-07-14T02:40:00.5Z", "fields": {"v": 2}},
        ]
    ),
)
step(
    "write_points line protocol, batches of 2",
    lambda: client.write_points(
        ["lp,host=a v=1 1500000000000000000", "lp,host=b v=2 1500000001000000000", "lp v=3 1500000002000000000"],
        protocol="line",
        batch_size=2,
    ),
)
step(
    "write_points to a retention policy",
    lambda: client.write_points(
        [{"measurement": "inrp", "time": 1500000000000000000, "fields": {"v": 1}}],
        retention_policy="week",
    ),
)
step(
    "write_points with tags for all",
    lambda: client.write_points(
        [{"measurement": "tagged", "time": 1500000000000000000, "fields": {"v": 1}}],
        tags={"dc": "east"},
    ),
)
step(
    "write_points a field type conflict",
    # Into an existing series: 1.6.7 would list a new series of a refused point in SHOW SERIES.
    lambda: client.write_points(
        [
            {
                "measurement": "wp",
                "time": 1500000000000000000,
                "tags": {"host": "a", "precision": "default"},
                "fields": {"v": "text"},
            }
        ]
    ),
)
step(
    "write_points to a missing database",
    lambda: client.write_points([{"measurement": "m", "fields": {"v": 1}}], database="py_missing"),
)
step("query st", lambda: client.query("SELECT * FROM st"))
step("query lp", lambda: client.query("SELECT * FROM lp GROUP BY host"))
step("query inrp", lambda: client.query('SELECT * FROM "week".inrp'))
step("query inrp on the default policy", lambda: client.query("SELECT * FROM inrp"))
step("query tagged", lambda: client.query("SELECT * FROM tagged GROUP BY dc"))

# Queries: epochs, chunks, bound parameters, errors.
for epoch in ["h", "m", "s", "ms", "u", "ns"]:
    step("query epoch=%s" % epoch, lambda: client.query("SELECT v FROM lp", epoch=epoch))
step("query chunked", lambda: client.query("SELECT * FROM wp", chunked=True, chunk_size=4))
step(
    "query chunked, grouped",
    lambda: client.query("SELECT v FROM wp GROUP BY host", chunked=True, chunk_size=2),
)
step(
    "query bind_params",
    lambda: client.query(
        "SELECT v FROM wp WHERE host = $h AND n >= $n", bind_params={"h": "a", "n": 1}
    ),
)
step("query get_points", lambda: list(client.query("SELECT v FROM wp GROUP BY host").get_points(tags={"host": "b"})))
# Dashboard functions through the client: technical analysis, a forecast with bound times,
# counts of empty buckets.
step(
    "write_points a series for functions",
    lambda: client.write_points(
        ["fn,host=a v=%d %d" % ((i * 7) % 11, 1_500_000_000 + 60 * i) for i in range(40) if i % 9 != 4],
        time_precision="s",
        protocol="line",
    ),
)
step(
    "query technical analysis",
    lambda: list(client.query("SELECT exponential_moving_average(v, 3), relative_strength_index(v, 5) FROM fn").get_points()),
)
step(
    "query holt_winters with bind_params",
    lambda: client.query(
        "SELECT holt_winters_with_fit(max(v), 3, 4) FROM fn WHERE time >= $start AND time < $end GROUP BY time(2m)",
        bind_params={"start": "2017-07-14T02:40:00Z", "end": "2017-07-14T03:20:00Z"},
    ),
)
step(
    "query counts of empty buckets",
    lambda: client.query(
        "SELECT count(v) FROM fn WHERE time >= '2017-07-14T02:40:00Z' AND time < '2017-07-14T03:20:00Z' GROUP BY time(1m)"
    ),
)
step("query a syntax error", lambda: client.query("SELECT FROM"))
step("query a missing database", lambda: client.query("SELECT * FROM m", database="py_missing"))
step("query two statements", lambda: client.query("SELECT count(v) FROM wp; SELECT count(v) FROM lp"))
step("query with a POST", lambda: client.query("SELECT count(v) FROM wp", method="POST"))
step("query database param", lambda: client.query("SELECT count(v) FROM lp", database="py"))

# Measurements and series.
step("get_list_measurements", client.get_list_measurements)
step("get_list_series", lambda: client.get_list_series(database="py"))
step("get_list_series of a measurement", lambda: client.get_list_series(database="py", measurement="wp"))
step(
    "get_list_series with tags",
    lambda: client.get_list_series(database="py", measurement="wp", tags={"host": "a"}),
)
step("delete_series by tag", lambda: client.delete_series(database="py", measurement="lp", tags={"host": "a"}))
step("delete_series of a measurement", lambda: client.delete_series(measurement="st"))
step("get_list_series after deletes", lambda: client.get_list_series(database="py"))
step("drop_measurement", lambda: client.drop_measurement("tagged"))
step("drop_measurement missing", lambda: client.drop_measurement("never"))
step("get_list_measurements after drop", client.get_list_measurements)

# Continuous queries.
select = 'SELECT mean("v") INTO "v_mean" FROM "wp" GROUP BY time(1m)'
step("create_continuous_query", lambda: client.create_continuous_query("cq_mean", select, "py"))
step(
    "create_continuous_query resampled",
    lambda: client.create_continuous_query("cq_resampled", select, "py", "EVERY 10s FOR 2m"),
)
step(
    "create_continuous_query conflicting",
    lambda: client.create_continuous_query("cq_mean", select.replace("v_mean", "other"), "py"),
)
step(
    "create_continuous_query without GROUP BY time",
    lambda: client.create_continuous_query("cq_bad", 'SELECT mean("v") INTO "x" FROM "wp"', "py"),
)
step("get_list_continuous_queries", client.get_list_continuous_queries)
step("drop_continuous_query", lambda: client.drop_continuous_query("cq_mean", "py"))
step("get_list_continuous_queries after drop", client.get_list_continuous_queries)
step("drop_retention_policy", lambda: client.drop_retention_policy("week", "py"))
step("get_list_retention_policies after drop", lambda: client.get_list_retention_policies("py"))
step("drop_database", lambda: client.drop_database("py"))
step("get_list_continuous_queries after drop_database", client.get_list_continuous_queries)
client.close()
print(json.dumps(out))
