"""Flight SQL and InfluxDB 3 clients against a running fletchd, as a user would run them.

Usage: flight_sql.py HOST:PORT FLIGHT_HOST:PORT
  (the HTTP API's address, where gRPC is served too; then [flight] bind-address, Flight's own)

The database `fs` must hold the points `tests/tests/flight_sql.rs` writes. Exits non-zero with a
message on the first answer that is not what the client should get.
"""
import json
import sys
import urllib.parse
import urllib.request
import warnings

import pyarrow.flight as fl

warnings.simplefilter("ignore")
addr = sys.argv[1]
grpc = f"grpc://{addr}"
flight_only = sys.argv[2]


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: got {got!r}, want {want!r}")
    print(f"ok: {what}")


def influxql(q):
    url = f"http://{addr}/query?" + urllib.parse.urlencode({"db": "fs", "q": q})
    with urllib.request.urlopen(url) as r:
        return json.load(r)["results"][0]


# pyarrow.flight with InfluxDB 3's JSON ticket.
client = fl.FlightClient(grpc)
ticket = {"database": "fs", "sql_query": "SELECT * FROM cpu ORDER BY time, host", "query_type": "sql"}
table = client.do_get(fl.Ticket(json.dumps(ticket).encode())).read_all()
check("JSON ticket: rows", table.num_rows, 6)
check("JSON ticket: columns in name order", table.schema.names, ["host", "n", "region", "time", "usage"])
meta = {f.name: f.metadata[b"iox::column::type"].decode() for f in table.schema}
check(
    "IOx column types",
    meta,
    {
        "host": "iox::column_type::tag",
        "n": "iox::column_type::field::integer",
        "region": "iox::column_type::tag",
        "time": "iox::column_type::timestamp",
        "usage": "iox::column_type::field::float",
    },
)
check("tags are dictionaries", str(table.schema.field("host").type), "dictionary<values=string, indices=int32, ordered=0>")
check("time is not null", table.schema.field("time").nullable, False)

# Bad input: a gRPC status with a clear message (pyarrow maps NOT_FOUND to ArrowKeyError).
for bad, want in [
    ({"database": "nope", "sql_query": "SELECT 1", "query_type": "sql"}, "NOT_FOUND:database not found: nope"),
    ({"database": "fs", "sql_query": "SELEC 1", "query_type": "sql"}, "INVALID_ARGUMENT:SQL error: ParserError"),
    ({"database": "fs", "sql_query": "SELECT * FROM nosuch", "query_type": "sql"}, "INVALID_ARGUMENT:Error during planning: table 'fs.iox.nosuch' not found"),
]:
    try:
        client.do_get(fl.Ticket(json.dumps(bad).encode())).read_all()
        sys.exit(f"no error for {bad}")
    except Exception as e:
        check(f"error for {bad['sql_query']!r} on {bad['database']!r}", want in str(e), True)
try:
    client.do_get(fl.Ticket(b"garbage")).read_all()
    sys.exit("no error for a garbage ticket")
except Exception as e:
    check("a garbage ticket", "neither a Flight SQL command nor an InfluxDB 3 JSON ticket" in str(e), True)

# The ADBC Flight SQL driver.
import adbc_driver_flightsql.dbapi as flight_sql

conn = flight_sql.connect(grpc, db_kwargs={"adbc.flight.sql.rpc.call_header.database": "fs"})
cur = conn.cursor()
cur.execute("SELECT host, sum(usage) AS s, count(*) AS c FROM cpu GROUP BY host ORDER BY host")
check("ADBC: aggregate", cur.fetchall(), [("a", 6.0, 3), ("b", 7.5, 3)])
cur.execute("SELECT count(*) FROM fs.iox.mem")
check("ADBC: catalog.schema.table", cur.fetchall(), [(2,)])
cur.execute("SELECT count(*) FROM other.mem")
check("ADBC: another retention policy's schema", cur.fetchall(), [(1,)])
cur.execute("SELECT host, n FROM cpu WHERE n > ? AND host = ? ORDER BY time", parameters=(3, "b"))
check("ADBC: parameters", cur.fetchall(), [("b", 4), ("b", 6)])
cur.execute("SHOW TABLES")
tables = sorted((r[1], r[2]) for r in cur.fetchall() if r[1] != "information_schema")
check("ADBC: SHOW TABLES", tables, [("iox", "cpu"), ("iox", "mem"), ("other", "mem")])
info = conn.adbc_get_info()
check("ADBC: GetSqlInfo", (info.get("vendor_name"), bool(info.get("vendor_version"))), ("Fletch", True))
cur.execute("SHOW COLUMNS FROM cpu")
check(
    "ADBC: SHOW COLUMNS",
    [(r[3], r[4]) for r in cur.fetchall()],
    [("host", "Dictionary(Int32, Utf8)"), ("n", "Int64"), ("region", "Dictionary(Int32, Utf8)"), ("time", "Timestamp(ns)"), ("usage", "Float64")],
)
objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
found = sorted(
    (c["catalog_name"], s["db_schema_name"], t["table_name"])
    for c in objects
    for s in c["catalog_db_schemas"]
    for t in s["db_schema_tables"]
)
check("ADBC: GetTables", [f for f in found if f[0] == "fs"], [("fs", "iox", "cpu"), ("fs", "iox", "mem"), ("fs", "other", "mem")])
schema = conn.adbc_get_table_schema("cpu", catalog_filter="fs", db_schema_filter="iox")
check("ADBC: a table's schema", schema.names, ["host", "n", "region", "time", "usage"])
# SQL and InfluxQL agree.
cur.execute("SELECT host, avg(usage) AS mean, max(n) AS max FROM cpu GROUP BY host ORDER BY host")
sql = [(h, round(m, 9), x) for h, m, x in cur.fetchall()]
q = influxql("SELECT mean(usage), max(n) FROM cpu GROUP BY host")
iql = [(s["tags"]["host"], round(s["values"][0][1], 9), s["values"][0][2]) for s in q["series"]]
check("SQL and InfluxQL give the same numbers", sql, iql)
# What Fletch's SQL does not do: a clear error, the connection still usable.
for bad, want in [
    ("INSERT INTO cpu (host) VALUES ('x')", "only reads"),
    ("CREATE TABLE t AS SELECT 1", "only reads"),
    ("SET datafusion.execution.batch_size = 1", "only reads"),
]:
    try:
        cur.execute(bad)
        cur.fetchall()
        sys.exit(f"no error for {bad}")
    except Exception as e:
        check(f"ADBC: {bad.split()[0]} refused", want in str(e), True)
# Flight SQL's update command (DoPut of CommandStatementUpdate), as ADBC sends execute_update.
try:
    cur.adbc_statement.set_sql_query("DELETE FROM cpu")
    cur.adbc_statement.execute_update()
    sys.exit("no error for an update")
except Exception as e:
    if not ("Unimplemented" in str(e) and "only reads" in str(e)):
        sys.exit(f"execute_update: {e}")
    check("ADBC: execute_update refused as UNIMPLEMENTED", True, True)
cur.execute("SELECT count(*) FROM cpu")
check("ADBC: the connection serves on after a refusal", cur.fetchall(), [(6,)])
check("ADBC: GetTableTypes", sorted(conn.adbc_get_table_types()), ["BASE TABLE", "VIEW"])
catalogs = conn.adbc_get_objects(depth="catalogs").read_all().column("catalog_name").to_pylist()
check("ADBC: GetCatalogs", [c for c in catalogs if c in ("fs", "v3", "w")], ["fs", "v3", "w"])
cur.close()
conn.close()

# Basic credentials: a handshake that returns a bearer token, which later calls carry.
conn = flight_sql.connect(grpc, db_kwargs={"username": "reader", "password": "secret", "adbc.flight.sql.rpc.call_header.database": "fs"})
cur = conn.cursor()
cur.execute("SELECT count(*) FROM mem")
check("ADBC: username and password (Handshake, then a bearer token)", cur.fetchall(), [(2,)])
cur.close()
conn.close()

# [flight] bind-address: Flight SQL on a port of its own.
conn = flight_sql.connect(f"grpc://{flight_only}", db_kwargs={"adbc.flight.sql.rpc.call_header.database": "fs"})
cur = conn.cursor()
cur.execute("SELECT count(*) FROM cpu")
check("ADBC on [flight] bind-address", cur.fetchall(), [(6,)])
cur.close()
conn.close()

# GetXdbcTypeInfo, sent as a Flight SQL command (protobuf Any) with pyarrow.flight.
def any_command(name, value=b""):
    url = f"type.googleapis.com/arrow.flight.protocol.sql.{name}".encode()
    return b"\x0a" + bytes([len(url)]) + url + b"\x12" + bytes([len(value)]) + value

info = client.get_flight_info(fl.FlightDescriptor.for_command(any_command("CommandGetXdbcTypeInfo")))
types = client.do_get(info.endpoints[0].ticket).read_all()
check("GetXdbcTypeInfo", sorted(types.column("type_name").to_pylist()), ["BIGINT", "BIGINT UNSIGNED", "BOOLEAN", "DOUBLE", "TIMESTAMP", "VARCHAR"])
try:
    client.get_flight_info(fl.FlightDescriptor.for_command(any_command("ActionBeginTransactionRequest")))
except Exception as e:
    check("an unknown command: a clear error", "invalid" in str(e).lower() or "unimplemented" in str(e).lower(), True)

# /api/v3/query_sql in Parquet, read with pyarrow.
import io
import pyarrow.parquet as pq

url = f"http://{addr}/api/v3/query_sql?" + urllib.parse.urlencode({"db": "fs", "q": "SELECT host, usage FROM cpu ORDER BY time, host", "format": "parquet"})
with urllib.request.urlopen(url) as r:
    check("query_sql format=parquet: content type", r.headers["Content-Type"], "application/vnd.apache.parquet")
    t = pq.read_table(io.BytesIO(r.read()))
check("query_sql format=parquet", t.column("usage").to_pylist(), [1.5, 2.5, 2.0, 2.5, 2.5, 2.5])

# influxdb3-python: a query in SQL, then a write (through /api/v2/write) read back.
from influxdb_client_3 import InfluxDBClient3

c3 = InfluxDBClient3(host=f"http://{addr}", database="fs", token="unused")
t = c3.query("SELECT host, usage FROM cpu WHERE host = 'a' ORDER BY time", language="sql")
check("influxdb3-python: SQL", t.column("usage").to_pylist(), [1.5, 2.0, 2.5])
t = c3.query("SELECT mean(usage) FROM cpu GROUP BY host", language="influxql")
check("influxdb3-python: InfluxQL, with iox::measurement first", t.column_names, ["iox::measurement", "time", "host", "mean"])
check("influxdb3-python: InfluxQL values", (t.column("iox::measurement").to_pylist(), t.column("host").to_pylist(), t.column("mean").to_pylist()), (["cpu", "cpu"], ["a", "b"], [2.0, 2.5]))
# Writes go to database w (whose tables the listings above do not expect).
c3w = InfluxDBClient3(host=f"http://{addr}", database="w", token="unused")
c3w.write(record="disk,host=c used=7i 5", write_precision="s")
t = c3w.query("SELECT host, used, time FROM disk", language="sql")
check("influxdb3-python: write, then read", (t.column("host").to_pylist(), t.column("used").to_pylist()), (["c"], [7]))

# influxdb-client (the v2 client library): a write to bucket db/rp through /api/v2/write.
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

with InfluxDBClient(url=f"http://{addr}", token="unused", org="unused") as v2:
    v2.write_api(write_options=SYNCHRONOUS).write(bucket="w/wrp", record="disk,host=d used=8i 6", write_precision="s")
q = influxql("SELECT used FROM w.wrp.disk")
check("influxdb-client: write to db/rp", q["series"][0]["values"], [["1970-01-01T00:00:06Z", 8]])
try:
    with InfluxDBClient(url=f"http://{addr}", token="unused", org="unused") as v2:
        v2.write_api(write_options=SYNCHRONOUS).write(bucket="nope", record="disk used=1i")
    sys.exit("no error for an unknown bucket")
except Exception as e:
    check("influxdb-client: unknown bucket", "database not found" in str(e), True)
print("all Flight SQL clients answered as expected")
