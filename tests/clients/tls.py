"""Real clients against a Fletch API port serving TLS (tests/tests/tls.rs starts it).

Usage: tls.py HOST:PORT CA.pem WRONG_CA.pem FLIGHT_HOST:PORT
Prints one JSON object: for each attempt, ["ok", result] or ["error", text].
"""
import json
import sys

addr, ca, wrong_ca, flight_addr = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
out = {}


def attempt(name, f):
    try:
        out[name] = ["ok", f()]
    except Exception as e:  # the text is what the test looks at
        out[name] = ["error", f"{type(e).__name__}: {e}"]


def read(path):
    with open(path) as f:
        return f.read()


# influxdb (the 1.x Python client): https with the test CA.
from influxdb import InfluxDBClient


def v1():
    c = InfluxDBClient(host=host, port=int(port), ssl=True, verify_ssl=ca, database="tls")
    c.create_database("tls")
    c.write_points(
        [{"measurement": "m", "tags": {"t": "a"}, "fields": {"v": 1.5}, "time": 1000000000}],
        time_precision="n",
    )
    return list(c.query("SELECT v, t FROM m").get_points())


attempt("influxdb", v1)
attempt(
    "influxdb wrong ca",
    lambda: InfluxDBClient(host=host, port=int(port), ssl=True, verify_ssl=wrong_ca).ping(),
)

# influxdb-client (v2 write API over https).
from influxdb_client import InfluxDBClient as V2Client
from influxdb_client.client.write_api import SYNCHRONOUS


def v2():
    with V2Client(url=f"https://{addr}", token="unused", org="-", ssl_ca_cert=ca) as c:
        c.write_api(write_options=SYNCHRONOUS).write(
            bucket="tls/autogen", record="m,t=b v=2.5 2000000000"
        )
    return True


attempt("influxdb-client", v2)

# influxdb3-python: Flight over TLS.
from influxdb_client_3 import InfluxDBClient3, flight_client_options


def v3():
    c = InfluxDBClient3(
        host=f"https://{addr}",
        token="unused",
        database="tls",
        flight_client_options=flight_client_options(tls_root_certs=read(ca)),
    )
    return c.query("SELECT t, v FROM m ORDER BY time").to_pylist()


attempt("influxdb3", v3)

# The ADBC Flight SQL driver, on the API port and on [flight] bind-address.
import adbc_driver_flightsql.dbapi as flight_sql


def adbc(target, root):
    kwargs = {
        "adbc.flight.sql.client_option.tls_root_certs": read(root),
        "adbc.flight.sql.rpc.call_header.database": "tls",
    }
    with flight_sql.connect(f"grpc+tls://{target}", db_kwargs=kwargs) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*) AS n FROM m")
        return cur.fetchall()


attempt("adbc", lambda: adbc(addr, ca))
attempt("adbc flight port", lambda: adbc(flight_addr, ca))
attempt("adbc wrong ca", lambda: adbc(addr, wrong_ca))


def adbc_clear():
    with flight_sql.connect(f"grpc://{addr}") as conn:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        return cur.fetchall()


attempt("adbc clear text", adbc_clear)
print(json.dumps(out, default=str))
