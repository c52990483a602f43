//! The same writes and queries against InfluxDB 1.6.7 and Fletch, compared.
//!
//! Normalizations, kept few on purpose:
//! - bodies are compared as JSON values when both parse as JSON (key order aside), else as text
//!   with surrounding whitespace trimmed; chunked bodies line by line;
//! - numbers are equal within a relative 1e-9 (the order in which a mean or sum adds its values
//!   differs between the engines, and with it the last digits);
//! - response headers are not compared, except that both must send `X-Influxdb-Version`;
//! - steps marked `status_only` compare the status code alone; each says why;
//! - against a cluster (3 data nodes, every query sent to a fourth node without data): a plain
//!   `CREATE DATABASE` is sent `WITH REPLICATION 2`, so `SHOW RETENTION POLICIES` reads its
//!   `autogen` policy's `replicaN` as 1; the querying node's catalog catches up with the
//!   writer's after each write.
//!
//! Needs `influxd` (Debian's `influxdb` package; `.ci/run` installs it). Set
//! `FLETCH_SKIP_INFLUXDB_COMPAT=1` to skip on a machine without it.

use std::time::Duration;

use fletch_tests::cluster::{Node, three_data_nodes_and_a_querier};
use fletch_tests::http::{Resp, query, send, urlencode};
use fletch_tests::{Fletchd, Influxd, wait_for};

enum Step {
    /// `POST /write?{params}` with a body.
    Write(&'static str, &'static str),
    /// `POST /query` with `q` (and `{params}`).
    Query(&'static str, &'static str),
    /// `GET /query?q=...&{params}`.
    GetQuery(&'static str, &'static str),
    /// Any request; compare the status only (the reason is given).
    StatusOnly(&'static str, &'static str, &'static [u8], &'static str),
    /// `POST /query` asking for CSV.
    Csv(&'static str),
}

use Step::*;

const STEPS: &[Step] = &[
    Query("CREATE DATABASE d", ""),
    Write("", "cpu value=1"),
    Write("db=x", "cpu value=1"),
    Write("db=d", ""),
    Write("db=d", "cpu,host=a value=1 1000"),
    Write("db=d&rp=nope", "cpu value=1"),
    Write("db=d&consistency=bogus", "cpu value=1"),
    Write("db=d&consistency=all", "cpu value=2 2000"),
    Write("db=d", "cpu"),
    Write("db=d", "cpu value=1 3000\nbad line\ncpu value=2 4000"),
    Write("db=d", "cpu value=1i 5000"),
    Write(
        "db=d",
        "cpu value=1i 6000\ncpu value=1.5 7000\ncpu value=\"x\" 8000",
    ),
    Write("db=d", "new f=1i 10\nnew f=2 11\nnew f=3i 12"),
    Write("db=d", "cpu,host=a value=1u"),
    Write("db=d", "cpu value=1 123abc"),
    Write("db=d", "cpu value=1 99999999999999999999"),
    Write("db=d", "cpu value=1 9223372036854775807"),
    Write("db=d&precision=h", "cpu value=1 99999999999999"),
    Write("db=d", "cpu value=NaN"),
    Write("db=d", "cpu value=1e400"),
    Write("db=d", "cpu value=99999999999999999999i"),
    Write("db=d", "cpu time=1"),
    Write("db=d", "cpu,time=x value=1"),
    Write("db=d", "cpu time=1,v=2 9000"),
    Write("db=d", "cpu,a=1,a=2 value=1"),
    Write("db=d", "cpu value=1\r\ncpu value=2 5\r\n"),
    Write("db=d", "cpu value=1 5 6"),
    Write("db=d", "cpu value=trueish"),
    Write("db=d", ",tag=a value=1"),
    Write("db=d", "cpu,=a value=1"),
    Write("db=d", "cpu,a value=1"),
    Write("db=d", "cpu,a=b=c value=1"),
    Write("db=d", "cpu value=\"unterminated"),
    Write("db=d", "cpu a=1,b"),
    Write("db=d", "cpu =1"),
    Write("db=d", "# comment\n\n  cpu,host=b value=3 10000\n"),
    Write("db=d&precision=s", "cpu,host=c value=4 10"),
    Write("db=d&precision=xyz", "cpu,host=c value=5 11"),
    Write("db=d", "log msg=\"line one\nline two\",ok=T 12000"),
    Write("db=d", "c\\,p\\ u,t\\ k=v\\,a value=1 13000"),
    Query("SHOW DATABASES", ""),
    Query("SHOW MEASUREMENTS ON d", ""),
    Query("SHOW MEASUREMENTS", "?db=d"),
    Query("SHOW MEASUREMENTS", ""),
    Query("SHOW MEASUREMENTS ON nope", ""),
    Query("SHOW MEASUREMENTS ON d LIMIT 2 OFFSET 1", ""),
    Query("SHOW RETENTION POLICIES ON d", ""),
    Query("SHOW RETENTION POLICIES", ""),
    Query("SHOW RETENTION POLICIES ON nope", ""),
    Query(
        "CREATE DATABASE e WITH DURATION 1d REPLICATION 1 SHARD DURATION 1h NAME r1",
        "",
    ),
    Query("SHOW RETENTION POLICIES ON e", ""),
    Query("CREATE DATABASE f WITH DURATION 30m", ""),
    Query("CREATE DATABASE y WITH DURATION 2h SHARD DURATION 3h", ""),
    Query("CREATE DATABASE d WITH DURATION 2h", ""),
    Query("CREATE DATABASE z WITH DURATION INF", ""),
    Query("CREATE DATABASE w WITH DURATION 1d REPLICATION 2", ""),
    Query("SHOW RETENTION POLICIES ON w", ""),
    Query("CREATE DATABASE \"my db\"", ""),
    Query("DROP DATABASE nope", ""),
    Query("DROP DATABASE z; SHOW DATABASES", ""),
    Query("show databases;;", ""),
    Query(";", ""),
    Query("", ""),
    Query("CREATE", ""),
    Query("CREATE FOO", ""),
    Query("SHOW", ""),
    Query("DROP", ""),
    Query("DROP DATABASE", ""),
    Query("SHOW RETENTION", ""),
    Query("SHOW RETENTION POLICIES ON", ""),
    Query("SHOW DATABASES extra", ""),
    Query("CREATE DATABASE x WITH", ""),
    Query("CREATE DATABASE x WITH DURATION", ""),
    Query("CREATE DATABASE x WITH DURATION 1x", ""),
    Query("CREATE DATABASE x WITH REPLICATION 0", ""),
    Query("CREATE DATABASE x WITH REPLICATION abc", ""),
    Query("CREATE DATABASE 'x'", ""),
    Query("CREATE DATABASE select", ""),
    Query("SHOW DATABASES; SHOW FOO", ""),
    Query("SHOW DATABASES\nSHOW FOO", ""),
    Query("CREATE DATABASE q WITH NAME r DURATION 1d", ""),
    Query("SELEC 1", ""),
    Query("SHOW DATABASES", "?pretty=true"),
    // SELECT over a small data set.
    Query("CREATE DATABASE s", ""),
    Write(
        "db=s&precision=s",
        "cpu,host=a,region=w usage=1,idle=9i 0\ncpu,host=b,region=w usage=2,idle=8i 0\ncpu,host=a,region=w usage=3,idle=7i 60\ncpu,host=b,region=e usage=4 120\ncpu,host=a,region=w usage=5,idle=5i 180\nmem,host=a used=10i,ok=true,msg=\"x\" 30\nmem,host=a used=12i,ok=false 90",
    ),
    Query("SELECT * FROM cpu", "?db=s"),
    Query("SELECT * FROM s..cpu, s..mem", ""),
    Query("SELECT * FROM /.*/", "?db=s"),
    Query("SELECT usage FROM cpu WHERE host='a'", "?db=s"),
    Query("SELECT usage,host FROM cpu GROUP BY region", "?db=s"),
    Query("SELECT usage FROM cpu GROUP BY *", "?db=s"),
    Query(
        "SELECT usage FROM cpu WHERE usage > 2 AND region != 'e'",
        "?db=s",
    ),
    Query(
        "SELECT usage FROM cpu WHERE host =~ /a|b/ AND (usage < 2 OR usage >= 5)",
        "?db=s",
    ),
    Query("SELECT * FROM cpu WHERE host !~ /a/", "?db=s"),
    Query("SELECT usage FROM cpu WHERE nosuchtag = ''", "?db=s"),
    Query(
        "SELECT usage FROM cpu WHERE time > '1970-01-01T00:01:00Z'",
        "?db=s",
    ),
    Query(
        "SELECT usage FROM cpu WHERE time >= 60s AND time <= 2m",
        "?db=s",
    ),
    Query("SELECT usage FROM cpu WHERE time > now() - 1h", "?db=s"),
    Query("SELECT usage FROM cpu ORDER BY time DESC LIMIT 2", "?db=s"),
    Query(
        "SELECT usage FROM cpu GROUP BY host LIMIT 1 OFFSET 1",
        "?db=s",
    ),
    Query(
        "SELECT usage FROM cpu GROUP BY host SLIMIT 1 SOFFSET 1",
        "?db=s",
    ),
    Query("SELECT usage FROM cpu", "?db=s&epoch=s"),
    Query("SELECT usage FROM cpu", "?db=s&epoch=ms"),
    Query("SELECT usage * 2 + 1 AS x, idle / 2 FROM cpu", "?db=s"),
    Query(
        "SELECT \"usage\"::field, host::tag, region::field FROM cpu LIMIT 1",
        "?db=s",
    ),
    Query("SELECT used, ok, msg FROM mem", "?db=s"),
    Query("SELECT nope FROM cpu", "?db=s"),
    Query("SELECT host FROM cpu", "?db=s"),
    Query("SELECT host, nope FROM cpu", "?db=s"),
    Query("SELECT idle, host FROM cpu", "?db=s"),
    // Points at the same time come in series key order: ties broken by tags shown as columns,
    // hidden, or both; in descending key order under ORDER BY time DESC.
    Query("SELECT usage, region FROM cpu", "?db=s"),
    Query("SELECT region, * FROM cpu", "?db=s"),
    Query(
        "SELECT usage, region, host FROM cpu ORDER BY time DESC",
        "?db=s",
    ),
    Query("SELECT usage FROM cpu ORDER BY time DESC", "?db=s"),
    Query("SELECT * FROM cpu ORDER BY time DESC", "?db=s"),
    Query(
        "SELECT usage FROM cpu GROUP BY region ORDER BY time DESC",
        "?db=s",
    ),
    Query(
        "SELECT usage, host FROM cpu WHERE time <= 60s ORDER BY time DESC LIMIT 2",
        "?db=s",
    ),
    // A transformation meets the tied points in the same order (1.x keeps the first).
    Query("SELECT difference(usage) FROM cpu", "?db=s"),
    Query(
        "SELECT difference(usage) FROM cpu ORDER BY time DESC",
        "?db=s",
    ),
    Query("SELECT *::tag FROM cpu", "?db=s"),
    Query("SELECT *::field FROM cpu", "?db=s"),
    Query("SELECT usage FROM nope", "?db=s"),
    Query("SELECT usage FROM cpu", "?db=nope"),
    Query("SELECT usage FROM cpu", ""),
    Query("SELECT mean(usage) FROM cpu", "?db=s"),
    Query("SELECT mean(*) FROM cpu", "?db=s"),
    Query("SELECT count(*) FROM cpu GROUP BY host", "?db=s"),
    Query("SELECT max(/us/) FROM cpu", "?db=s"),
    Query("SELECT max(usage) FROM cpu", "?db=s"),
    Query("SELECT min(usage) FROM cpu", "?db=s"),
    Query("SELECT first(usage) FROM cpu", "?db=s"),
    Query("SELECT last(usage) FROM cpu GROUP BY *", "?db=s"),
    Query("SELECT first(usage), last(usage) FROM cpu", "?db=s"),
    Query("SELECT max(usage), min(usage) AS low FROM cpu", "?db=s"),
    Query(
        "SELECT spread(usage), median(usage), stddev(usage), sum(usage) FROM cpu",
        "?db=s",
    ),
    Query("SELECT mean(idle) * 2 FROM cpu", "?db=s"),
    Query("SELECT count(msg), first(msg), last(ok) FROM mem", "?db=s"),
    Query(
        "SELECT mean(usage) FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(1m)",
        "?db=s",
    ),
    Query(
        "SELECT mean(usage) FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(1m) fill(none)",
        "?db=s",
    ),
    Query(
        "SELECT mean(usage) FROM cpu WHERE time >= 0 AND time < 5m GROUP BY time(1m) fill(previous)",
        "?db=s",
    ),
    Query(
        "SELECT mean(usage) FROM cpu WHERE time >= 0 AND time < 5m GROUP BY time(1m) fill(linear)",
        "?db=s",
    ),
    Query(
        "SELECT sum(usage), count(usage) FROM cpu WHERE time >= 0 AND time < 5m GROUP BY time(1m), host fill(0)",
        "?db=s",
    ),
    Query(
        "SELECT min(idle) FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(2m, 1m)",
        "?db=s",
    ),
    Query(
        "SELECT max(usage) FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(2m) ORDER BY time DESC",
        "?db=s",
    ),
    Query(
        "SELECT count(usage) FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(2m)",
        "?db=s&epoch=ms",
    ),
    Query("SELECT usage, mean(usage) FROM cpu", "?db=s"),
    Query("SELECT usage FROM cpu GROUP BY time(1m)", "?db=s"),
    Query("SELECT value FROM m ORDER BY value", "?db=s"),
    Query("SHOW TAG KEYS", "?db=s"),
    Query("SHOW TAG KEYS FROM cpu", "?db=s"),
    Query("SHOW TAG KEYS ON s FROM mem LIMIT 1", ""),
    Query("SHOW TAG KEYS WHERE host = 'b'", "?db=s"),
    Query("SHOW TAG KEYS ON nope", ""),
    Query("SHOW TAG VALUES WITH KEY = host", "?db=s"),
    Query(
        "SHOW TAG VALUES FROM cpu WITH KEY IN (host, region)",
        "?db=s",
    ),
    Query(
        "SHOW TAG VALUES WITH KEY =~ /reg/ WHERE host = 'b'",
        "?db=s",
    ),
    Query("SHOW TAG VALUES WITH KEY != host", "?db=s"),
    Query(
        "SHOW TAG VALUES FROM cpu WITH KEY = host LIMIT 1 OFFSET 1",
        "?db=s",
    ),
    Query("SHOW TAG VALUES", "?db=s"),
    Query("SHOW FIELD KEYS", "?db=s"),
    Query("SHOW FIELD KEYS FROM cpu", "?db=s"),
    Query("SHOW FIELD KEYS ON nope", ""),
    Query("SHOW SERIES", "?db=s"),
    Query("SHOW SERIES FROM cpu WHERE host = 'a'", "?db=s"),
    Query("SHOW SERIES LIMIT 2 OFFSET 1", "?db=s"),
    Query("SHOW SERIES ON nope", ""),
    Query("SHOW MEASUREMENTS WITH MEASUREMENT =~ /c.*/", "?db=s"),
    Query("SHOW MEASUREMENTS WITH MEASUREMENT = mem", "?db=s"),
    Query("SHOW MEASUREMENTS WHERE host = 'b'", "?db=s"),
    // Time in a SHOW condition. SHOW SERIES: its range picks shard groups (every series of
    // a shard that overlaps it, even past its points), and a field compared holds for no
    // series. SHOW TAG KEYS and TAG VALUES: 1.x's default index is one per database, so any
    // shard overlapping the range gives every series. The cardinalities but TAG VALUES refuse
    // time. Two shard groups of one week each.
    Query("CREATE DATABASE st", ""),
    Write(
        "db=st&precision=s",
        "cpu,host=a,region=w v=1 0\ncpu,host=b,region=e v=5 1728000\nmem,host=c v=2 1728000",
    ),
    Query("SHOW SERIES WHERE time > '1970-01-15T00:00:00Z'", "?db=st"),
    Query("SHOW SERIES WHERE time > '1970-01-24T00:00:00Z'", "?db=st"),
    Query("SHOW SERIES WHERE time < '1970-01-02T00:00:00Z'", "?db=st"),
    Query("SHOW SERIES WHERE time > '1970-02-02T00:00:00Z'", "?db=st"),
    Query(
        "SHOW SERIES WHERE time >= 0 AND time < '1970-03-01T00:00:00Z'",
        "?db=st",
    ),
    Query("SHOW SERIES WHERE time > now()", "?db=st"),
    Query("SHOW SERIES WHERE time >= 0 AND v > 3", "?db=st"),
    Query(
        "SHOW SERIES WHERE time >= 0 AND (v > 3 OR host = 'a')",
        "?db=st",
    ),
    Query("SHOW SERIES WHERE v > 3", "?db=st"),
    Query("SHOW SERIES WHERE time > 0 OR host = 'a'", "?db=st"),
    Query(
        "SHOW SERIES FROM cpu WHERE time >= 0 AND region = 'e'",
        "?db=st",
    ),
    Query(
        "SHOW SERIES WHERE time > '1970-01-15T00:00:00Z' AND host != 'x'",
        "?db=st",
    ),
    Query(
        "SHOW TAG VALUES WITH KEY = host WHERE time > '1970-01-15T00:00:00Z'",
        "?db=st",
    ),
    Query(
        "SHOW TAG VALUES WITH KEY = host WHERE time > '1970-01-24T00:00:00Z' AND region = 'e'",
        "?db=st",
    ),
    Query(
        "SHOW TAG VALUES WITH KEY = host WHERE time > '1970-02-02T00:00:00Z'",
        "?db=st",
    ),
    Query(
        "SHOW TAG VALUES WITH KEY = host WHERE time > '1970-01-15T00:00:00Z' AND v > 0",
        "?db=st",
    ),
    Query(
        "SHOW TAG KEYS WHERE time < '1970-01-05T00:00:00Z'",
        "?db=st",
    ),
    Query(
        "SHOW TAG KEYS WHERE time > '1970-02-02T00:00:00Z'",
        "?db=st",
    ),
    Query(
        "SHOW TAG VALUES CARDINALITY WITH KEY = host WHERE time >= 0",
        "?db=st",
    ),
    Query("SHOW SERIES CARDINALITY WHERE time >= 0", "?db=st"),
    Query("SHOW SERIES EXACT CARDINALITY WHERE time >= 0", "?db=st"),
    Query("SHOW TAG KEY CARDINALITY WHERE time >= 0", "?db=st"),
    Query("SHOW MEASUREMENT CARDINALITY WHERE time >= 0", "?db=st"),
    Query("SHOW FIELD KEY CARDINALITY WHERE time >= 0", "?db=st"),
    Query("SHOW SERIES EXACT CARDINALITY WHERE host = 'b'", "?db=st"),
    Query("SHOW SERIES CARDINALITY", "?db=st"),
    // Retention policies and deletes.
    Query("CREATE DATABASE ddl", ""),
    Write(
        "db=ddl&precision=s",
        "cpu,host=a,region=w usage=1,idle=9i 0\ncpu,host=b,region=w usage=2,idle=8i 0\ncpu,host=a,region=w usage=3,idle=7i 60\ncpu,host=b,region=e usage=4 120\ncpu,host=a,region=w usage=5,idle=5i 180\nmem,host=a used=10i 30",
    ),
    Query(
        "CREATE RETENTION POLICY r1 ON ddl DURATION 2h REPLICATION 1",
        "",
    ),
    Query(
        "CREATE RETENTION POLICY r2 ON ddl DURATION 1d REPLICATION 1 SHARD DURATION 2h DEFAULT",
        "",
    ),
    Query("SHOW RETENTION POLICIES", "?db=ddl"),
    Query("ALTER RETENTION POLICY r1 ON ddl DURATION 3h DEFAULT", ""),
    Query("SHOW RETENTION POLICIES", "?db=ddl"),
    Query(
        "CREATE RETENTION POLICY r1 ON ddl DURATION 5h REPLICATION 1",
        "",
    ),
    Query(
        "CREATE RETENTION POLICY r1 ON ddl DURATION 3h REPLICATION 1",
        "",
    ),
    Query(
        "CREATE RETENTION POLICY r3 ON nope DURATION 1h REPLICATION 1",
        "",
    ),
    Query("DROP RETENTION POLICY r1 ON ddl", ""),
    Query("DROP RETENTION POLICY nope ON ddl", ""),
    Query("ALTER RETENTION POLICY autogen ON ddl DEFAULT", ""),
    Query("DROP RETENTION POLICY r2 ON ddl", ""),
    Query("CREATE RETENTION POLICY r4 ON ddl DURATION 1h", ""),
    Query("ALTER RETENTION POLICY nope ON ddl DURATION 1h", ""),
    Query("ALTER RETENTION POLICY autogen ON ddl", ""),
    Query("ALTER RETENTION POLICY autogen ON ddl DURATION 30m", ""),
    Query("SHOW RETENTION POLICIES", "?db=ddl"),
    Query("DELETE FROM cpu WHERE host = 'b'", "?db=ddl"),
    Query("SELECT * FROM cpu", "?db=ddl"),
    Query("DELETE WHERE time < 60s", "?db=ddl"),
    Query("SELECT * FROM cpu", "?db=ddl"),
    Query("SHOW SERIES", "?db=ddl"),
    Query("DROP SERIES FROM cpu WHERE region = 'w'", "?db=ddl"),
    Query("SELECT * FROM cpu", "?db=ddl"),
    Query("DROP MEASUREMENT mem", "?db=ddl"),
    Query("SHOW MEASUREMENTS", "?db=ddl"),
    Query("DROP SERIES WHERE time > 0", "?db=ddl"),
    Query("DELETE", "?db=ddl"),
    Query("DELETE FROM cpu", ""),
    Query("DROP MEASUREMENT nope", "?db=ddl"),
    Write("db=ddl", "mem,host=a used=\"now a string\" 100"),
    Query("SELECT * FROM mem", "?db=ddl"),
    // Functions.
    Query("CREATE DATABASE fn", ""),
    Write(
        "db=fn&precision=s",
        "c,h=a v=1,i=1i 0\nc,h=a v=4,i=4i 10\nc,h=a v=2,i=2i 20\nc,h=a v=8,i=8i 30\nc,h=b v=3,i=3i 0\nc,h=b v=3,i=3i 20\nc,h=a v=5,i=5i 40",
    ),
    Query("SELECT derivative(v) FROM c WHERE h='a'", "?db=fn"),
    Query("SELECT derivative(v, 10s) FROM c GROUP BY h", "?db=fn"),
    Query(
        "SELECT non_negative_derivative(v, 10s) FROM c WHERE h='a'",
        "?db=fn",
    ),
    Query("SELECT difference(i) FROM c WHERE h='a'", "?db=fn"),
    Query(
        "SELECT non_negative_difference(v) FROM c WHERE h='a'",
        "?db=fn",
    ),
    Query("SELECT cumulative_sum(i) FROM c WHERE h='a'", "?db=fn"),
    Query("SELECT moving_average(v, 2) FROM c WHERE h='a'", "?db=fn"),
    Query("SELECT elapsed(v, 1s) FROM c WHERE h='a'", "?db=fn"),
    Query(
        "SELECT derivative(mean(v), 10s) FROM c WHERE time >= 0 AND time < 50s GROUP BY time(20s)",
        "?db=fn",
    ),
    Query(
        "SELECT cumulative_sum(mean(v)) FROM c WHERE time >= 0 AND time < 40s GROUP BY time(20s)",
        "?db=fn",
    ),
    Query(
        "SELECT difference(v) FROM c WHERE h='a' ORDER BY time DESC LIMIT 2",
        "?db=fn",
    ),
    Query(
        "SELECT derivative(v) FROM c WHERE h='a' ORDER BY time DESC",
        "?db=fn",
    ),
    Query(
        "SELECT elapsed(v) FROM c WHERE h='a' ORDER BY time DESC",
        "?db=fn",
    ),
    Query(
        "SELECT abs(v), sqrt(v), pow(v, 2), round(v), log(v, 2), ln(v) FROM c WHERE h='a' LIMIT 2",
        "?db=fn",
    ),
    Query("SELECT floor(mean(v)), ceil(max(v) / 3) FROM c", "?db=fn"),
    Query(
        "SELECT percentile(v, 50), percentile(v, 90) FROM c",
        "?db=fn",
    ),
    Query("SELECT percentile(v, 90) FROM c", "?db=fn"),
    Query("SELECT percentile(v, 50) FROM c GROUP BY h", "?db=fn"),
    Query("SELECT count(distinct(v)) FROM c", "?db=fn"),
    Query("SELECT distinct(v) FROM c", "?db=fn"),
    Query("SELECT DISTINCT v FROM c", "?db=fn"),
    Query("SELECT mode(v) FROM c", "?db=fn"),
    Query("SELECT integral(v) FROM c WHERE h='a'", "?db=fn"),
    Query("SELECT integral(v, 10s) FROM c WHERE h='b'", "?db=fn"),
    Query("SELECT derivative(v), v FROM c", "?db=fn"),
    Query("SELECT derivative(mean(v)) FROM c", "?db=fn"),
    Query("SELECT distinct(v), mean(v) FROM c", "?db=fn"),
    // Gap filling, InfluxQL's aggregates and transformations as plan nodes, together.
    Query(
        "SELECT distinct(v) FROM c WHERE time >= 0 AND time < 60s GROUP BY time(20s)",
        "?db=fn",
    ),
    Write("db=fn&precision=s", "l i=1i,f=1 0\nl i=2i,f=2 30"),
    Query(
        "SELECT max(i), max(f) FROM l WHERE time >= 0 AND time < 40s GROUP BY time(10s) fill(linear)",
        "?db=fn",
    ),
    Query(
        "SELECT count(v) FROM c WHERE time >= 0 AND time < 60s GROUP BY time(10s), h fill(1.5)",
        "?db=fn",
    ),
    Query(
        "SELECT percentile(v, 50) FROM c WHERE time >= 0 AND time < 60s GROUP BY time(20s), h fill(previous)",
        "?db=fn",
    ),
    Query(
        "SELECT mode(i), integral(v) FROM c WHERE time >= 0 AND time < 60s GROUP BY time(20s), h",
        "?db=fn",
    ),
    Query(
        "SELECT integral(v, 1s) FROM c WHERE time >= 5s AND time < 60s GROUP BY time(10s), h fill(none)",
        "?db=fn",
    ),
    Query(
        "SELECT integral(v) FROM c WHERE h = 'a' AND time >= 0 AND time < 45s GROUP BY time(15s)",
        "?db=fn",
    ),
    Query(
        "SELECT moving_average(max(v), 2) FROM c WHERE time >= 0 AND time < 60s GROUP BY time(10s) fill(0)",
        "?db=fn",
    ),
    Query(
        "SELECT non_negative_difference(mean(v)) FROM c WHERE time >= 0 AND time < 60s GROUP BY time(10s), h fill(linear) ORDER BY time DESC",
        "?db=fn",
    ),
    Query("SELECT foo(v) FROM c", "?db=fn"),
    Query("SELECT top(v, 3) FROM c", "?db=fn"),
    Query("SELECT top(v, h, 2) FROM c", "?db=fn"),
    Query(
        "SELECT bottom(v, 2), h FROM c WHERE time >= 0 AND time < 40s GROUP BY time(20s)",
        "?db=fn",
    ),
    Query("SELECT top(i, 2) FROM c GROUP BY h", "?db=fn"),
    Query("SELECT top(v, 2), h FROM c WHERE time = 0", "?db=fn"),
    // Selectors (Fletch's selector aggregate): ties, groups, lone selectors' times.
    Query("SELECT last(*) FROM c GROUP BY h", "?db=fn"),
    Query("SELECT first(*) FROM c", "?db=fn"),
    // Last values where a series' last row lacks a field (Fletch skips rows before every
    // series' last values; the bound must be per field, not per row).
    Query("CREATE DATABASE lv", ""),
    Write(
        "db=lv&precision=s",
        "m,h=a x=1,y=1 10\nm,h=a y=2 20\nm,h=b x=5 30\nm,h=b y=7 15\nm,h=c z=1 5\nm,h=c x=2 40",
    ),
    Query("SELECT last(*) FROM m GROUP BY h", "?db=lv"),
    Query("SELECT last(x) FROM m", "?db=lv"),
    Query("SELECT last(x) FROM m GROUP BY *", "?db=lv"),
    Query(
        "SELECT last(y), last(z) FROM m WHERE h = 'a' OR h = 'c' GROUP BY h",
        "?db=lv",
    ),
    Query("SELECT last(x) FROM m WHERE y > 0 GROUP BY h", "?db=lv"),
    Query(
        "SELECT last(x) FROM m WHERE time < 35s GROUP BY h",
        "?db=lv",
    ),
    // Each series' newest row (TSBS's lastpoint, read from the last-value bounds) and its
    // neighbours: a field alone, no GROUP BY, LIMIT 2, OFFSET, a tag condition.
    Query(
        "SELECT * from m group by \"h\" order by time desc limit 1",
        "?db=lv",
    ),
    Query(
        "SELECT x FROM m GROUP BY h ORDER BY time DESC LIMIT 1",
        "?db=lv",
    ),
    Query("SELECT y FROM m ORDER BY time DESC LIMIT 1", "?db=lv"),
    Query("SELECT * FROM m ORDER BY time DESC LIMIT 1", "?db=lv"),
    Query(
        "SELECT * FROM m GROUP BY h ORDER BY time DESC LIMIT 2",
        "?db=lv",
    ),
    Query(
        "SELECT * FROM m GROUP BY h ORDER BY time DESC LIMIT 1 OFFSET 1",
        "?db=lv",
    ),
    Query(
        "SELECT x, y FROM m WHERE h = 'a' OR h = 'b' GROUP BY h ORDER BY time DESC LIMIT 1",
        "?db=lv",
    ),
    Query(
        "SELECT * FROM m WHERE time < 35s GROUP BY h ORDER BY time DESC LIMIT 1",
        "?db=lv",
    ),
    // A newer shard group holding some series: each series' newest row and last values
    // come from whichever shard has them (each shard read from its own bound).
    Write("db=lv&precision=s", "m,h=d x=9 2592000\nm,h=a y=3 2592010"),
    Query(
        "SELECT * FROM m GROUP BY h ORDER BY time DESC LIMIT 1",
        "?db=lv",
    ),
    Query("SELECT last(*) FROM m GROUP BY h", "?db=lv"),
    Query("SELECT x FROM m ORDER BY time DESC LIMIT 1", "?db=lv"),
    Query(
        "SELECT first(v), last(i), min(v), max(i) FROM c WHERE time >= 0 AND time < 60s GROUP BY time(20s)",
        "?db=fn",
    ),
    Query(
        "SELECT max(v) FROM c WHERE time >= 0 AND time < 60s GROUP BY h",
        "?db=fn",
    ),
    // LIMIT and OFFSET count the points of each series (planned as a row number per series).
    Query("SELECT v FROM c GROUP BY h LIMIT 2 OFFSET 1", "?db=fn"),
    Query("SELECT v FROM c WHERE h = 'a' LIMIT 2 OFFSET 3", "?db=fn"),
    Query(
        "SELECT mean(v) FROM c WHERE time >= 0 AND time < 60s GROUP BY time(10s), h ORDER BY time DESC LIMIT 2 OFFSET 1",
        "?db=fn",
    ),
    Query(
        "SELECT derivative(v) FROM c GROUP BY h LIMIT 1 OFFSET 1",
        "?db=fn",
    ),
    Query("SELECT bottom(v, 2), h FROM c WHERE time = 0", "?db=fn"),
    Query("SELECT top(v) FROM c", "?db=fn"),
    Query("SELECT top(v, 0) FROM c", "?db=fn"),
    Query("SELECT top(v, 2), mean(v) FROM c", "?db=fn"),
    // sample(): which points is random in 1.x, so compare what does not depend on the draw.
    Query("SELECT sample(v) FROM c", "?db=fn"),
    Query("SELECT sample(v, 0) FROM c", "?db=fn"),
    Query("SELECT sample(v, 'x') FROM c", "?db=fn"),
    Query("SELECT sample(2, v) FROM c", "?db=fn"),
    Query("SELECT sample(v, 100) FROM c", "?db=fn"),
    Query("SELECT sample(v, 100), h FROM c", "?db=fn"),
    Query("SELECT sample(v, 100) FROM c GROUP BY h", "?db=fn"),
    Query("SELECT sample(h, 2) FROM c", "?db=fn"),
    // Samples sharing rows with other calls (n covers every point, so the draw cannot differ).
    Query("SELECT sample(v, 100), mean(v) FROM c", "?db=fn"),
    Query(
        "SELECT sample(v, 100), max(v), count(i) FROM c GROUP BY h",
        "?db=fn",
    ),
    Query("SELECT sample(*, 100) FROM c WHERE h = 'a'", "?db=fn"),
    Query("SELECT sample(/v|i/, 100) FROM c WHERE h = 'a'", "?db=fn"),
    Query(
        "SELECT sample(v, 100), sum(i) FROM c WHERE time >= 0 AND time < 40s GROUP BY time(20s)",
        "?db=fn",
    ),
    Query(
        "SELECT count(s) FROM (SELECT sample(v, 2) AS s FROM c GROUP BY h) GROUP BY h",
        "?db=fn",
    ),
    Query(
        "SELECT count(s) FROM (SELECT sample(v, 1) AS s FROM c WHERE time >= 0 AND time < 2m GROUP BY time(20s))",
        "?db=fn",
    ),
    // Subqueries and INTO.
    Query(
        "SELECT max(m) FROM (SELECT mean(usage) AS m FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(2m), host)",
        "?db=s",
    ),
    Query(
        "SELECT max(m) FROM (SELECT mean(usage) AS m FROM cpu GROUP BY time(2m), host) WHERE time >= 0 AND time < 4m GROUP BY host",
        "?db=s",
    ),
    Query(
        "SELECT m FROM (SELECT mean(usage) AS m FROM cpu GROUP BY host) WHERE host = 'b'",
        "?db=s",
    ),
    Query(
        "SELECT * FROM (SELECT usage, host FROM cpu WHERE time < 90s)",
        "?db=s",
    ),
    Query(
        "SELECT mean(m) FROM (SELECT max(usage) AS m FROM cpu GROUP BY host)",
        "?db=s",
    ),
    Query(
        "SELECT mean(usage) INTO s.autogen.cpu_2m FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(2m), host",
        "?db=s",
    ),
    Query("SELECT * FROM cpu_2m", "?db=s"),
    Query(
        "SELECT usage INTO cpu_copy FROM cpu WHERE host = 'a'",
        "?db=s",
    ),
    Query("SHOW FIELD KEYS FROM cpu_copy", "?db=s"),
    GetQuery("SELECT idle INTO cpu_idle FROM cpu", "&db=s"),
    Query("SELECT * FROM cpu_idle", "?db=s"),
    // `:MEASUREMENT`: every source measurement into its own name in another database.
    Query("CREATE DATABASE s_copy", ""),
    Query(
        "SELECT * INTO s_copy.autogen.:MEASUREMENT FROM /cpu.*/ WHERE time < 10m GROUP BY *",
        "?db=s",
    ),
    Query("SHOW MEASUREMENTS", "?db=s_copy"),
    Query("SELECT * FROM s_copy..cpu_2m", "?db=s"),
    Query("SHOW SERIES ON s_copy", ""),
    Query(
        "SELECT max(usage) INTO s_copy..:measurement FROM cpu WHERE time < 10m GROUP BY time(1m)",
        "?db=s",
    ),
    Query("SELECT max FROM s_copy..cpu WHERE time < 10m", "?db=s"),
    Query("SELECT usage INTO :MEASUREMENT FROM cpu", "?db=s"),
    Query("SELECT usage INTO s_copy.:MEASUREMENT FROM cpu", "?db=s"),
    // Bound parameters.
    Query(
        "SELECT usage FROM cpu WHERE host = $h",
        "?db=s&params=%7B%22h%22%3A%22b%22%7D",
    ),
    Query(
        "SELECT usage FROM cpu WHERE host = $h AND usage > $u",
        "?db=s&params=%7B%22h%22%3A%7B%22string%22%3A%22a%22%7D%2C%22u%22%3A2%7D",
    ),
    Query(
        "SELECT usage FROM cpu WHERE host = $h",
        "?db=s&params=%7B%22x%22%3A1%7D",
    ),
    Query("SELECT usage FROM cpu WHERE host = $h", "?db=s"),
    // Parameters are bound in every statement, not only SELECT.
    Query(
        "SHOW TAG VALUES FROM cpu WITH KEY = host WHERE host = $h",
        "?db=s&params=%7B%22h%22%3A%22a%22%7D",
    ),
    Query(
        "SHOW SERIES WHERE host = $h",
        "?db=s&params=%7B%22h%22%3A%22b%22%7D",
    ),
    // A tagless measurement (cpu_idle, made by INTO above) has no series with host = 'b'.
    Query("SHOW MEASUREMENTS WHERE host = 'b'", "?db=s"),
    Query("SHOW SERIES FROM cpu_idle WHERE host = ''", "?db=s"),
    StatusOnly(
        "POST",
        "/query?db=s&q=SELECT+usage+FROM+cpu+WHERE+host+%3D+%24h&params=notjson",
        b"",
        "JSON error texts differ between Go and Rust",
    ),
    // Chunked responses and time zones.
    Query(
        "SELECT usage FROM cpu GROUP BY host",
        "?db=s&chunked=true&chunk_size=2",
    ),
    Query(
        "SELECT usage FROM cpu; SELECT used FROM mem",
        "?db=s&chunked=true&chunk_size=1",
    ),
    Query("SHOW DATABASES", "?chunked=true"),
    // 1.x cuts statements by kind: tag keys and values a line per series without `partial`
    // marks, meta statements whole, series and field keys as a SELECT.
    Query("SHOW TAG KEYS", "?db=s&chunked=true"),
    Query(
        "SHOW TAG VALUES WITH KEY =~ /./",
        "?db=s&chunked=true&chunk_size=1",
    ),
    Query("SHOW FIELD KEYS", "?db=s&chunked=true&chunk_size=1"),
    Query("SHOW SERIES", "?db=s&chunked=true&chunk_size=2"),
    Query("SHOW MEASUREMENTS", "?db=s&chunked=true&chunk_size=1"),
    Query("SHOW DATABASES", "?chunked=true&chunk_size=1"),
    Query("SHOW RETENTION POLICIES", "?db=s&chunked=true"),
    Query("SHOW USERS", "?chunked=true"),
    Query(
        "SHOW TAG KEY CARDINALITY",
        "?db=s&chunked=true&chunk_size=1",
    ),
    Query("SHOW SERIES CARDINALITY", "?db=s&chunked=true&chunk_size=1"),
    Query(
        "SHOW SERIES EXACT CARDINALITY",
        "?db=s&chunked=true&chunk_size=1",
    ),
    Query(
        "SHOW TAG KEYS; SHOW MEASUREMENTS; SHOW TAG VALUES WITH KEY = nope",
        "?db=s&chunked=true",
    ),
    Query(
        "SELECT usage FROM cpu WHERE host='a' tz('Europe/Oslo')",
        "?db=s",
    ),
    Query(
        "SELECT mean(usage) FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(2m) tz('America/New_York')",
        "?db=s",
    ),
    Query(
        "SELECT mean(usage) FROM cpu WHERE time >= 0 AND time < 4m GROUP BY time(1d) tz('Asia/Kolkata')",
        "?db=s",
    ),
    Query("SELECT usage FROM cpu tz('Nowhere/Land')", "?db=s"),
    Query("SELECT", ""),
    Query("SELECT value", ""),
    Query("SELECT value FROM", ""),
    Query("SELECT value FROM m WHERE", ""),
    Query("SELECT value FROM m GROUP BY", ""),
    Query("SELECT value FROM m LIMIT x", ""),
    Query("SELECT (value FROM m", ""),
    Query("SELECT value FROM m GROUP BY time(1m", ""),
    Query("SELECT 1", ""),
    GetQuery("CREATE DATABASE g", ""),
    GetQuery("SHOW DATABASES", ""),
    Csv("SHOW DATABASES"),
    Csv("SELECT * FROM s..cpu GROUP BY region; SELECT mean(used) FROM s..mem GROUP BY host"),
    Csv("SHOW TAG VALUES ON s WITH KEY = host"),
    Csv("SELECT * FROM nope.x.y"),
    Query("SELECT * FROM cpu GROUP BY region", "?db=s"),
    // Arithmetic, casts and the errors of #25: division and modulo by zero, `::type` casts,
    // aggregates of unsupported types, nested aggregates, bad regexes, time vs a string.
    Query("CREATE DATABASE ar", ""),
    Write(
        "db=ar",
        "m,host=a f=1.5,i=2i,s=\"str\",b=true 1000000000\nm,host=b f=0,i=0i,s=\"a,b\",b=false 2000000000\nm,host=c f=-7.25,i=-9i,s=\"\",b=true 3000000000",
    ),
    Query("SELECT f / 0, i / 0, f / 2, i / 4 FROM m", "?db=ar"),
    Query("SELECT i % 0, i % 2, f % 2 FROM m", "?db=ar"),
    Query(
        "SELECT sum(i) / 0, sum(i) % 0, mean(f) / 0 FROM m",
        "?db=ar",
    ),
    Query(
        "SELECT i::float / 4, f::integer, s::integer, b::string, i::string FROM m",
        "?db=ar",
    ),
    Query(
        "SELECT f::float, s::string, b::boolean, i::integer, f::string FROM m",
        "?db=ar",
    ),
    Query("SELECT mean(s) FROM m", "?db=ar"),
    Query("SELECT sum(b) FROM m", "?db=ar"),
    Query("SELECT stddev(s) FROM m", "?db=ar"),
    Query("SELECT median(b) FROM m", "?db=ar"),
    Query("SELECT spread(s) FROM m", "?db=ar"),
    Query("SELECT mean(max(f)) FROM m", "?db=ar"),
    Query(
        "SELECT derivative(f) FROM m WHERE time > 0 GROUP BY time(1s)",
        "?db=ar",
    ),
    Query("SELECT f FROM m WHERE time > 'abc'", "?db=ar"),
    Query("SELECT f FROM m WHERE host =~ /[/", "?db=ar"),
    Query("SELECT f FROM m WHERE host =~ /a(/", "?db=ar"),
    Query("SELECT f FROM m WHERE host =~ /a)/", "?db=ar"),
    Query("SELECT f FROM m WHERE host =~ /a**/", "?db=ar"),
    Query("SELECT f FROM m WHERE host =~ /\\q/", "?db=ar"),
    Query("SELECT f FROM m WHERE host =~ /[z-a]/", "?db=ar"),
    Query("SELECT f FROM m WHERE host =~ /a{2,1}/", "?db=ar"),
    Query("SELECT f FROM /[/", "?db=ar"),
    Query("SELECT f FROM m GROUP BY /(/", "?db=ar"),
    Query(
        "SELECT f FROM m WHERE host =~ /^[ab]$/ AND host !~ /b|c/",
        "?db=ar",
    ),
    // mode(): 1.x's tie-breaking (its reducer's walk over the points ordered by value).
    Write(
        "db=ar",
        "md,g=a v=2i,s=\"y\" 1\nmd,g=a v=0i,s=\"x\" 2\nmd,g=b v=1i,s=\"q\" 1\nmd,g=b v=1i,s=\"p\" 2\nmd,g=b v=2i,s=\"p\" 3\nmd,g=b v=2i,s=\"q\" 4\nmd,g=c v=3i,s=\"c\" 1\nmd,g=c v=1i,s=\"a\" 2\nmd,g=c v=3i,s=\"c\" 3\nmd,g=c v=1i,s=\"a\" 4\nmd,g=c v=2i,s=\"b\" 5\nmd,g=d v=5i,s=\"z\" 1\nmd,g=e v=2i,s=\"m\" 1\nmd,g=e v=2i,s=\"m\" 2\nmd,g=e v=1i,s=\"n\" 3\nmd,g=f v=4i,s=\"k\" 1\nmd,g=f v=4i,s=\"k\" 2\nmd,g=f v=9i,s=\"j\" 3\nmd,g=f v=9i,s=\"j\" 4\nmd,g=f v=9i,s=\"j\" 5\nmd,g=f v=0i,s=\"i\" 6",
    ),
    Query("SELECT mode(v), mode(s) FROM md GROUP BY g", "?db=ar"),
    Query("SELECT mode(v) FROM md", "?db=ar"),
    Query(
        "SELECT mode(v) FROM md WHERE time >= 0 AND time < 10 GROUP BY time(3ns), g",
        "?db=ar",
    ),
    // A lone selector beside fields and tags: their values at the point it selects (Grafana's
    // `max(f), host`), the selected point's time, or the bucket's under GROUP BY time.
    Write(
        "db=ar",
        "sx,host=a,dc=x f=1,g=10i,s=\"one\" 1000000000\nsx,host=a,dc=x f=5,g=20i,s=\"two\" 2000000000\nsx,host=b,dc=y f=3,g=30i,s=\"three\" 3000000000\nsx,host=b,dc=y f=2,g=40i,s=\"four\" 4000000000\nsx,host=a,dc=x f=4,g=50i 5000000000\nsy,host=a v=1 1000000000\nsy,host=c v=2 2000000000",
    ),
    Query("SELECT max(f), g, host FROM sx", "?db=ar"),
    Query("SELECT min(f), * FROM sx", "?db=ar"),
    Query("SELECT max(f), g FROM sx GROUP BY host", "?db=ar"),
    Query(
        "SELECT max(f), g FROM sx WHERE time >= 0 AND time < 10s GROUP BY time(2s)",
        "?db=ar",
    ),
    Query("SELECT max(f), min(f), g FROM sx", "?db=ar"),
    Query("SELECT first(s), f FROM sx", "?db=ar"),
    Query("SELECT last(f), s FROM sx", "?db=ar"),
    Query("SELECT max(f), g, host FROM sx GROUP BY dc", "?db=ar"),
    Query("SELECT percentile(f, 50), g FROM sx", "?db=ar"),
    Query(
        "SELECT max(f), g FROM sx WHERE time >= 0 AND time < 10s GROUP BY time(2s) fill(none)",
        "?db=ar",
    ),
    Query("SELECT max(f), f FROM sx", "?db=ar"),
    Query("SELECT max(f) AS mx, g AS gg FROM sx", "?db=ar"),
    Query("SELECT max(f), g*2 FROM sx", "?db=ar"),
    Query("SELECT min(f), * FROM sx GROUP BY host", "?db=ar"),
    Query("SELECT max(f), *::field FROM sx", "?db=ar"),
    Query("SELECT max(f), nosuch FROM sx", "?db=ar"),
    Query("SELECT max(f), mean(g), s FROM sx", "?db=ar"),
    Query("SELECT max(f), g FROM sx, sy", "?db=ar"),
    Query("SELECT max(v), host FROM sy", "?db=ar"),
    Query("SELECT median(f), g FROM sx", "?db=ar"),
    Query(
        "SELECT max(f), g FROM sx WHERE time >= 0 AND time < 10s GROUP BY time(2s) fill(0)",
        "?db=ar",
    ),
    Query(
        "SELECT max(f), g FROM sx WHERE time >= 0 AND time < 10s GROUP BY time(2s) fill(previous)",
        "?db=ar",
    ),
    Query("SELECT max(f) + 1, g FROM sx", "?db=ar"),
    Query(
        "SELECT percentile(f, 50), host FROM sx GROUP BY dc",
        "?db=ar",
    ),
    Query("SELECT max(s), g FROM sx", "?db=ar"),
    Query("SELECT last(f), host FROM sx GROUP BY *", "?db=ar"),
    Query(
        "SELECT max(f), g FROM sx GROUP BY * ORDER BY time DESC",
        "?db=ar",
    ),
    Query("SELECT min(g), s FROM sx WHERE host = 'b'", "?db=ar"),
    Query(
        "SELECT first(f), s FROM sx WHERE time >= 0 AND time < 6s GROUP BY time(3s), host",
        "?db=ar",
    ),
    Query("SELECT max(f), g FROM sx LIMIT 1", "?db=ar"),
    Query("SELECT max(f), g, host FROM sx WHERE time > 100s", "?db=ar"),
    Query("SELECT max(f), *::tag FROM sx", "?db=ar"),
    Query("SELECT max(f), g FROM /^s[xy]$/", "?db=ar"),
    Query(
        "SELECT max(f), g FROM sx WHERE time >= 0 AND time < 10s GROUP BY time(2s) fill(linear)",
        "?db=ar",
    ),
    // Time conditions under OR (no series), GROUP BY time(0s) (no interval), a float modulo
    // 0 (null, on a row that exists), several measurements: the union of their columns and
    // of their tags under GROUP BY *, series in name order whatever FROM says.
    Query("SELECT f FROM sx WHERE time < 2s OR time > 4s", "?db=ar"),
    Query("SELECT f FROM sx WHERE time < 2s OR host = 'b'", "?db=ar"),
    Query(
        "SELECT f FROM sx WHERE (time < 2s OR time > 4s) AND host = 'a'",
        "?db=ar",
    ),
    Query(
        "SELECT count(f) FROM sx WHERE time < 2s OR time > 4s",
        "?db=ar",
    ),
    Query("SELECT mean(f) FROM sx GROUP BY time(0s)", "?db=ar"),
    Query(
        "SELECT mean(f) FROM sx WHERE time >= 0 AND time < 10s GROUP BY time(0s)",
        "?db=ar",
    ),
    Query("SELECT f % 0 FROM sx", "?db=ar"),
    Query("SELECT f % 0.0 FROM sx", "?db=ar"),
    Query("SELECT g % 0 FROM sx", "?db=ar"),
    Query("SELECT count(*) FROM sx, sy", "?db=ar"),
    Query("SELECT count(*) FROM sy, sx", "?db=ar"),
    Query("SELECT * FROM sx, sy GROUP BY *", "?db=ar"),
    Query("SELECT v FROM sx, sy GROUP BY *", "?db=ar"),
    Query("SELECT mean(f) FROM sx WHERE time > now() - 1x", "?db=ar"),
    Query("SELECT mean(f) FROM sx GROUP BY time(1x)", "?db=ar"),
    Query("SELECT mean(f) FROM sx GROUP BY time(1s, 1x)", "?db=ar"),
    Query("SELECT f FROM sx WHERE host =~ /*a/", "?db=ar"),
    Query("SELECT f FROM sx WHERE host =~ /+a/", "?db=ar"),
    Query("SELECT f FROM sx WHERE host =~ /a|*b/", "?db=ar"),
    Query("SELECT f FROM sx WHERE host =~ /(*)/", "?db=ar"),
    Query("SELECT f FROM sx WHERE host !~ /*a/ AND f > 1", "?db=ar"),
    Query("SELECT mean(f) FROM sx GROUP BY time(1s, -1x)", "?db=ar"),
    Query("SELECT count(v) FROM sx, sy GROUP BY *", "?db=ar"),
    Query("SELECT mean(*) FROM sx, sy", "?db=ar"),
    Query("SELECT max(/f|v/) FROM sx, sy", "?db=ar"),
    Query("SELECT min(f), * FROM sx, sy", "?db=ar"),
    Query("SELECT count(*) FROM sx, sy GROUP BY *", "?db=ar"),
    Query("SELECT mean(f) % 0 FROM sx", "?db=ar"),
    Query("SELECT f % 2 FROM sx", "?db=ar"),
    Query("SELECT g % 0.0 FROM sx", "?db=ar"),
    Query(
        "SELECT mean(f) FROM sx WHERE time > 0 AND (time < 2s OR time > 4s)",
        "?db=ar",
    ),
    Query(
        "SELECT nosuch(f) FROM sx WHERE time < 2s OR time > 4s",
        "?db=ar",
    ),
    Query(
        "SELECT mean(f) FROM sx WHERE time >= 0 AND time < 10s GROUP BY time(0s), host",
        "?db=ar",
    ),
    Query("SELECT f + nosuch FROM sx", "?db=ar"),
    Query("SELECT g / 0 FROM sx", "?db=ar"),
    Query("SELECT f % 0, s FROM sx", "?db=ar"),
    Query("SELECT f, s FROM sx", "?db=ar"),
    Query("SELECT s FROM sx", "?db=ar"),
    Query("SELECT host FROM sx", "?db=ar"),
    Query("SELECT nosuch FROM sx", "?db=ar"),
    Query("SELECT *, f % 0 FROM sx", "?db=ar"),
    Query("SELECT f::tag FROM sx", "?db=ar"),
    Query("SELECT host::field FROM sx", "?db=ar"),
    Query("SELECT * FROM sy, sx", "?db=ar"),
    Query("SELECT mean(v) FROM sy, sx", "?db=ar"),
    Query("SELECT v, f FROM sy, sx", "?db=ar"),
    Query("SELECT max(f) FROM sy, sx GROUP BY host", "?db=ar"),
    Query(
        "SELECT * FROM sx, sy GROUP BY host ORDER BY time DESC",
        "?db=ar",
    ),
    Query("SELECT * FROM sy, sx ORDER BY time DESC", "?db=ar"),
    Query("SELECT count(*) FROM sy, sx GROUP BY *", "?db=ar"),
    // Cardinality statements: per measurement, or an estimate of the whole database.
    Query("CREATE DATABASE crd", ""),
    Query("SHOW SERIES CARDINALITY", "?db=ar"),
    Query("SHOW SERIES EXACT CARDINALITY", "?db=ar"),
    Query("SHOW MEASUREMENT CARDINALITY", "?db=ar"),
    Query("SHOW MEASUREMENT EXACT CARDINALITY", "?db=ar"),
    Query("SHOW TAG KEY CARDINALITY", "?db=ar"),
    Query("SHOW TAG KEY EXACT CARDINALITY", "?db=ar"),
    Query("SHOW TAG VALUES CARDINALITY WITH KEY = \"host\"", "?db=ar"),
    Query(
        "SHOW TAG VALUES EXACT CARDINALITY WITH KEY = \"host\"",
        "?db=ar",
    ),
    Query("SHOW FIELD KEY CARDINALITY", "?db=ar"),
    Query("SHOW FIELD KEY EXACT CARDINALITY", "?db=ar"),
    Query("SHOW SERIES EXACT CARDINALITY FROM sx", "?db=ar"),
    Query(
        "SHOW SERIES EXACT CARDINALITY FROM sx WHERE host = 'a'",
        "?db=ar",
    ),
    Query(
        "SHOW TAG VALUES EXACT CARDINALITY FROM sx WITH KEY IN (\"host\", \"dc\")",
        "?db=ar",
    ),
    Query("SHOW SERIES CARDINALITY FROM sx", "?db=ar"),
    Query("SHOW SERIES CARDINALITY WHERE host = 'a'", "?db=ar"),
    Query("SHOW MEASUREMENT CARDINALITY WHERE host = 'a'", "?db=ar"),
    Query(
        "SHOW MEASUREMENT EXACT CARDINALITY WHERE host = 'a'",
        "?db=ar",
    ),
    Query("SHOW MEASUREMENT CARDINALITY FROM sx", "?db=ar"),
    Query(
        "SHOW TAG VALUES CARDINALITY FROM sx WITH KEY = host WHERE dc = 'x'",
        "?db=ar",
    ),
    Query("SHOW FIELD KEY CARDINALITY FROM sx", "?db=ar"),
    Query("SHOW TAG KEY EXACT CARDINALITY FROM /^s[xy]$/", "?db=ar"),
    Query("SHOW SERIES CARDINALITY ON ar", "?db=ar"),
    Query("SHOW SERIES CARDINALITY FROM nope", "?db=ar"),
    Query("SHOW TAG VALUES CARDINALITY WITH KEY =~ /h.*/", "?db=ar"),
    Query("SHOW SERIES CARDINALITY ON crd", "?db=ar"),
    Query("SHOW MEASUREMENT CARDINALITY ON crd", "?db=ar"),
    Query("SHOW SERIES EXACT CARDINALITY ON crd", "?db=ar"),
    Query("SHOW MEASUREMENT EXACT CARDINALITY ON crd", "?db=ar"),
    Query("SHOW TAG KEY CARDINALITY ON crd", "?db=ar"),
    Query("SHOW SERIES CARDINALITY ON nope", "?db=ar"),
    Query("SHOW SERIES CARDINALITY LIMIT 1", "?db=ar"),
    Query(
        "SHOW MEASUREMENT EXACT CARDINALITY WITH MEASUREMENT =~ /sx/",
        "?db=ar",
    ),
    Query("SHOW TAG VALUES CARDINALITY", "?db=ar"),
    Query("SHOW FIELD KEYS CARDINALITY", "?db=ar"),
    Query("SHOW MEASUREMENT CARDINALITY ON nope", "?db=ar"),
    Query("SHOW TAG KEY CARDINALITY ON nope", "?db=ar"),
    Query("SHOW SERIES EXACT CARDINALITY ON nope", "?db=ar"),
    // CSV: tags escaped as in a series key; errors as a CSV `error` field.
    Write(
        "db=ar",
        "t,k=x\\ y,e=a\\=b,c=p\\,q v=1 1000000000\nt,k=plain,e=z,c=w v=2 2000000000",
    ),
    Csv("SELECT * FROM ar..t GROUP BY *"),
    Csv("SELECT v FROM ar..t GROUP BY k"),
    Csv("SELECT f FROM ar..m WHERE host =~ /[/"),
    Csv("SELECT mean(s) FROM ar..m"),
    Csv("SELECT f FROM"),
    // Types: 1.x's type errors in fields, conditions over values of other types (no rows),
    // math of strings and booleans (null), transformations of them (refused); never a
    // DataFusion or Arrow text.
    Query("CREATE DATABASE ty", ""),
    Write(
        "db=ty",
        "m,host=a,dc=x f=1.5,g=2i,s=\"hi\",b=true 1000000000\nm,host=b,dc=y f=2.5,g=3i,s=\"yo\",b=false 2000000000\nn,host=a v=1 1000000000",
    ),
    Query("SELECT s + 'x' FROM m", "?db=ty"),
    Query("SELECT s + 1 FROM m", "?db=ty"),
    Query("SELECT f + s FROM m", "?db=ty"),
    Query("SELECT host + 1 FROM m", "?db=ty"),
    Query("SELECT host + 'x' FROM m", "?db=ty"),
    Query("SELECT b + 1 FROM m", "?db=ty"),
    Query("SELECT f + b FROM m", "?db=ty"),
    Query("SELECT -s FROM m", "?db=ty"),
    Query("SELECT mean(s) FROM m", "?db=ty"),
    Query("SELECT sum(b) FROM m", "?db=ty"),
    Query("SELECT mean(host) FROM m", "?db=ty"),
    Query("SELECT max(s) FROM m", "?db=ty"),
    Query("SELECT min(b) FROM m", "?db=ty"),
    Query("SELECT stddev(s) FROM m", "?db=ty"),
    Query("SELECT median(s) FROM m", "?db=ty"),
    Query("SELECT spread(b) FROM m", "?db=ty"),
    Query("SELECT percentile(s, 50) FROM m", "?db=ty"),
    Query("SELECT derivative(s) FROM m", "?db=ty"),
    Query("SELECT mean(f) + s FROM m", "?db=ty"),
    Query("SELECT mean(f) * 'x' FROM m", "?db=ty"),
    Query("SELECT f * 'x' FROM m", "?db=ty"),
    Query("SELECT f FROM m WHERE time > 'abc'", "?db=ty"),
    Query("SELECT f FROM m WHERE time > 'x' + 1", "?db=ty"),
    Query("SELECT f FROM m WHERE f > 'x'", "?db=ty"),
    Query("SELECT f FROM m WHERE s > 1", "?db=ty"),
    Query("SELECT f FROM m WHERE s + 1 > 1", "?db=ty"),
    Query("SELECT f FROM m WHERE host + 1 = 2", "?db=ty"),
    Query("SELECT f FROM m WHERE b > 1", "?db=ty"),
    Query("SELECT f FROM m WHERE f =~ /x/", "?db=ty"),
    Query("SELECT f FROM m WHERE g = 'x'", "?db=ty"),
    Query("SELECT f / 0 FROM m", "?db=ty"),
    Query("SELECT g / 0 FROM m", "?db=ty"),
    Query("SELECT g % 0 FROM m", "?db=ty"),
    Query("SELECT f::string + 'x' FROM m", "?db=ty"),
    Query("SELECT s::float FROM m", "?db=ty"),
    Query("SELECT b::integer FROM m", "?db=ty"),
    Query("SELECT abs(s) FROM m", "?db=ty"),
    Query("SELECT sqrt(b) FROM m", "?db=ty"),
    Query("SELECT pow(f, s) FROM m", "?db=ty"),
    Query("SELECT atan2(s, f) FROM m", "?db=ty"),
    Query("SELECT log(f, 'x') FROM m", "?db=ty"),
    Query("SELECT round(host) FROM m", "?db=ty"),
    Query("SELECT floor(s) FROM m", "?db=ty"),
    Query("SELECT count(f) + count(s) FROM m", "?db=ty"),
    Query("SELECT sum(f) / sum(g) FROM m", "?db=ty"),
    Query("SELECT max(f) - min(s) FROM m", "?db=ty"),
    Query("SELECT f & g FROM m", "?db=ty"),
    Query("SELECT f & 1 FROM m", "?db=ty"),
    Query("SELECT g & 1 FROM m", "?db=ty"),
    Query("SELECT b & true FROM m", "?db=ty"),
    Query("SELECT b | 1 FROM m", "?db=ty"),
    Query("SELECT g ^ f FROM m", "?db=ty"),
    Query("SELECT s & s FROM m", "?db=ty"),
    Query("SELECT top(s, 1) FROM m", "?db=ty"),
    Query("SELECT top(f, s) FROM m", "?db=ty"),
    Query("SELECT bottom(b, 1) FROM m", "?db=ty"),
    Query("SELECT cumulative_sum(s) FROM m", "?db=ty"),
    Query("SELECT difference(b) FROM m", "?db=ty"),
    Query("SELECT moving_average(s, 2) FROM m", "?db=ty"),
    Query("SELECT integral(s) FROM m", "?db=ty"),
    Query("SELECT non_negative_derivative(host) FROM m", "?db=ty"),
    Query("SELECT elapsed(s) FROM m", "?db=ty"),
    Query("SELECT f FROM m WHERE 1 = 1", "?db=ty"),
    Query("SELECT f FROM m WHERE 'a' = 'a'", "?db=ty"),
    Query("SELECT f FROM m WHERE f + 1", "?db=ty"),
    Query("SELECT f FROM m WHERE f", "?db=ty"),
    Query("SELECT f FROM m WHERE s", "?db=ty"),
    Query("SELECT f FROM m WHERE b", "?db=ty"),
    Query("SELECT f FROM m WHERE host", "?db=ty"),
    Query("SELECT 1 + 1 FROM m", "?db=ty"),
    Query("SELECT 'x' FROM m", "?db=ty"),
    Query("SELECT f, 1 FROM m", "?db=ty"),
    Query("SELECT sum(f) FROM m WHERE time > 'x'", "?db=ty"),
    Query("SELECT f FROM m WHERE time = 1 OR host = 'a'", "?db=ty"),
    Query("SELECT f FROM m WHERE time > now() - 'x'", "?db=ty"),
    Query("SELECT f FROM m WHERE time > now() + s", "?db=ty"),
    Query("SELECT f FROM m WHERE s != 1", "?db=ty"),
    Query("SELECT f FROM m WHERE f != 'x'", "?db=ty"),
    Query("SELECT f FROM m WHERE g != 'x'", "?db=ty"),
    Query("SELECT f FROM m WHERE b != 1", "?db=ty"),
    Query("SELECT f FROM m WHERE b = true", "?db=ty"),
    Query("SELECT f FROM m WHERE b != 'x'", "?db=ty"),
    Query("SELECT f FROM m WHERE host != 1", "?db=ty"),
    Query("SELECT f FROM m WHERE host = 1", "?db=ty"),
    Query("SELECT f FROM m WHERE host > 'a'", "?db=ty"),
    Query("SELECT f FROM m WHERE s > 'a'", "?db=ty"),
    Query("SELECT f FROM m WHERE s !~ /x/", "?db=ty"),
    Query("SELECT f FROM m WHERE f !~ /x/", "?db=ty"),
    Query("SELECT f FROM m WHERE f + 1 AND host = 'a'", "?db=ty"),
    Query("SELECT f FROM m WHERE (f + 1) OR host = 'a'", "?db=ty"),
    Query("SELECT f FROM m WHERE host = 'a' AND b", "?db=ty"),
    Query("SELECT f FROM m WHERE f = true", "?db=ty"),
    Query("SELECT f FROM m WHERE 1 > 0", "?db=ty"),
    Query("SELECT f FROM m WHERE f > 1 + 'x'", "?db=ty"),
    Query("SELECT non_negative_derivative(s) FROM m", "?db=ty"),
    Query("SELECT non_negative_difference(b) FROM m", "?db=ty"),
    Query("SELECT integral(s) FROM m", "?db=ty"),
    Query("SELECT elapsed(s) FROM m", "?db=ty"),
    Query("SELECT derivative(b) FROM m", "?db=ty"),
    Query("SELECT max(b) FROM m", "?db=ty"),
    Query("SELECT first(b), last(b) FROM m", "?db=ty"),
    Query("SELECT max(s) FROM m", "?db=ty"),
    Query("SELECT spread(s) FROM m", "?db=ty"),
    Query("SELECT top(b, 1) FROM m", "?db=ty"),
    Query("SELECT bottom(s, 1) FROM m", "?db=ty"),
    Query("SELECT percentile(b, 50) FROM m", "?db=ty"),
    Query("SELECT median(b) FROM m", "?db=ty"),
    Query("SELECT sum(s) FROM m", "?db=ty"),
    Query("SELECT mean(b) FROM m", "?db=ty"),
    Query("SELECT min(b), max(b) FROM m", "?db=ty"),
    Query("SELECT min(b), f FROM m", "?db=ty"),
    Query("SELECT f FROM m WHERE b = true AND s = 'hi'", "?db=ty"),
    Query("SELECT f FROM m WHERE b = 1 OR host = 'a'", "?db=ty"),
    Query(
        "SELECT mean(f) FROM m WHERE time < 3s GROUP BY time(1s) fill('x')",
        "?db=ty",
    ),
    Query(
        "SELECT mean(f) FROM m WHERE time < 3s GROUP BY time(1s) fill(x)",
        "?db=ty",
    ),
    Query(
        "SELECT mean(f) FROM m WHERE time < 3s GROUP BY time(1s) fill(true)",
        "?db=ty",
    ),
    Query(
        "SELECT mean(f) FROM m WHERE time < 3s GROUP BY time(1s) fill(1, 2)",
        "?db=ty",
    ),
    Query(
        "SELECT mean(f) FROM m WHERE time < 3s GROUP BY time(1s) fill()",
        "?db=ty",
    ),
    Query(
        "SELECT mean(f) FROM m WHERE time < 3s GROUP BY time(1s) fill(NULL)",
        "?db=ty",
    ),
    Query(
        "SELECT mean(f) FROM m WHERE time < 3s GROUP BY time(1s) fill",
        "?db=ty",
    ),
    Query(
        "SELECT mean(f) FROM m WHERE time < 3s GROUP BY time(1s) fill(-1)",
        "?db=ty",
    ),
    Query(
        "SELECT max(b), min(b) FROM m WHERE time < 3s GROUP BY time(1s)",
        "?db=ty",
    ),
    Query("SELECT (s + 1) * 2, f FROM m", "?db=ty"),
    Query("SELECT f FROM m WHERE (s + 1 > 1 OR host = 'b')", "?db=ty"),
    Query("SELECT count(f) FROM m WHERE f > 'x' OR g = 2", "?db=ty"),
    Query(
        "SELECT mean(f) FROM m WHERE s =~ /h/ AND b = true",
        "?db=ty",
    ),
    Query("SELECT f FROM m WHERE f::string = 'x'", "?db=ty"),
    Query("SELECT f FROM m WHERE s::float > 1", "?db=ty"),
    Query("SELECT f FROM m WHERE f::integer = 1", "?db=ty"),
    Query("SELECT f FROM m WHERE nope > 1", "?db=ty"),
    Query("SELECT f FROM m WHERE nope = 1", "?db=ty"),
    Query("SELECT f FROM m WHERE nope = ''", "?db=ty"),
    Query("SELECT f FROM m WHERE s::string = 'hi'", "?db=ty"),
    Query("SELECT f FROM m WHERE g::float > 2.5", "?db=ty"),
    // mode() of booleans: true unless there are more falses.
    Query("CREATE DATABASE mb", ""),
    Write(
        "db=mb",
        "a b=true 1\na b=false 2\na b=false 3\nc b=false 1\nc b=false 2\nc b=false 3\nc b=true 4\nd b=true 1\nd b=true 2\nd b=false 3\nd b=false 4\nd b=false 5\ne b=false 1\ne b=true 2\nf b=false 1\ng b=false 1\ng b=false 2\ng b=true 3\ng b=true 4\ng b=true 5\ng b=false 6",
    ),
    Query("SELECT mode(b) FROM a", "?db=mb"),
    Query("SELECT mode(b) FROM c", "?db=mb"),
    Query("SELECT mode(b) FROM d", "?db=mb"),
    Query("SELECT mode(b) FROM e", "?db=mb"),
    Query("SELECT mode(b) FROM f", "?db=mb"),
    Query("SELECT mode(b) FROM g", "?db=mb"),
    Query("SELECT mode(b) FROM /./", "?db=mb"),
    Query(
        "SELECT mode(b) FROM g WHERE time < 10 GROUP BY time(3ns)",
        "?db=mb",
    ),
    Query("SELECT mode(b) FROM m", "?db=ty"),
    Query("SELECT f FROM m WHERE f > now()", "?db=ty"),
    Query("SELECT f FROM m WHERE now() > 1 OR host = 'a'", "?db=ty"),
    // Continuous queries: kept with their sources and target qualified, listed per database.
    Query("CREATE DATABASE cqd", ""),
    Query("CREATE DATABASE cqe", ""),
    Query(
        "CREATE CONTINUOUS QUERY c1 ON cqd BEGIN SELECT mean(f) INTO m2 FROM m GROUP BY time(1m) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c1 ON cqd BEGIN SELECT mean(f) INTO m2 FROM m GROUP BY time(1m) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c1 ON cqd BEGIN SELECT mean(f) INTO m3 FROM m GROUP BY time(1m) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c2 ON cqd RESAMPLE EVERY 2m FOR 5m BEGIN SELECT mean(f) AS mf, max(g) INTO cqd.autogen.m3 FROM cqd.autogen.m WHERE host = 'a' GROUP BY time(1m, 10s), host fill(0) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c3 ON cqd RESAMPLE FOR 5m BEGIN SELECT count(*) INTO \"cqd\".\"autogen\".:MEASUREMENT FROM /.*/ GROUP BY time(1m),* END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c4 ON cqd BEGIN SELECT mean(f) INTO cqe..m5 FROM (SELECT f FROM m) GROUP BY time(1m) END",
        "",
    ),
    GetQuery(
        "CREATE CONTINUOUS QUERY c5 ON cqd BEGIN SELECT max(f) INTO m5 FROM m WHERE time > now() - 1h GROUP BY time(1m) tz('Europe/Paris') END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c6 ON nodb BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY \"c 7\" ON cqd BEGIN SELECT mean(\"f x\") INTO \"m 5\" FROM m GROUP BY time(1m) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c8 ON cqd BEGIN SELECT f INTO m5 FROM m GROUP BY time(1m) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c9 ON cqd BEGIN SELECT mean(f) INTO m5 FROM m END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c9 ON cqd BEGIN SELECT mean(f) FROM m GROUP BY time(1m) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c9 ON cqd RESAMPLE EVERY 1m FOR 30s BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
        "",
    ),
    Query(
        "CREATE CONTINUOUS QUERY c9 ON cqd RESAMPLE BEGIN SELECT mean(f) INTO m5 FROM m GROUP BY time(1m) END",
        "",
    ),
    Query("CREATE CONTINUOUS QUERY c9 BEGIN SELECT 1 END", ""),
    Query("SHOW CONTINUOUS QUERIES", ""),
    Query("SHOW CONTINUOUS", ""),
    Query("DROP CONTINUOUS QUERY c1 ON cqd", ""),
    Query("DROP CONTINUOUS QUERY c1 ON cqd", ""),
    Query("DROP CONTINUOUS QUERY cx ON nodb", ""),
    Query("DROP CONTINUOUS QUERY c2", "?db=cqd"),
    GetQuery("DROP CONTINUOUS QUERY c2 ON cqd", ""),
    Query("SHOW CONTINUOUS QUERIES", ""),
    Query("DROP DATABASE cqe", ""),
    Query("SHOW CONTINUOUS QUERIES", ""),
    Query("SHOW CONTINUOUS QUERIES", "?chunked=true"),
    Query("DROP DATABASE cqd", ""),
    Query("SHOW CONTINUOUS QUERIES", ""),
    // Subscriptions: the statements, their checks and texts, and the listing (what they send
    // is tests/tests/subscriptions.rs'). Destinations nobody writes to.
    Query("CREATE DATABASE subs", ""),
    Query("CREATE DATABASE subs2", ""),
    Query(
        "CREATE RETENTION POLICY r2 ON subs DURATION 1h REPLICATION 1",
        "",
    ),
    Query("SHOW SUBSCRIPTIONS", ""),
    Query(
        "CREATE SUBSCRIPTION s0 ON subs.autogen DESTINATIONS ALL 'udp://127.0.0.1:9'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s0 ON subs.autogen DESTINATIONS ALL 'udp://127.0.0.1:9'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s1 ON subs.r2 DESTINATIONS ANY 'http://127.0.0.1:9', 'https://u:p@127.0.0.1:9/x'",
        "",
    ),
    Query(
        "create subscription \"s 2\" on \"subs\".\"autogen\" destinations any 'udp://[::1]:9'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s3 ON subs2.autogen DESTINATIONS ALL 'udp://127.0.0.1:9'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs.nope DESTINATIONS ALL 'udp://127.0.0.1:9'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON nodb.autogen DESTINATIONS ALL 'udp://127.0.0.1:9'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs.autogen DESTINATIONS ALL 'ftp://127.0.0.1:9'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs.autogen DESTINATIONS ALL 'http://127.0.0.1'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs.autogen DESTINATIONS ANY 'udp://h:1', 'not a url'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs DESTINATIONS ALL 'udp://h:1'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs .autogen DESTINATIONS ALL 'udp://h:1'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs. autogen DESTINATIONS ALL 'udp://h:1'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs.autogen DESTINATIONS SOME 'udp://h:1'",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs.autogen DESTINATIONS ALL",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs.autogen DESTINATIONS ALL 'udp://h:1',",
        "",
    ),
    Query(
        "CREATE SUBSCRIPTION s4 ON subs.autogen DESTINATIONS ALL udp",
        "",
    ),
    Query("CREATE SUBSCRIPTION ON subs.autogen", ""),
    Query("SHOW SUBSCRIPTIONS", ""),
    Query("SHOW SUBSCRIPTIONS", "?chunked=true"),
    Csv("SHOW SUBSCRIPTIONS"),
    Query("SHOW SUBSCRIPTIONS ON subs", ""),
    GetQuery(
        "CREATE SUBSCRIPTION s5 ON subs.autogen DESTINATIONS ALL 'udp://127.0.0.1:9'",
        "",
    ),
    Query("DROP SUBSCRIPTION s0 ON subs.autogen", ""),
    Query("DROP SUBSCRIPTION s0 ON subs.autogen", ""),
    Query("DROP SUBSCRIPTION s0 ON subs.nope", ""),
    Query("DROP SUBSCRIPTION s0 ON nodb.autogen", ""),
    Query("DROP SUBSCRIPTION s0 ON subs", ""),
    Query("DROP SUBSCRIPTION s0", ""),
    Query("DROP RETENTION POLICY r2 ON subs", ""),
    Query("SHOW SUBSCRIPTIONS", ""),
    Query("DROP DATABASE subs", ""),
    Query("SHOW SUBSCRIPTIONS", ""),
    Query("DROP DATABASE subs2", ""),
    Query("SHOW SUBSCRIPTIONS", ""),
    // Several transformations or forecasts in one field, and aggregates beside
    // transformations (1.x lines their points up by time); fill of buckets where a series
    // has points of other fields only.
    Query("CREATE DATABASE nest", ""),
    Write(
        "db=nest&precision=s",
        "m,h=a f=1,i=10i 0\nm,h=a f=3,i=14i 10\nm,h=a f=4 20\nm,h=a f=8,i=21i 30\nm,h=a i=30i 40\nm,h=a f=15,i=31i 50\nm,h=a f=16,i=40i 60\nm,h=b f=2,i=1i 5\nm,h=b f=5,i=3i 15\nm,h=b f=5,i=9i 25\nm,h=b f=1,i=12i 35\nm,h=b f=7,i=13i 45",
    ),
    Query("SELECT derivative(f) + derivative(i) FROM m", "?db=nest"),
    Query(
        "SELECT derivative(f) + derivative(i) FROM m GROUP BY h",
        "?db=nest",
    ),
    Query("SELECT derivative(f) + difference(i), f FROM m", "?db=nest"),
    Query(
        "SELECT derivative(f, 10s) / difference(f) AS r FROM m GROUP BY h",
        "?db=nest",
    ),
    Query(
        "SELECT moving_average(f, 2) - moving_average(f, 3) FROM m GROUP BY *",
        "?db=nest",
    ),
    Query("SELECT derivative(moving_average(f, 2)) FROM m", "?db=nest"),
    Query(
        "SELECT cumulative_sum(f) * difference(f) FROM m WHERE h = 'a'",
        "?db=nest",
    ),
    Query(
        "SELECT cumulative_sum(f) * difference(f) FROM m WHERE h = 'a' ORDER BY time DESC",
        "?db=nest",
    ),
    Query(
        "SELECT elapsed(f) + elapsed(i) FROM m WHERE h = 'b'",
        "?db=nest",
    ),
    Query(
        "SELECT difference(f) + difference(f) * 2 - cumulative_sum(i) FROM m WHERE h = 'a'",
        "?db=nest",
    ),
    Query(
        "SELECT abs(difference(f) - difference(i)) FROM m WHERE h = 'a'",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(f) + derivative(i), difference(f) FROM m WHERE h = 'a'",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)) + difference(max(f)) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)) + difference(max(f)) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(0)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(moving_average(mean(f), 2)) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT moving_average(mean(f),2) * count(f) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) * 2 FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT abs(holt_winters(mean(f), 2, 0)) AS a FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(holt_winters(mean(f), 3, 0)) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(holt_winters(mean(f), 3, 0), 1s) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT holt_winters(derivative(mean(f)), 2, 0) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 0) + 1 FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) * 2, mean(f) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) + holt_winters(max(f), 2, 0) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) * 2 FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s) ORDER BY time DESC",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(f) + derivative(i) FROM m WHERE time >= 20s",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)) + difference(max(f)) FROM m WHERE time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(0)",
        "?db=nest",
    ),
    Query(
        "SELECT difference(max(f)) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(0)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)), difference(max(f)) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(0)",
        "?db=nest",
    ),
    Query(
        "SELECT moving_average(mean(f),2), count(f) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT mean(f) FROM (SELECT mean(f) AS f FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(0)) GROUP BY h",
        "?db=nest",
    ),
    Query(
        "SELECT f FROM (SELECT mean(f) AS f FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(0)) GROUP BY h",
        "?db=nest",
    ),
    Query(
        "SELECT moving_average(mean(f),2), count(f) FROM m WHERE time >= 10s AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)), count(f), max(i) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)), count(f) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s) ORDER BY time DESC",
        "?db=nest",
    ),
    Query(
        "SELECT cumulative_sum(mean(f)), sum(f) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s) fill(0)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)), count(f) FROM m WHERE time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)), f FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT derivative(mean(f)), mean(f) * 2 FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s)",
        "?db=nest",
    ),
    Query(
        "SELECT mean(f), mean(i) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(previous)",
        "?db=nest",
    ),
    Query(
        "SELECT mean(f), max(i) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(linear)",
        "?db=nest",
    ),
    Query(
        "SELECT mean(f) FROM m WHERE time >= 0 AND time < 70s GROUP BY time(10s), h fill(-1)",
        "?db=nest",
    ),
    Query("DROP DATABASE nest", ""),
    // Technical analysis and Holt-Winters: every function, raw and over GROUP BY time
    // buckets (with gaps), hold periods, warm-up types, order, and their errors.
    Query("CREATE DATABASE hw", ""),
    Write(
        "db=hw&precision=s",
        "hw,host=a f=10.0000,i=0i,s=\"x0\",b=false 0\nhw,host=a f=12.1360,i=3i,s=\"x1\",b=true 60\nhw,host=a f=14.0918,i=6i,s=\"x2\",b=false 120\nhw,host=a f=15.7074,i=2i,s=\"x0\",b=true 180\nhw,host=a f=16.8597,i=5i,s=\"x1\",b=false 240\nhw,host=a f=17.4770,i=1i,s=\"x2\",b=true 300\nhw,host=a f=17.5465,i=4i,s=\"x0\",b=false 360\nhw,host=a f=15.2056,i=6i,s=\"x0\",b=true 540\nhw,host=a f=14.0472,i=2i,s=\"x1\",b=false 600\nhw,host=a f=12.9936,i=5i,s=\"x2\",b=true 660\nhw,host=a f=12.2160,i=1i,s=\"x0\",b=false 720\nhw,host=a f=11.8549,i=4i,s=\"x1\",b=true 780\nhw,host=a f=12.0052,i=0i,s=\"x2\",b=false 840\nhw,host=a f=13.9334,i=6i,s=\"x1\",b=false 960\nhw,host=a f=15.6090,i=2i,s=\"x2\",b=true 1020\nhw,host=a f=17.6029,i=5i,s=\"x0\",b=false 1080\nhw,host=a f=19.7506,i=1i,s=\"x1\",b=true 1140\nhw,host=a f=21.8708,i=4i,s=\"x2\",b=false 1200\nhw,host=a f=23.7849,i=0i,s=\"x0\",b=true 1260\nhw,host=a f=25.3375,i=3i,s=\"x1\",b=false 1320\nhw,host=a f=26.4378,i=1i,s=\"x2\",b=false 1560\nhw,host=a f=25.5606,i=4i,s=\"x0\",b=true 1620\nhw,host=a f=24.4566,i=0i,s=\"x1\",b=false 1680\nhw,host=a f=23.3023,i=3i,s=\"x2\",b=true 1740\nhw,host=a f=22.2799,i=6i,s=\"x0\",b=false 1800\nhw,host=a f=21.5569,i=2i,s=\"x1\",b=true 1860\nhw,host=a f=21.2680,i=5i,s=\"x2\",b=false 1920\nhw,host=a f=21.5000,i=1i,s=\"x0\",b=true 1980\nhw,host=a f=22.2825,i=4i,s=\"x1\",b=false 2040\nhw,host=a f=23.5843,i=0i,s=\"x2\",b=true 2100\nhw,host=a f=25.3171,i=3i,s=\"x0\",b=false 2160\nhw,host=a f=27.3453,i=6i,s=\"x1\",b=true 2220\nhw,host=a f=29.5006,i=2i,s=\"x2\",b=false 2280\nhw,host=a f=31.6008,i=5i,s=\"x0\",b=true 2340\nhw,host=b f=17.0000,i=0i 0\nhw,host=b f=16.8673,i=10i 120\nhw,host=b f=17.3791,i=9i 240\nhw,host=b f=18.2878,i=8i 360\nhw,host=b f=19.2484,i=7i 480\nhw,host=b f=19.9034,i=6i 600\nhw,host=b f=19.9700,i=5i 720\nhw,host=b f=19.3094,i=4i 840\nhw,host=b f=17.9609,i=3i 960\nhw,host=b f=16.1324,i=2i 1080\nhw,host=b f=14.1490,i=1i 1200\nhw,host=b f=12.3740,i=0i 1320\nhw,host=b f=11.1195,i=10i 1440\nhw,host=b f=10.5702,i=9i 1560\nhw,host=b f=10.7383,i=8i 1680\nhw,host=b f=11.4601,i=7i 1800\nhw,host=b f=12.4365,i=6i 1920\nhw,host=b f=13.3060,i=5i 2040\nhw,host=b f=13.7334,i=4i 2160\nhw,host=b f=13.4915,i=3i 2280",
    ),
    Write(
        "db=hw&precision=s",
        "flat f=0,g=5 0\nflat f=0,g=5 60\nflat f=0,g=5 120\nflat f=0,g=5 180\nflat f=0,g=5 240\nflat f=0,g=5 300",
    ),
    Query(
        "SELECT exponential_moving_average(f, 4) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(i, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(mean(f), 3) FROM hw WHERE time >= 10m AND time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 2) FROM flat",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(max(f), 5, 2) FROM hw WHERE time >= 5m AND time < 35m GROUP BY time(3m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 3, 1, 'simple') AS k FROM hw WHERE host = 'b' LIMIT 4 OFFSET 2",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 3, -1, 'exponential') FROM hw WHERE host = 'a' AND time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 2, 0, 'linear') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 2, 0, 1) FROM hw",
        "?db=hw",
    ),
    Query("SELECT exponential_moving_average(f) FROM hw", "?db=hw"),
    Query("SELECT exponential_moving_average(f, 0) FROM hw", "?db=hw"),
    Query(
        "SELECT exponential_moving_average(f, 2.5) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 2, -2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 2, 'x') FROM hw",
        "?db=hw",
    ),
    Query("SELECT exponential_moving_average(s, 2) FROM hw", "?db=hw"),
    Query("SELECT exponential_moving_average(b, 2) FROM hw", "?db=hw"),
    Query(
        "SELECT exponential_moving_average(mean(f), 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 2) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 4) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(i, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(mean(f), 3) FROM hw WHERE time >= 10m AND time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 2) FROM flat",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(max(f), 5, 2) FROM hw WHERE time >= 5m AND time < 35m GROUP BY time(3m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 3, 1, 'simple') AS k FROM hw WHERE host = 'b' LIMIT 4 OFFSET 2",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 3, -1, 'exponential') FROM hw WHERE host = 'a' AND time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 2, 0, 'linear') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 2, 0, 1) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 0) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 2.5) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 2, -2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 2, 'x') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(s, 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(b, 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(mean(f), 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT double_exponential_moving_average(f, 2) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 4) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(i, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(mean(f), 3) FROM hw WHERE time >= 10m AND time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 2) FROM flat",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(max(f), 5, 2) FROM hw WHERE time >= 5m AND time < 35m GROUP BY time(3m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 3, 1, 'simple') AS k FROM hw WHERE host = 'b' LIMIT 4 OFFSET 2",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 3, -1, 'exponential') FROM hw WHERE host = 'a' AND time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 2, 0, 'linear') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 2, 0, 1) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 0) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 2.5) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 2, -2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 2, 'x') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(s, 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(b, 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(mean(f), 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_moving_average(f, 2) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(f, 4) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(i, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(mean(f), 3) FROM hw WHERE time >= 10m AND time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query("SELECT relative_strength_index(f, 2) FROM flat", "?db=hw"),
    Query(
        "SELECT relative_strength_index(max(f), 5, 2) FROM hw WHERE time >= 5m AND time < 35m GROUP BY time(3m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(f, 3, 1, 'simple') AS k FROM hw WHERE host = 'b' LIMIT 4 OFFSET 2",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(f, 3, -1, 'exponential') FROM hw WHERE host = 'a' AND time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(f, 2, 0, 'linear') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(f, 2, 0, 1) FROM hw",
        "?db=hw",
    ),
    Query("SELECT relative_strength_index(f) FROM hw", "?db=hw"),
    Query("SELECT relative_strength_index(f, 0) FROM hw", "?db=hw"),
    Query("SELECT relative_strength_index(f, 2.5) FROM hw", "?db=hw"),
    Query("SELECT relative_strength_index(f, 2, -2) FROM hw", "?db=hw"),
    Query(
        "SELECT relative_strength_index(f, 2, 'x') FROM hw",
        "?db=hw",
    ),
    Query("SELECT relative_strength_index(s, 2) FROM hw", "?db=hw"),
    Query("SELECT relative_strength_index(b, 2) FROM hw", "?db=hw"),
    Query(
        "SELECT relative_strength_index(mean(f), 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(f, 2) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 4) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(i, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(mean(f), 3) FROM hw WHERE time >= 10m AND time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 2) FROM flat",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(max(f), 5, 2) FROM hw WHERE time >= 5m AND time < 35m GROUP BY time(3m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 3, 1, 'simple') AS k FROM hw WHERE host = 'b' LIMIT 4 OFFSET 2",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 3, -1, 'exponential') FROM hw WHERE host = 'a' AND time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 2, 0, 'linear') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 2, 0, 1) FROM hw",
        "?db=hw",
    ),
    Query("SELECT triple_exponential_derivative(f) FROM hw", "?db=hw"),
    Query(
        "SELECT triple_exponential_derivative(f, 0) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 2.5) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 2, -2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 2, 'x') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(s, 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(b, 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(mean(f), 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 2) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_efficiency_ratio(f, 4) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_efficiency_ratio(i, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_efficiency_ratio(mean(f), 3) FROM hw WHERE time >= 10m AND time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query("SELECT kaufmans_efficiency_ratio(f, 2) FROM flat", "?db=hw"),
    Query(
        "SELECT kaufmans_efficiency_ratio(max(f), 5, 2) FROM hw WHERE time >= 5m AND time < 35m GROUP BY time(3m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_efficiency_ratio(f, 3, 1) AS k FROM hw WHERE host = 'b' LIMIT 4 OFFSET 2",
        "?db=hw",
    ),
    Query("SELECT kaufmans_efficiency_ratio(f) FROM hw", "?db=hw"),
    Query("SELECT kaufmans_efficiency_ratio(f, 0) FROM hw", "?db=hw"),
    Query("SELECT kaufmans_efficiency_ratio(f, 2.5) FROM hw", "?db=hw"),
    Query(
        "SELECT kaufmans_efficiency_ratio(f, 2, -2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_efficiency_ratio(f, 2, 'x') FROM hw",
        "?db=hw",
    ),
    Query("SELECT kaufmans_efficiency_ratio(s, 2) FROM hw", "?db=hw"),
    Query("SELECT kaufmans_efficiency_ratio(b, 2) FROM hw", "?db=hw"),
    Query(
        "SELECT kaufmans_efficiency_ratio(mean(f), 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_efficiency_ratio(f, 2) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f, 4) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(i, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(mean(f), 3) FROM hw WHERE time >= 10m AND time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f, 2) FROM flat",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(max(f), 5, 2) FROM hw WHERE time >= 5m AND time < 35m GROUP BY time(3m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f, 3, 1) AS k FROM hw WHERE host = 'b' LIMIT 4 OFFSET 2",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f, 0) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f, 2.5) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f, 2, -2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f, 2, 'x') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(s, 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(b, 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(mean(f), 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_adaptive_moving_average(f, 2) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 4) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(i, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(mean(f), 3) FROM hw WHERE time >= 10m AND time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 2) FROM flat",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(max(f), 5, 2) FROM hw WHERE time >= 5m AND time < 35m GROUP BY time(3m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 3, 1, 'simple') AS k FROM hw WHERE host = 'b' LIMIT 4 OFFSET 2",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 3, -1, 'exponential') FROM hw WHERE host = 'a' AND time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 2, 0, 'linear') FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 2, 0, 1) FROM hw",
        "?db=hw",
    ),
    Query("SELECT chande_momentum_oscillator(f) FROM hw", "?db=hw"),
    Query("SELECT chande_momentum_oscillator(f, 0) FROM hw", "?db=hw"),
    Query(
        "SELECT chande_momentum_oscillator(f, 2.5) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 2, -2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 2, 'x') FROM hw",
        "?db=hw",
    ),
    Query("SELECT chande_momentum_oscillator(s, 2) FROM hw", "?db=hw"),
    Query("SELECT chande_momentum_oscillator(b, 2) FROM hw", "?db=hw"),
    Query(
        "SELECT chande_momentum_oscillator(mean(f), 2) FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 2) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT chande_momentum_oscillator(f, 3, 0, 'none') FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT triple_exponential_derivative(f, 3, 0) FROM hw GROUP BY host",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 3), moving_average(f, 3) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 3), f FROM hw",
        "?db=hw",
    ),
    Query(
        "SELECT relative_strength_index(f, 14) FROM hw WHERE host = 'a'",
        "?db=hw",
    ),
    Query(
        "SELECT moving_average(mean(f), 3) FROM hw WHERE time >= 10m AND time < 30m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT moving_average(mean(f), 4) FROM hw WHERE time >= 10m AND time < 30m GROUP BY time(2m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT elapsed(mean(f), 1m) FROM hw WHERE time >= 10m AND time < 30m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT cumulative_sum(mean(f)) FROM hw WHERE time >= 10m AND time < 30m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 3, 0) FROM hw WHERE time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 4) FROM hw WHERE time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) FROM hw WHERE host = 'a' AND time < 40m GROUP BY time(2m) fill(0)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) FROM hw WHERE host = 'a' AND time < 40m GROUP BY time(2m) fill(previous)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) FROM hw WHERE host = 'a' AND time < 40m GROUP BY time(2m) fill(none)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(first(i), 4, 3) AS hw FROM hw WHERE time >= 5m AND time < 38m GROUP BY time(3m,1m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(count(f), 2, 0) FROM hw WHERE time < 40m GROUP BY time(4m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 2) FROM hw WHERE time < 40m GROUP BY time(2m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 3, 2) FROM hw WHERE time < 40m GROUP BY time(2m) LIMIT 2",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 30) FROM hw WHERE time < 40m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0), mean(f) FROM hw WHERE host = 'b' AND time < 20m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0), holt_winters(max(i), 1, 0) FROM hw WHERE host = 'a' AND time < 20m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) FROM flat WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(f, 2, 0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 0) FROM hw WHERE time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 0, 0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, -1) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2.5, 1) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(mean(f), 2, 1.0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(first(s), 2, 0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters(last(b), 2, 0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 3, 0) FROM hw WHERE time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 4) FROM hw WHERE time < 40m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 0) FROM hw WHERE host = 'a' AND time < 40m GROUP BY time(2m) fill(0)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 0) FROM hw WHERE host = 'a' AND time < 40m GROUP BY time(2m) fill(previous)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 0) FROM hw WHERE host = 'a' AND time < 40m GROUP BY time(2m) fill(none)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(first(i), 4, 3) AS hw FROM hw WHERE time >= 5m AND time < 38m GROUP BY time(3m,1m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(count(f), 2, 0) FROM hw WHERE time < 40m GROUP BY time(4m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 2) FROM hw WHERE time < 40m GROUP BY time(2m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 3, 2) FROM hw WHERE time < 40m GROUP BY time(2m) LIMIT 2",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 30) FROM hw WHERE time < 40m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 0), mean(f) FROM hw WHERE host = 'b' AND time < 20m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 0), holt_winters_with_fit(max(i), 1, 0) FROM hw WHERE host = 'a' AND time < 20m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 0) FROM flat WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(f, 2, 0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 0) FROM hw WHERE time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 0, 0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, -1) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2.5, 1) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(mean(f), 2, 1.0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(first(s), 2, 0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query(
        "SELECT holt_winters_with_fit(last(b), 2, 0) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query("SELECT sample(f, 2), max(f), host FROM hw", "?db=hw"),
    Query("SELECT sample(f, 2), mean(f), i FROM hw", "?db=hw"),
    Query("SELECT sample(f, 2), sample(i, 3), host FROM hw", "?db=hw"),
    Query("SELECT sample(*, 2), host FROM hw", "?db=hw"),
    Query("SELECT sample(/f|i/, 2), i FROM hw", "?db=hw"),
    Query(
        "SELECT sample(mean(f), 2) FROM hw WHERE time < 10m GROUP BY time(2m)",
        "?db=hw",
    ),
    Query("SELECT sample(f + 1, 2) FROM hw", "?db=hw"),
    Query("SELECT sample(2, 2) FROM hw", "?db=hw"),
    // Counts of empty buckets, literal arguments, and SHOW conditions read as 1.x's index reads them.
    Query(
        "SELECT count(f) FROM hw WHERE host = 'a' AND time < 30m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT count(f) + 1, mean(f) FROM hw WHERE time < 30m GROUP BY time(1m), host",
        "?db=hw",
    ),
    Query(
        "SELECT count(distinct(i)) FROM hw WHERE time < 30m GROUP BY time(1m), host",
        "?db=hw",
    ),
    Query(
        "SELECT count(f) FROM hw WHERE host = 'a' AND time >= 6m AND time < 12m GROUP BY time(1m) fill(previous)",
        "?db=hw",
    ),
    Query(
        "SELECT count(f) FROM hw WHERE host = 'a' AND time < 30m GROUP BY time(1m) fill(none)",
        "?db=hw",
    ),
    Query(
        "SELECT count(f), count(nope) FROM hw WHERE time < 30m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT count(*) FROM hw WHERE time < 30m GROUP BY time(1m), host",
        "?db=hw",
    ),
    Query(
        "SELECT count(f) FROM hw, flat WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT count(f) / 2 FROM hw WHERE host = 'b' AND time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT derivative(count(f)) FROM hw WHERE host = 'b' AND time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query("SELECT max(2) FROM hw", "?db=hw"),
    Query("SELECT top(2, 2) FROM hw", "?db=hw"),
    Query("SELECT derivative(2) FROM hw", "?db=hw"),
    Query("SELECT count(2) FROM hw", "?db=hw"),
    Query("SELECT exponential_moving_average(2, 2) FROM hw", "?db=hw"),
    Query("SELECT holt_winters(2, 2, 1) FROM hw", "?db=hw"),
    Query("SELECT mean(2) + 1 FROM hw", "?db=hw"),
    Query(
        "SELECT derivative(mean('x')) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SHOW TAG VALUES FROM hw WITH KEY = host WHERE f > 10",
        "?db=hw",
    ),
    Query(
        "SHOW TAG VALUES FROM hw WITH KEY = host WHERE f = 10",
        "?db=hw",
    ),
    Query(
        "SHOW TAG VALUES FROM hw WITH KEY = host WHERE f = 'x' AND host = 'b'",
        "?db=hw",
    ),
    Query(
        "SHOW TAG VALUES FROM hw WITH KEY = host WHERE host = 'a' AND f > 1",
        "?db=hw",
    ),
    Query(
        "SHOW TAG VALUES FROM hw WITH KEY = host WHERE host > 'a'",
        "?db=hw",
    ),
    Query(
        "SHOW TAG VALUES FROM hw WITH KEY = host WHERE host = 10",
        "?db=hw",
    ),
    Query("SHOW MEASUREMENTS WHERE f > 10", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE f = 'x'", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE f != 'x'", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE f =~ /x/", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE f = 10", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE host != 10", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE host != 'b'", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE host !~ /b/", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE zz != 'x'", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE host = 'a' OR f = 'x'", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE host = 'a' AND f != 'x'", "?db=hw"),
    Query("SHOW MEASUREMENTS WHERE time > 0", "?db=hw"),
    Query("SHOW SERIES WHERE f > 10", "?db=hw"),
    Query("SHOW SERIES WHERE f != 'x'", "?db=hw"),
    Query("SHOW SERIES FROM hw WHERE f = 10 AND host = 'b'", "?db=hw"),
    Query("SHOW SERIES WHERE host = 10", "?db=hw"),
    Query("SHOW SERIES WHERE host != 'b'", "?db=hw"),
    Query("SHOW SERIES WHERE zz != 'x'", "?db=hw"),
    Query("SHOW SERIES WHERE f + 1 = 2", "?db=hw"),
    Query("SHOW SERIES WHERE host = 'a' OR f = 3", "?db=hw"),
    Query("SHOW SERIES WHERE 'a' = host", "?db=hw"),
    Query("SHOW SERIES WHERE host", "?db=hw"),
    Query("SHOW TAG KEYS WHERE f > 10", "?db=hw"),
    Query("SHOW TAG KEYS WHERE host = 10", "?db=hw"),
    Query("SHOW TAG KEYS FROM hw WHERE f = 'z'", "?db=hw"),
    Query(
        "SELECT derivative(mean(f)) FROM hw WHERE time < 10m GROUP BY time(1m)",
        "?db=hw",
    ),
    Query(
        "SELECT moving_average(mean(f), 2) FROM hw WHERE time < 10m GROUP BY time(1m), host",
        "?db=hw",
    ),
    Query(
        "SELECT cumulative_sum(mean(f)) FROM hw WHERE time < 10m GROUP BY time(1m), host",
        "?db=hw",
    ),
    Query(
        "SELECT derivative(mean(f)) FROM hw WHERE time < 10m GROUP BY time(1m) ORDER BY time DESC",
        "?db=hw",
    ),
    Query(
        "SELECT derivative(count(f)) FROM hw WHERE time >= 1m AND time < 10m GROUP BY time(1m), host",
        "?db=hw",
    ),
    Query(
        "SELECT derivative(mean(f), 1s) FROM hw WHERE time >= 0 AND time < 10m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT non_negative_derivative(max(f)) FROM hw WHERE time >= 0 AND time < 10m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT elapsed(mean(f)) FROM hw WHERE time >= 0 AND time < 10m GROUP BY time(1m), host",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(count(f), 2) FROM hw WHERE time >= 1m AND time < 20m GROUP BY time(1m), host",
        "?db=hw",
    ),
    // The end of a statement inside a call: 1.x's position.
    Query("SELECT mean(", "?db=hw"),
    Query("SELECT mean( ", "?db=hw"),
    Query("SELECT mean(f,", "?db=hw"),
    Query("SELECT top(f, ", "?db=hw"),
    Query("SELECT time(", "?db=hw"),
    Query("SELECT mean(f) FROM m GROUP BY time(", "?db=hw"),
    Query("SELECT mean(f) FROM m GROUP BY time(1m, ", "?db=hw"),
    Query("SELECT mean(f) FROM m GROUP BY time(1m) fill(", "?db=hw"),
    // Transformations of every field (`*`, a regex) and inside arithmetic.
    Query(
        "SELECT derivative(*) FROM hw WHERE host = 'a' LIMIT 3",
        "?db=hw",
    ),
    Query(
        "SELECT derivative(/f|i/) FROM hw GROUP BY host LIMIT 2",
        "?db=hw",
    ),
    Query(
        "SELECT moving_average(*, 2) AS x FROM hw WHERE host = 'b' LIMIT 3",
        "?db=hw",
    ),
    Query(
        "SELECT difference(*) FROM hw WHERE time < 5m GROUP BY host",
        "?db=hw",
    ),
    Query("SELECT cumulative_sum(*) FROM flat", "?db=hw"),
    Query(
        "SELECT exponential_moving_average(*, 3) FROM hw WHERE host = 'a' AND time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT kaufmans_efficiency_ratio(/i/, 2) FROM hw WHERE host = 'b' AND time < 10m",
        "?db=hw",
    ),
    Query(
        "SELECT moving_average(f, 2) * 2 FROM hw WHERE host = 'a' LIMIT 3",
        "?db=hw",
    ),
    Query(
        "SELECT abs(derivative(f)) FROM hw WHERE host = 'a' LIMIT 3",
        "?db=hw",
    ),
    Query(
        "SELECT derivative(f) / 0 FROM hw WHERE host = 'a' LIMIT 3",
        "?db=hw",
    ),
    Query(
        "SELECT (moving_average(f, 2) + 1) * 2 AS x FROM hw WHERE host = 'b' LIMIT 3",
        "?db=hw",
    ),
    Query(
        "SELECT derivative(mean(f)) * 60 FROM hw WHERE time >= 0 AND time < 10m GROUP BY time(2m), host",
        "?db=hw",
    ),
    Query(
        "SELECT exponential_moving_average(f, 2) - 10 FROM hw WHERE host = 'b' AND time < 5m",
        "?db=hw",
    ),
    Query(
        "SELECT -derivative(f) FROM hw WHERE host = 'a' LIMIT 2",
        "?db=hw",
    ),
    Query(
        "SELECT cumulative_sum(i) * 2 FROM hw WHERE host = 'b' LIMIT 3",
        "?db=hw",
    ),
    Query(
        "SELECT difference(i) / 2 FROM hw WHERE host = 'b' LIMIT 3",
        "?db=hw",
    ),
    Query("DROP DATABASE hw", ""),
    StatusOnly("POST", "/ping", b"", "405 for POST /ping, as 1.x"),
    StatusOnly("GET", "/nothing", b"", "404 text body"),
    StatusOnly("GET", "/write?db=d", b"", "405 for GET /write"),
    StatusOnly(
        "POST",
        "/write?db=d",
        b"notgzip",
        "gzip error texts differ between Go and Rust",
    ),
    StatusOnly(
        "POST",
        "/write?db=nope",
        b"notgzip",
        "unknown database before a bad gzip body",
    ),
];

/// Where the steps go: one server, or a cluster whose data nodes take the writes in turn and
/// whose node without data takes every query.
struct Target {
    writes: Vec<String>,
    queries: String,
    /// A cluster: databases are created with replication factor 2 and written with
    /// `consistency=all` (both owners hold a write once it is answered).
    cluster: bool,
    /// On a cluster, each writing node's and the querying node's meta HTTP address: after a
    /// write, the querying node's catalog catches up with the writer's (a shard group the write
    /// created reaches the other nodes' catalogs within a Raft heartbeat or so).
    catalogs: Vec<String>,
    query_catalog: String,
}

impl Target {
    fn single(base: &str) -> Self {
        Self {
            writes: vec![base.to_string()],
            queries: base.to_string(),
            cluster: false,
            catalogs: vec![],
            query_catalog: String::new(),
        }
    }

    /// Waits until the querying node has applied the catalog as far as `writer` has.
    fn sync(&self, writer: usize) {
        let applied = |meta_http: &str| -> u64 {
            send("GET", &format!("http://{meta_http}/status"), &[], vec![])
                .ok()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
                .and_then(|v| v["applied_index"].as_u64())
                .unwrap_or(0)
        };
        let want = applied(&self.catalogs[writer]);
        wait_for(
            "the querying node's catalog",
            Duration::from_secs(10),
            || (applied(&self.query_catalog) >= want).then_some(()),
        );
    }

    /// `q` as sent: on a cluster, a plain `CREATE DATABASE` gets `WITH REPLICATION 2`.
    fn statement(&self, q: &str) -> String {
        let plain = q.starts_with("CREATE DATABASE ")
            && !q.contains(" WITH")
            && q.split_whitespace().count() == 3;
        if self.cluster && plain {
            format!("{q} WITH REPLICATION 2")
        } else {
            q.to_string()
        }
    }
}

fn run(t: &Target, n: usize, step: &Step) -> Resp {
    let base = t.queries.as_str();
    match step {
        Write(params, body) => {
            let writer = n % t.writes.len();
            let base = &t.writes[writer];
            let params = if t.cluster && !params.contains("consistency") {
                format!("{params}&consistency=all")
            } else {
                params.to_string()
            };
            let r = send(
                "POST",
                &format!("{base}/write?{params}"),
                &[],
                body.as_bytes().to_vec(),
            )
            .expect("write");
            if t.cluster {
                t.sync(writer);
            }
            r
        }
        Query(q, extra) => query(base, &t.statement(q), extra),
        GetQuery(q, extra) => send(
            "GET",
            &format!("{base}/query?q={}{extra}", urlencode(q)),
            &[],
            vec![],
        )
        .expect("get"),
        StatusOnly(method, path, body, _) => {
            let headers: &[(&str, &str)] = if path.starts_with("/write") && !body.is_empty() {
                &[("Content-Encoding", "gzip")]
            } else {
                &[]
            };
            send(method, &format!("{base}{path}"), headers, body.to_vec()).expect("request")
        }
        Csv(q) => {
            let form = format!("q={}", urlencode(q));
            send(
                "POST",
                &format!("{base}/query"),
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Accept", "application/csv"),
                ],
                form.into_bytes(),
            )
            .expect("csv")
        }
    }
}

fn describe(step: &Step) -> String {
    match step {
        Write(p, b) => format!("write ?{p} {b:?}"),
        Query(q, e) => format!("query {q:?} {e}"),
        GetQuery(q, e) => format!("GET query {q:?} {e}"),
        StatusOnly(m, p, _, why) => format!("{m} {p} (status only: {why})"),
        Csv(q) => format!("csv {q:?}"),
    }
}

fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b)),
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn same_body(a: &str, b: &str) -> bool {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.trim().lines().collect(), b.trim().lines().collect());
    if la.len() != lb.len() {
        return false;
    }
    la.iter().zip(&lb).all(|(x, y)| {
        match (
            serde_json::from_str::<serde_json::Value>(x),
            serde_json::from_str::<serde_json::Value>(y),
        ) {
            (Ok(x), Ok(y)) => same_json(&x, &y),
            _ => x.trim() == y.trim(),
        }
    })
}

#[test]
fn fletch_answers_like_influxdb_1_6_7() {
    if std::env::var("FLETCH_SKIP_INFLUXDB_COMPAT").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT=1");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fletch = Fletchd::start(dir.path(), &[]);
    compare(&Target::single(&fletch.url("")));
}

/// The same steps against a cluster: three data nodes, databases of replication factor 2,
/// writes spread over them, every query sent to a fourth node that holds no data.
#[test]
fn a_cluster_answers_like_influxdb_1_6_7() {
    if std::env::var("FLETCH_SKIP_INFLUXDB_COMPAT").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT=1");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (nodes, q) = three_data_nodes_and_a_querier(dir.path(), vec![]);
    compare(&Target {
        writes: nodes.iter().map(Node::url).collect(),
        queries: q.url(),
        cluster: true,
        catalogs: nodes.iter().map(|n| n.meta_http.clone()).collect(),
        query_catalog: q.meta_http.clone(),
    });
}

/// Texts of DataFusion's and Arrow's errors (and their type names), which must never reach a
/// client: each step's answer from Fletch is searched for them.
const LEAKS: &[&str] = &[
    "Error during planning",
    "Execution error",
    "Arrow error",
    "ArrowError",
    "Parquet error",
    "Optimizer rule",
    "type_coercion",
    "caused by",
    "Schema error",
    "Internal error",
    "DataFusion",
    "Cast error",
    "Invalid argument error",
    "Utf8",
    "Float64",
    "Int64",
    "Dictionary(",
    "?table?",
];

/// Runs every step against a fresh InfluxDB 1.6.7 and `fletch`, and fails on any difference.
fn compare(fletch: &Target) {
    let influx = Influxd::start().unwrap_or_else(|e| panic!("{e}"));
    let ib = Target::single(&format!("http://{}", influx.http));
    let mut diffs = Vec::new();
    for (n, step) in STEPS.iter().enumerate() {
        let (i, mut f) = (run(&ib, n, step), run(fletch, n, step));
        if fletch.cluster && matches!(step, Query(q, _) if q.starts_with("SHOW RETENTION POLICIES"))
        {
            // The default policy of a database the cluster created with replication 2.
            f.body = f.body.replace(
                "[\"autogen\",\"0s\",\"168h0m0s\",2,",
                "[\"autogen\",\"0s\",\"168h0m0s\",1,",
            );
        }
        if let Some(marker) = LEAKS.iter().find(|m| f.body.contains(*m)) {
            diffs.push(format!(
                "{}\n  fletch's answer holds DataFusion/Arrow text ({marker:?}): {}",
                describe(step),
                f.body.trim()
            ));
        }
        let status_only = matches!(step, StatusOnly(..));
        if i.status != f.status || (!status_only && !same_body(&i.body, &f.body)) {
            diffs.push(format!(
                "{}\n  influxdb: {} {}\n  fletch:   {} {}",
                describe(step),
                i.status,
                i.body.trim(),
                f.status,
                f.body.trim()
            ));
        }
        assert!(
            f.header("X-Influxdb-Version").is_some(),
            "fletch must send X-Influxdb-Version"
        );
    }
    eprintln!(
        "{} steps compared against InfluxDB at {}",
        STEPS.len(),
        influx.http
    );
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// 1.x's CORS, for browser-based tools: the same statuses, bodies and `Access-Control-*`
/// headers for preflights and requests with and without an `Origin`, on routes and off them,
/// with auth on (a preflight needs no credentials).
#[test]
fn cors_answers_like_influxdb_1_6_7() {
    if std::env::var("FLETCH_SKIP_INFLUXDB_COMPAT").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT=1");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fletch = Fletchd::start(dir.path(), &[("FLETCH_HTTP_AUTH_ENABLED", "true")]);
    let influx = Influxd::start_with_http("auth-enabled = true").unwrap_or_else(|e| panic!("{e}"));
    let origin = ("Origin", "http://grafana.example:3000");
    let cases: Vec<(&str, &str, Vec<(&str, &str)>, &str)> = vec![
        ("OPTIONS", "/query?q=SHOW%20DATABASES", vec![origin], ""),
        ("OPTIONS", "/write?db=db", vec![origin], ""),
        ("OPTIONS", "/write", vec![], ""),
        ("OPTIONS", "/ping", vec![origin], ""),
        ("GET", "/ping", vec![origin], ""),
        ("GET", "/ping", vec![], ""),
        ("GET", "/query?q=SHOW%20DATABASES", vec![origin], ""),
        ("POST", "/write?db=nope", vec![origin], "m v=1"),
        ("OPTIONS", "/nope", vec![origin], ""),
        ("GET", "/nope", vec![origin], ""),
    ];
    let cors = [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
    ];
    for (method, path, headers, body) in &cases {
        let answer = |base: &str| {
            let r = send(
                method,
                &format!("{base}{path}"),
                headers,
                body.as_bytes().to_vec(),
            )
            .unwrap();
            let h: Vec<Option<String>> = cors
                .iter()
                .map(|k| r.header(k).map(str::to_string))
                .collect();
            (r.status, r.body.trim().to_string(), h)
        };
        let theirs = answer(&format!("http://{}", influx.http));
        let ours = answer(&fletch.url(""));
        assert_eq!(ours, theirs, "{method} {path} {headers:?}");
    }
}
