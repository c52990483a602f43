//! Arrow Flight SQL and InfluxDB 3's Flight ticket on the HTTP API's port, with the clients
//! users run: `pyarrow.flight`, the ADBC Flight SQL driver and `influxdb3-python`
//! (`tests/clients/flight_sql.py`; `.ci/run` installs them). Set `FLETCH_SKIP_PY_CLIENTS=1` to
//! skip on a machine without them.

use fletch_tests::http::{post, query, send, urlencode};
use fletch_tests::{Fletchd, free_port};

#[test]
fn flight_sql_clients_query_the_same_data() {
    if std::env::var("FLETCH_SKIP_PY_CLIENTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_PY_CLIENTS=1");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // `[flight] bind-address`: a port of Flight's own, beside gRPC on the HTTP port.
    let flight_addr = format!("127.0.0.1:{}", free_port());
    let env = [("FLETCH_FLIGHT_BIND_ADDRESS", flight_addr.as_str())];
    let f = Fletchd::start(dir.path(), &env);
    let base = f.url("");
    for q in [
        "CREATE DATABASE fs",
        "CREATE RETENTION POLICY other ON fs DURATION INF REPLICATION 1",
        "CREATE DATABASE v3",
        "CREATE DATABASE w",
        "CREATE RETENTION POLICY wrp ON w DURATION INF REPLICATION 1",
    ] {
        let r = query(&base, q, "");
        assert_eq!(r.status, 200, "{q}: {}", r.body);
    }
    let r = post(
        &format!("{base}/write?db=fs&precision=s"),
        "cpu,host=a,region=w usage=1.5,n=3i 1\ncpu,host=b,region=e usage=2.5,n=4i 1\n\
         cpu,host=a,region=w usage=2.0,n=5i 2\ncpu,host=b,region=e usage=2.5,n=6i 2\n\
         cpu,host=a,region=w usage=2.5,n=2i 3\ncpu,host=b,region=e usage=2.5,n=1i 3\n\
         mem,host=a free=10i 1\nmem,host=a free=12i 2",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    // The other retention policy, through /write.
    let r = post(
        &format!("{base}/write?db=fs&rp=other&precision=s"),
        "mem,host=z free=1i 1",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    // InfluxDB 3's write endpoint, and bad input to it and to /api/v2/write.
    let r = post(
        &format!("{base}/api/v3/write_lp?db=v3&precision=second"),
        "net,host=a up=1i 7",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = query(&base, "SELECT up FROM v3..net", "");
    assert!(
        r.body.contains(r#"["1970-01-01T00:00:07Z",1]"#),
        "{}",
        r.body
    );
    for (url, status) in [
        ("/api/v3/write_lp?db=nope", 404),
        ("/api/v3/write_lp?db=v3&precision=fortnight", 400),
        ("/api/v2/write?org=x", 400),
    ] {
        let r = post(&format!("{base}{url}"), "net up=2i");
        assert_eq!(r.status, status, "{url}: {}", r.body);
        assert!(r.body.contains("\"error\""), "{url}: {}", r.body);
    }
    // The clients against the data as written (in the write buffer), then again once a
    // restart has persisted it to Parquet (the script's own writes rewrite the same points).
    let clients = |f: &Fletchd| {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/flight_sql.py");
        let out = std::process::Command::new("python3")
            .arg(&script)
            .arg(&f.http)
            .arg(&flight_addr)
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}\n{}", f.log_text());
        assert!(
            text.contains("all Flight SQL clients answered as expected"),
            "{text}"
        );
    };
    clients(&f);
    v3_query_api(&base);
    assert!(f.terminate().success());
    let f = Fletchd::start(dir.path(), &env);
    let parquet = walk(&dir.path().join("data"))
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "parquet"));
    assert!(parquet, "a clean stop persists the buffer");
    clients(&f);
    v3_query_api(&f.url(""));
}

fn get(url: &str) -> fletch_tests::http::Resp {
    send("GET", url, &[], Vec::new()).expect("request")
}

/// InfluxDB 3's HTTP query API over database `fs` (parquet is read back by
/// `clients/flight_sql.py`, with pyarrow).
fn v3_query_api(base: &str) {
    let sql = |q: &str, rest: &str| {
        get(&format!(
            "{base}/api/v3/query_sql?db=fs&q={}{rest}",
            urlencode(q)
        ))
    };
    let q = "SELECT host, usage, time FROM cpu WHERE host = 'a' ORDER BY time";
    let r = sql(q, "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let rows: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            {"host": "a", "usage": 1.5, "time": "1970-01-01T00:00:01"},
            {"host": "a", "usage": 2.0, "time": "1970-01-01T00:00:02"},
            {"host": "a", "usage": 2.5, "time": "1970-01-01T00:00:03"}
        ]),
        "json is an array of objects, times as InfluxDB 3 writes them"
    );
    let r = sql(q, "&format=jsonl");
    assert_eq!(
        r.body,
        "{\"host\":\"a\",\"usage\":1.5,\"time\":\"1970-01-01T00:00:01\"}\n\
         {\"host\":\"a\",\"usage\":2.0,\"time\":\"1970-01-01T00:00:02\"}\n\
         {\"host\":\"a\",\"usage\":2.5,\"time\":\"1970-01-01T00:00:03\"}\n"
    );
    let r = sql(q, "&format=csv");
    assert_eq!(r.header("content-type"), Some("text/csv"));
    assert_eq!(
        r.body,
        "host,usage,time\na,1.5,1970-01-01T00:00:01\na,2.0,1970-01-01T00:00:02\na,2.5,1970-01-01T00:00:03\n"
    );
    let r = sql("SELECT count(*) AS n FROM cpu", "&format=pretty");
    assert_eq!(r.body, "+---+\n| n |\n+---+\n| 6 |\n+---+");
    // No rows: an empty array; CSV still has its header.
    assert_eq!(sql("SELECT host FROM cpu WHERE host = 'zz'", "").body, "[]");
    assert_eq!(
        sql("SELECT host FROM cpu WHERE host = 'zz'", "&format=csv").body,
        "host\n"
    );
    // POST with a JSON body and named parameters.
    let body = serde_json::json!({
        "db": "fs",
        "q": "SELECT n FROM cpu WHERE host = $host AND n > $n ORDER BY time",
        "params": {"host": "b", "n": 3},
        "format": "json"
    });
    let r = send(
        "POST",
        &format!("{base}/api/v3/query_sql"),
        &[("Content-Type", "application/json")],
        body.to_string().into_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, r#"[{"n":4},{"n":6}]"#);
    // The Accept header chooses when `format` does not.
    let r = send(
        "GET",
        &format!(
            "{base}/api/v3/query_sql?db=fs&q={}",
            urlencode("SELECT 1 AS one")
        ),
        &[("Accept", "text/csv")],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(r.body, "one\n1\n");

    // InfluxQL, with InfluxDB 3's leading iox::measurement column.
    let r = get(&format!(
        "{base}/api/v3/query_influxql?db=fs&format=jsonl&q={}",
        urlencode("SELECT mean(usage) FROM cpu GROUP BY host")
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        "{\"iox::measurement\":\"cpu\",\"time\":\"1970-01-01T00:00:00\",\"host\":\"a\",\"mean\":2.0}\n\
         {\"iox::measurement\":\"cpu\",\"time\":\"1970-01-01T00:00:00\",\"host\":\"b\",\"mean\":2.5}\n"
    );
    let r = get(&format!(
        "{base}/api/v3/query_influxql?format=json&q={}",
        urlencode("SHOW MEASUREMENTS ON fs")
    ));
    assert_eq!(
        r.body,
        r#"[{"iox::measurement":"measurements","name":"cpu"},{"iox::measurement":"measurements","name":"mem"}]"#
    );

    // Bad input: InfluxDB's JSON error, with the status that says whose fault it is.
    for (url, status, text) in [
        (
            "/api/v3/query_sql?db=nope&q=SELECT%201",
            404,
            "database not found: nope",
        ),
        ("/api/v3/query_sql?db=fs&q=SELEC%201", 400, "SQL error"),
        (
            "/api/v3/query_sql?db=fs&q=SELECT%20*%20FROM%20nosuch",
            400,
            "table 'fs.iox.nosuch' not found",
        ),
        ("/api/v3/query_sql?db=fs", 400, "missing query parameter q"),
        (
            "/api/v3/query_sql?q=SELECT%201",
            400,
            "missing query parameter db",
        ),
        (
            "/api/v3/query_sql?db=fs&q=SELECT%201&format=xml",
            400,
            "invalid format",
        ),
        (
            "/api/v3/query_sql?db=fs&q=SELECT%201&params=%5B1%5D",
            400,
            "params must be a JSON object",
        ),
        (
            "/api/v3/query_sql?db=fs&q=INSERT%20INTO%20cpu%20VALUES%20(1)",
            400,
            "only reads",
        ),
        (
            "/api/v3/query_sql?db=fs&q=CREATE%20EXTERNAL%20TABLE%20t%20STORED%20AS%20CSV%20LOCATION%20'%2Fetc%2Fpasswd'",
            400,
            "only reads",
        ),
        (
            "/api/v3/query_influxql?db=fs&q=SELEKT",
            400,
            "error parsing query",
        ),
        (
            "/api/v3/query_influxql?db=nope&q=SELECT%20*%20FROM%20cpu",
            404,
            "database not found: nope",
        ),
    ] {
        let r = get(&format!("{base}{url}"));
        assert_eq!(r.status, status, "{url}: {}", r.body);
        let e: serde_json::Value = serde_json::from_str(&r.body).expect("a JSON error");
        assert!(
            e["error"].as_str().is_some_and(|m| m.contains(text)),
            "{url}: {}",
            r.body
        );
    }
    let r = send(
        "DELETE",
        &format!("{base}/api/v3/query_sql?db=fs&q=SELECT%201"),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(r.status, 405);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
