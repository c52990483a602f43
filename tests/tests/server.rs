//! `fletchd` as an operator runs it: configuration, limits, restart and shutdown.

use std::process::Command;
use std::time::Duration;

use fletch_tests::http::{post, query, send};
use fletch_tests::{Fletchd, bin, wait_for};

#[test]
fn config_prints_whole_and_layers_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("influxdb.conf");
    std::fs::write(&file, "reporting-disabled = true\n[http]\nbind-address = \"127.0.0.1:9999\"\npprof-auth-enabled = false\n[coordinator]\nmax-select-series = 1\n[data]\nmax-concurrent-compactions = 2\n[continuous_queries]\nenabled = true\nrun-interval = \"2s\"\nquery-stats-enabled = false\n").unwrap();
    let out = Command::new(bin("fletchd"))
        .args(["config", "-config"])
        .arg(&file)
        .env("FLETCH_DATA_WAL_DIR", "/tmp/elsewhere")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let cfg: toml::Table = text.parse().unwrap();
    assert_eq!(cfg["http"]["bind-address"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(cfg["data"]["wal-dir"].as_str(), Some("/tmp/elsewhere"));
    assert_eq!(
        cfg["meta"]["http-bind-address"].as_str(),
        Some("127.0.0.1:8091")
    );
    assert_eq!(cfg["http"]["max-body-size"].as_integer(), Some(25_000_000));
    assert_eq!(cfg["coordinator"]["write-timeout"].as_str(), Some("10s"));
    assert_eq!(
        cfg["coordinator"]["max-select-series"].as_integer(),
        Some(1)
    );
    assert_eq!(cfg["hinted-handoff"]["max-age"].as_str(), Some("168h"));
    assert_eq!(cfg["hinted-handoff"]["enabled"].as_bool(), Some(true));
    assert_eq!(
        cfg["continuous_queries"]["run-interval"].as_str(),
        Some("2s")
    );
    assert_eq!(
        cfg["continuous_queries"]["log-enabled"].as_bool(),
        Some(true)
    );
    let warnings = String::from_utf8(out.stderr).unwrap();
    for w in [
        "unknown config key reporting-disabled",
        "unknown config key [http] pprof-auth-enabled",
        "unknown config key [data] max-concurrent-compactions",
        "unknown config key [continuous_queries] query-stats-enabled ignored",
    ] {
        assert!(warnings.contains(w), "missing warning {w:?} in {warnings}");
    }
}

/// `fletchd` run to its end with a config file whose `[http]` section binds a free loopback
/// port and adds `settings`: what it did, the port, and its directory.
fn start_with_http_settings(settings: &str) -> (std::process::Output, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = fletch_tests::free_port();
    let file = dir.path().join("influxdb.conf");
    std::fs::write(
        &file,
        format!("[http]\nbind-address = \"127.0.0.1:{port}\"\n{settings}"),
    )
    .unwrap();
    let out = Command::new(bin("fletchd"))
        .arg("-config")
        .arg(&file)
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    (out, port, dir)
}

#[test]
fn a_security_setting_it_cannot_honour_stops_it_from_starting() {
    let (out, port, _dir) = start_with_http_settings("pprof-auth-enabled = true\n");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[http] pprof-auth-enabled") && stderr.contains("not implemented"),
        "{stderr}"
    );
    // Nothing was served.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn bad_config_exits_nonzero_before_binding() {
    let (out, port, dir) = start_with_http_settings("max-body-size = \"lots\"\n");
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("config [http] max-body-size: invalid type: string \"lots\""),
        "{err}"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "nothing may stay bound"
    );
    let out = Command::new(bin("fletchd"))
        .arg("--dir")
        .arg(dir.path())
        .env("FLETCH_HTTP_BIND_ADDRESS", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("config [http] bind-address")
    );
    assert!(
        !dir.path().join("meta").exists(),
        "a bad config must not touch the data directory"
    );
}

#[test]
fn ping_headers_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(
        dir.path(),
        &[
            ("FLETCH_HTTP_MAX_BODY_SIZE", "1000"),
            ("FLETCH_DATA_CACHE_MAX_MEMORY_SIZE", "3000"),
            ("FLETCH_DATA_CACHE_SNAPSHOT_MEMORY_SIZE", "3000"),
            ("FLETCH_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION", "1h"),
        ],
    );
    let ping = send("GET", &node.url("/ping"), &[], vec![]).unwrap();
    assert_eq!(ping.status, 204);
    assert_eq!(ping.header("X-Influxdb-Version"), Some("1.6.7"));
    assert_eq!(ping.header("X-Influxdb-Build"), Some("OSS"));
    assert!(ping.header("X-Fletch-Version").is_some());
    assert_eq!(
        send("HEAD", &node.url("/ping"), &[], vec![])
            .unwrap()
            .status,
        204
    );

    query(&node.url(""), "CREATE DATABASE db", "");
    let big = "m v=1 1\n".repeat(200);
    let r = post(&node.url("/write?db=db"), &big);
    assert_eq!(
        (r.status, r.body.as_str()),
        (413, "{\"error\":\"Request Entity Too Large\"}\n"),
        "1.x ends error bodies with a newline"
    );

    // gzip bodies are decoded, and the limit applies to what they decode to.
    let gz = |s: &str| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(s.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let r = send(
        "POST",
        &node.url("/write?db=db"),
        &[("Content-Encoding", "gzip")],
        gz("m v=1 1\n"),
    )
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
    let r = send(
        "POST",
        &node.url("/write?db=db"),
        &[("Content-Encoding", "gzip")],
        gz(&big),
    )
    .unwrap();
    assert_eq!(r.status, 413);

    // Fill the buffer: writes get 503 with a clear message, never a crash or a partial write.
    let mut refused = None;
    for i in 0..200 {
        let body: String = (0..20)
            .map(|j| format!("m,h=x v={i}.{j} {}\n", i * 100 + j + 10))
            .collect();
        let r = post(&node.url("/write?db=db"), &body);
        if r.status != 204 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the write buffer never filled");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("cache-max-memory-size exceeded"),
        "{}",
        r.body
    );
    // Persistence (size-triggered) frees the buffer and writes resume.
    wait_for(
        "writes to resume after persistence",
        Duration::from_secs(30),
        || (post(&node.url("/write?db=db"), "m,h=x v=1 5").status == 204).then_some(()),
    );
}

#[test]
fn catalog_and_data_survive_a_clean_restart_and_sigterm_persists() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    assert_eq!(
        query(
            &node.url(""),
            "CREATE DATABASE keep WITH DURATION 30d NAME month",
            ""
        )
        .status,
        200
    );
    assert_eq!(
        post(&node.url("/write?db=keep"), "disk,host=a free=1i").status,
        204
    );
    let status = node.terminate();
    assert!(status.success(), "{status}");
    let wal_bytes: u64 = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(
        wal_bytes, 0,
        "a clean stop persists the buffer and releases the WAL"
    );

    let node = Fletchd::start(dir.path(), &[]);
    let r = query(
        &node.url(""),
        "SHOW RETENTION POLICIES ON keep; SHOW MEASUREMENTS ON keep",
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["results"][0]["series"][0]["values"][0][0], "month");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], "720h0m0s");
    assert_eq!(v["results"][1]["series"][0]["values"][0][0], "disk");
    // The node keeps its ids across the restart and the catalog lists its new addresses.
    let r = query(&node.url(""), "SHOW SERVERS", "");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["results"][0]["series"][0]["name"], "data_nodes");
    assert_eq!(
        v["results"][0]["series"][0]["values"],
        serde_json::json!([[2, node.http.clone(), node.tcp.clone()]])
    );
    assert_eq!(
        v["results"][0]["series"][1]["values"],
        serde_json::json!([[1, node.meta_http.clone(), node.tcp.clone()]])
    );
    let meta = send(
        "GET",
        &format!("http://{}/status", node.meta_http),
        &[],
        vec![],
    )
    .unwrap();
    let status: serde_json::Value = serde_json::from_str(&meta.body).unwrap();
    assert_eq!(status["leader"], 1);
    assert_eq!(status["voters"], serde_json::json!([1]));
}

#[test]
fn parquet_files_open_in_pyarrow() {
    if std::env::var("FLETCH_SKIP_PYARROW").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_PYARROW=1");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    query(&node.url(""), "CREATE DATABASE py", "");
    let r = post(
        &node.url("/write?db=py"),
        "weather,city=Oslo,country=NO temp=3.5,rain=true,note=\"cold\",n=7i 1000\nweather,city=Bergen,country=NO temp=5.5 2000",
    );
    assert_eq!(r.status, 204);
    assert!(node.terminate().success());
    let script = r#"
import glob, sys
import pyarrow.parquet as pq
files = glob.glob(sys.argv[1] + "/data/shards/*/*.parquet")
assert len(files) == 1, files
t = pq.read_table(files[0])
assert str(t.schema.field("city").type) == "dictionary<values=string, indices=int32, ordered=0>", t.schema
assert str(t.schema.field("time").type) == "timestamp[ns]", t.schema
rows = t.to_pylist()
assert [r["city"] for r in rows] == ["Bergen", "Oslo"], rows
assert rows[1]["temp"] == 3.5 and rows[1]["rain"] is True and rows[1]["note"] == "cold" and rows[1]["n"] == 7, rows
assert rows[0]["rain"] is None
print("ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyarrow could not read the files (pip install pyarrow; .ci/run installs it):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn malformed_requests_get_json_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    // Undecodable escapes are kept literally (as Go does): an unknown database.
    let r = send("POST", &node.url("/write?db=%zz%"), &[], b"m v=1".to_vec()).unwrap();
    assert_eq!(
        (r.status, r.body.trim()),
        (404, "{\"error\":\"database not found: \\\"%zz%\\\"\"}")
    );
    // As 1.x, the database is checked before the body is decoded.
    let bad_gzip = || {
        send(
            "POST",
            &node.url("/write?db=x"),
            &[("Content-Encoding", "gzip")],
            b"not gzip at all".to_vec(),
        )
        .unwrap()
    };
    assert_eq!(bad_gzip().status, 404);
    query(&node.url(""), "CREATE DATABASE x", "");
    let r = bad_gzip();
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("{\"error\":"), "{}", r.body);
    let r = send("PUT", &node.url("/query?q=SHOW+DATABASES"), &[], vec![]).unwrap();
    assert_eq!(r.status, 405);
    let r = send(
        "POST",
        &node.url("/query"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"q=%FF%FE".to_vec(),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    // The node is still there.
    assert_eq!(
        send("GET", &node.url("/ping"), &[], vec![]).unwrap().status,
        204
    );
}

#[test]
fn long_series_are_marked_partial_as_1x_does() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    query(&node.url(""), "CREATE DATABASE p", "");
    let body: String = (0..10_001).map(|i| format!("m v={i} {i}\n")).collect();
    assert_eq!(post(&node.url("/write?db=p"), &body).status, 204);
    let partial = |limit: usize| {
        let r = query(
            &node.url(""),
            &format!("SELECT v FROM m LIMIT {limit}"),
            "?db=p",
        );
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            v["results"][0]["series"][0]["values"]
                .as_array()
                .unwrap()
                .len(),
            limit
        );
        v["results"][0]["series"][0]["partial"].clone()
    };
    assert_eq!(partial(10_000), serde_json::Value::Null);
    assert_eq!(partial(10_001), serde_json::Value::Bool(true));
}

#[test]
fn an_answer_past_its_memory_budget_is_an_error_unless_chunked() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[("FLETCH_HTTP_MAX_RESPONSE_MEMORY", "4096")]);
    query(&node.url(""), "CREATE DATABASE p", "");
    let body: String = (0..2000).map(|i| format!("m v={i} {i}\n")).collect();
    assert_eq!(post(&node.url("/write?db=p"), &body).status, 204);
    let r = query(&node.url(""), "SELECT v FROM m; SHOW DATABASES", "?db=p");
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let err = v["results"][0]["error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("the answer is larger than [http] max-response-memory (4096 bytes"),
        "{v}"
    );
    assert!(v["results"][0]["series"].is_null(), "{v}");
    // A small answer is within the budget; a chunked one is never held whole.
    let r = query(&node.url(""), "SELECT v FROM m LIMIT 3", "?db=p");
    assert!(r.body.contains("\"values\""), "{}", r.body);
    let r = query(
        &node.url(""),
        "SELECT v FROM m",
        "?db=p&chunked=true&chunk_size=500",
    );
    let rows: usize = r
        .body
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["results"][0]["series"][0]["values"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(rows, 2000);
}

#[test]
fn max_row_limit_cuts_plain_answers_and_chunks_carry_every_row_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[("FLETCH_HTTP_MAX_ROW_LIMIT", "5")]);
    query(&node.url(""), "CREATE DATABASE p", "");
    let body: String = (0..4)
        .flat_map(|i| {
            [
                format!("m,h=a v={i} {i}\n"),
                format!("m,h=b v={} {i}\n", 10 + i),
            ]
        })
        .collect();
    assert_eq!(post(&node.url("/write?db=p"), &body).status, 204);
    let q = "SELECT v FROM m GROUP BY h; SELECT v FROM m";
    // Not chunked: 1.x cuts at the fifth row, marks that series partial and sends nothing after.
    let r = query(&node.url(""), q, "?db=p&epoch=ns");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"results": [{"statement_id": 0, "series": [
            {"name": "m", "tags": {"h": "a"}, "columns": ["time", "v"],
             "values": [[0, 0], [1, 1], [2, 2], [3, 3]]},
            {"name": "m", "tags": {"h": "b"}, "columns": ["time", "v"],
             "values": [[0, 10]], "partial": true}
        ]}]}),
        "{}",
        r.body
    );
    // Chunked: no row limit; every row once, in order, three values a chunk, `partial` on a
    // series that goes on and on every chunk of a statement but its last.
    let r = query(&node.url(""), q, "?db=p&epoch=ns&chunked=true&chunk_size=3");
    let chunks: Vec<serde_json::Value> = r
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shape: Vec<(u64, Option<&str>, usize, bool, bool)> = chunks
        .iter()
        .map(|c| {
            let r = &c["results"][0];
            let s = &r["series"][0];
            (
                r["statement_id"].as_u64().unwrap(),
                s["tags"]["h"].as_str(),
                s["values"].as_array().unwrap().len(),
                s["partial"] == true,
                r["partial"] == true,
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (0, Some("a"), 3, true, true),
            (0, Some("a"), 1, false, true),
            (0, Some("b"), 3, true, true),
            (0, Some("b"), 1, false, false),
            (1, None, 3, true, true),
            (1, None, 3, true, true),
            (1, None, 2, false, false),
        ],
        "{}",
        r.body
    );
    let values: Vec<i64> = chunks[4..]
        .iter()
        .flat_map(|c| {
            c["results"][0]["series"][0]["values"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|row| row[1].as_i64().unwrap())
        .collect();
    assert_eq!(values, [0, 10, 1, 11, 2, 12, 3, 13]);
}

#[test]
fn sigint_stops_cleanly_too() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    query(&node.url(""), "CREATE DATABASE i", "");
    assert_eq!(post(&node.url("/write?db=i"), "m v=1 1").status, 204);
    let status = node.signal("-INT");
    assert!(status.success(), "{status}");
    let wal_bytes: u64 = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(wal_bytes, 0, "the buffer was persisted before exiting");
}

#[test]
fn unsigned_integers_only_behind_the_switch() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    query(&node.url(""), "CREATE DATABASE u", "");
    let r = post(&node.url("/write?db=u"), "m v=18446744073709551615u 1");
    assert_eq!(
        (r.status, r.body.trim()),
        (
            400,
            "{\"error\":\"unable to parse 'm v=18446744073709551615u 1': invalid number\"}"
        )
    );
    assert!(node.terminate().success());

    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[("FLETCH_DATA_UNSIGNED_INTEGERS", "true")]);
    query(&node.url(""), "CREATE DATABASE u", "");
    assert_eq!(
        post(&node.url("/write?db=u"), "m v=18446744073709551615u 1").status,
        204
    );
    let r = query(&node.url(""), "SELECT v FROM m; SHOW FIELD KEYS", "?db=u");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["results"][0]["series"][0]["values"][0][1],
        serde_json::json!(18446744073709551615u64)
    );
    assert_eq!(
        v["results"][1]["series"][0]["values"][0],
        serde_json::json!(["v", "unsigned"])
    );
}

#[test]
fn http_api_can_be_disabled_and_requests_logged() {
    // Default: requests are not logged (read the log after exit, when it is complete).
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    assert_eq!(
        send("GET", &node.url("/ping"), &[], Vec::new())
            .unwrap()
            .status,
        204
    );
    let log = node.log.clone();
    assert!(node.terminate().success());
    let text = wait_for("the complete log", Duration::from_secs(30), || {
        let text = log.lock().unwrap().join("\n");
        text.contains("stopped").then_some(text)
    });
    assert!(
        !text.contains("uri=/ping"),
        "request logged by default:\n{text}"
    );

    // `[http] log-enabled = true`: one info line per request.
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[("FLETCH_HTTP_LOG_ENABLED", "true")]);
    assert_eq!(
        send("GET", &node.url("/ping"), &[], Vec::new())
            .unwrap()
            .status,
        204
    );
    wait_for("the request log line", Duration::from_secs(30), || {
        node.log_text()
            .lines()
            .any(|l| l.contains("request") && l.contains("uri=/ping") && l.contains("status=204"))
            .then_some(())
    });
    assert!(node.terminate().success());

    // `[http] enabled = false`: no client API listener; the meta API still serves. The client
    // API line is logged before the meta one that `start` waited for.
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[("FLETCH_HTTP_ENABLED", "false")]);
    let text = node.log_text();
    assert!(text.contains("HTTP API disabled"), "{text}");
    assert!(
        !text.split_whitespace().any(|w| w.starts_with("http_addr=")),
        "client API bound although disabled:\n{text}"
    );
    let meta_ping = format!("http://{}/ping", node.meta_http);
    assert_eq!(
        send("GET", &meta_ping, &[], Vec::new()).unwrap().status,
        204
    );
    assert!(node.terminate().success());
}

#[test]
fn a_cluster_without_data_nodes_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[("FLETCH_DATA_ENABLED", "false")]);
    query(&node.url(""), "CREATE DATABASE x", "");
    // Any node routes writes; with no data node in the cluster, no shard can be made.
    let r = post(&node.url("/write?db=x"), "m v=1 1");
    assert_eq!(
        (r.status, r.body.trim()),
        (500, "{\"error\":\"no data nodes available to own shards\"}")
    );
    // It is a meta node only: SHOW SERVERS lists no data node.
    let r = query(&node.url(""), "SHOW SERVERS", "");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let series = v["results"][0]["series"].as_array().unwrap();
    let data = series.iter().find(|s| s["name"] == "data_nodes").unwrap();
    assert!(data.get("values").is_none(), "{}", r.body);
    assert!(
        !dir.path().join("wal").exists(),
        "no WAL without the data role"
    );
    assert!(node.terminate().success());
}

/// `POST /join` on the meta port: a malformed body is a 400 with a JSON error; a new node that
/// claims an address another node uses is refused, naming the statement that frees it.
#[test]
fn join_requests_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    let url = format!("http://{}/join", node.meta_http);
    let r = post(&url, "not json");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.starts_with("{\"error\":\"malformed join request: "),
        "{}",
        r.body
    );
    let claim = serde_json::json!({
        "meta_id": null,
        "data_id": null,
        "tcp_addr": node.tcp,
        "meta_http_addr": "127.0.0.1:1",
        "data_http_addr": null,
    });
    let r = post(&url, &claim.to_string());
    assert_eq!(r.status, 409, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let refused = v["Err"]["Refused"].as_str().unwrap_or_default();
    assert!(
        refused.starts_with(&format!("meta node 1 already uses {}", node.tcp))
            && refused.contains("DROP META SERVER 1"),
        "{}",
        r.body
    );
    assert!(node.terminate().success());
}

#[test]
fn max_select_buckets_refuses_wide_group_by_time_as_1x() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fletchd::start(
        dir.path(),
        &[("FLETCH_COORDINATOR_MAX_SELECT_BUCKETS", "10")],
    );
    let base = format!("http://{}", f.http);
    assert_eq!(query(&base, "CREATE DATABASE db", "").status, 200);
    let w = post(
        &format!("{base}/write?db=db&precision=s"),
        "m v=1 0\nm v=2 5\n",
    );
    assert_eq!(w.status, 204);
    let ok = query(
        &base,
        "SELECT mean(v) FROM m WHERE time >= 0s AND time < 10s GROUP BY time(1s)",
        "?db=db",
    );
    assert!(ok.body.contains("\"values\""), "{}", ok.body);
    // 1.x answers the statement's error with status 200.
    let refused = query(
        &base,
        "SELECT mean(v) FROM m WHERE time >= 0s AND time < 100s GROUP BY time(1s)",
        "?db=db",
    );
    assert_eq!(refused.status, 200);
    assert_eq!(
        refused.body.trim(),
        r#"{"results":[{"statement_id":0,"error":"max-select-buckets limit exceeded: (100/10)"}]}"#
    );
    // Raw and plain aggregate queries are not bucketed.
    let raw = query(&base, "SELECT v FROM m WHERE time >= 0s", "?db=db");
    assert!(raw.body.contains("\"values\""), "{}", raw.body);
}

#[test]
fn metrics_are_served_in_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fletchd::start(dir.path(), &[]);
    let base = format!("http://{}", f.http);
    assert_eq!(query(&base, "CREATE DATABASE db", "").status, 200);
    assert_eq!(
        post(&format!("{base}/write?db=db"), "m v=1 1\nm v=2 2\n").status,
        204
    );
    assert_eq!(post(&format!("{base}/write?db=db"), "bad line").status, 400);
    // A SQL statement counts as a query too (as a Flight SQL one would).
    let sql = send(
        "GET",
        &format!("{base}/api/v3/query_sql?db=db&q=SELECT%20count(*)%20FROM%20m"),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(sql.status, 200, "{}", sql.body);
    let r = send("GET", &format!("{base}/metrics"), &[], Vec::new()).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let value = |series: &str| -> f64 {
        r.body
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in\n{}", r.body))
    };
    assert_eq!(value("fletch_points_written_total "), 2.0);
    assert_eq!(
        value("fletch_http_requests_total{endpoint=\"write\",status=\"204\"} "),
        1.0
    );
    assert_eq!(
        value("fletch_http_requests_total{endpoint=\"write\",status=\"400\"} "),
        1.0
    );
    assert!(value("fletch_wal_fsync_seconds_count ") >= 1.0);
    assert!(value("fletch_write_buffer_bytes ") > 0.0);
    // CREATE DATABASE and the SQL statement (a request is counted finished once its answer's
    // stream is dropped, which may follow the last byte the client read).
    assert_eq!(value("fletch_queries_total "), 2.0);
    wait_for(
        "both queries counted finished",
        Duration::from_secs(10),
        || {
            let m = send("GET", &format!("{base}/metrics"), &[], Vec::new()).ok()?;
            let n = |series: &str| -> Option<f64> {
                m.body
                    .lines()
                    .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            };
            (n("fletch_query_seconds_count ")? == 2.0 && n("fletch_query_seconds_sum ")? > 0.0)
                .then_some(())
        },
    );
    assert_eq!(value("fletch_raft_is_leader "), 1.0);
    assert!(value("fletch_raft_applied_index ") >= 1.0);
    drop(f);
}

/// `SHOW DIAGNOSTICS`, `SHOW STATS` and `/debug/vars` in 1.x's shapes, next to InfluxDB 1.6.7's
/// answers where the modules mean the same.
#[test]
fn diagnostics_stats_and_debug_vars_as_1x_shapes_them() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fletchd::start(
        dir.path(),
        &[("FLETCH_COORDINATOR_MAX_SELECT_BUCKETS", "7")],
    );
    let base = format!("http://{}", f.http);
    let json = |q: &str, b: &str| -> serde_json::Value {
        serde_json::from_str(&query(b, q, "").body).unwrap()
    };
    let all = json("SHOW DIAGNOSTICS", &base);
    let names: Vec<&str> = all["results"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "build",
            "config",
            "config-coordinator",
            "config-data",
            "config-httpd",
            "config-meta",
            "network",
            "system"
        ]
    );
    let system = json("SHOW DIAGNOSTICS FOR 'system'", &base);
    let s = &system["results"][0]["series"][0];
    assert_eq!(s["values"][0][0], f.child.id());
    let coord = json("SHOW DIAGNOSTICS FOR 'config-coordinator'", &base);
    let c = &coord["results"][0]["series"][0];
    let col = c["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|n| n == "max-select-buckets")
        .unwrap();
    assert_eq!(c["values"][0][col], 7);
    // A module that does not exist: the statement answers nothing, as 1.x.
    assert_eq!(
        query(&base, "SHOW DIAGNOSTICS FOR 'nope'", "").body.trim(),
        r#"{"results":[{"statement_id":0}]}"#
    );

    // /debug/vars: 1.x's expvar JSON; its counters move with the requests.
    assert_eq!(query(&base, "SHOW DATABASES", "").status, 200);
    let vars = send("GET", &format!("{base}/debug/vars"), &[], Vec::new()).unwrap();
    assert_eq!(vars.status, 200);
    let v: serde_json::Value = serde_json::from_str(&vars.body).unwrap();
    assert!(v["system"]["uptime"].is_u64(), "{v}");
    assert!(
        v["cmdline"][0].as_str().unwrap().ends_with("fletchd"),
        "{v}"
    );
    let executed = v["queryExecutor"]["values"]["queriesExecuted"]
        .as_u64()
        .unwrap();
    assert!(executed >= 5, "{v}");
    assert_eq!(v["queryExecutor"]["tags"], serde_json::Value::Null);
    let httpd = &v[format!("httpd:{}", f.http)];
    assert_eq!(httpd["tags"]["bind"], f.http.as_str(), "{v}");
    assert!(httpd["values"]["queryReq"].as_u64().unwrap() >= 5, "{v}");
    let stats = json("SHOW STATS FOR 'queryExecutor'", &base);
    let q = &stats["results"][0]["series"][0];
    assert_eq!(
        q["columns"],
        serde_json::json!([
            "queriesActive",
            "queriesExecuted",
            "queriesFinished",
            "queryDurationNs"
        ])
    );
    // This very request is running (an earlier one may still be ending).
    assert!(q["values"][0][0].as_u64().is_some_and(|n| n >= 1), "{q}");

    // InfluxDB 1.6.7 names the same modules' columns the same way.
    let Ok(influxd) = fletch_tests::Influxd::start() else {
        return;
    };
    let ibase = format!("http://{}", influxd.http);
    for module in ["build", "config-meta", "network", "system"] {
        let q = format!("SHOW DIAGNOSTICS FOR '{module}'");
        assert_eq!(
            json(&q, &ibase)["results"][0]["series"][0]["columns"],
            json(&q, &base)["results"][0]["series"][0]["columns"],
            "{module}"
        );
    }
    assert_eq!(
        query(&ibase, "SHOW DIAGNOSTICS FOR 'nope'", "").body,
        query(&base, "SHOW DIAGNOSTICS FOR 'nope'", "").body
    );
    let ivars: serde_json::Value = serde_json::from_str(
        &send("GET", &format!("{ibase}/debug/vars"), &[], Vec::new())
            .unwrap()
            .body,
    )
    .unwrap();
    for key in ["currentTime", "started", "uptime"] {
        assert!(ivars["system"].get(key).is_some() && v["system"].get(key).is_some());
    }
    let ie = &ivars["queryExecutor"];
    assert_eq!(ie["tags"], v["queryExecutor"]["tags"]);
    for name in [
        "queriesActive",
        "queriesExecuted",
        "queriesFinished",
        "queryDurationNs",
    ] {
        assert!(ie["values"].get(name).is_some(), "1.x has {name}");
    }
    let ihttpd = &ivars[format!("httpd:{}", influxd.http)];
    for name in httpd["values"].as_object().unwrap().keys() {
        assert!(
            ihttpd["values"].get(name).is_some(),
            "1.x's httpd has {name}"
        );
    }
}

/// `max-select-series` and `max-select-point` refuse a statement past them before it reads a
/// field; the series limit is compared with InfluxDB 1.6.7's answers (its point limit is only
/// checked once a second while a query runs, so a small query never meets it there).
#[test]
fn max_select_series_and_point_refuse_wide_selects() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fletchd::start(
        dir.path(),
        &[
            ("FLETCH_COORDINATOR_MAX_SELECT_SERIES", "3"),
            ("FLETCH_COORDINATOR_MAX_SELECT_POINT", "10"),
        ],
    );
    let base = format!("http://{}", f.http);
    let data = "m,t=a v=1 1\nm,t=a v=2 2\nm,t=b v=1 1\nm,t=b v=2 2\nm,t=c v=1 1\nm,t=c v=2 2\nm,t=d v=1 1\nm,t=d v=2 2\nm,t=e v=1 1\nm,t=e v=2 2\n";
    let series_cases = [
        "SELECT v FROM m",
        "SELECT count(v) FROM m GROUP BY t",
        "SELECT v FROM m WHERE t = 'a' OR t = 'b'",
        "SELECT v FROM m WHERE t =~ /[abc]/",
        "SELECT v FROM m WHERE t =~ /[abcd]/",
        "SELECT v FROM m WHERE v > 1",
        "SELECT v FROM m WHERE t != 'a' AND t != 'b'",
        "SELECT v FROM m WHERE time >= 2s",
    ];
    let answers = |base: &str| {
        assert_eq!(query(base, "CREATE DATABASE db", "").status, 200);
        let w = post(&format!("{base}/write?db=db&precision=s"), data);
        assert_eq!(w.status, 204, "{}", w.body);
        series_cases
            .iter()
            .map(|q| query(base, q, "?db=db").body)
            .collect::<Vec<_>>()
    };
    let ours = answers(&base);
    // 1.x names the limit plus one, however many series there are.
    assert!(
        ours[0].contains("max-select-series limit exceeded: (4/3)"),
        "{}",
        ours[0]
    );
    assert!(ours[2].contains("\"values\""), "{}", ours[2]);
    assert!(ours[3].contains("\"values\""), "{}", ours[3]);
    assert!(
        ours[4].contains("max-select-series limit exceeded: (4/3)"),
        "{}",
        ours[4]
    );
    if let Ok(influxd) = fletch_tests::Influxd::start_with("", "max-select-series = 3") {
        let theirs = answers(&format!("http://{}", influxd.http));
        for ((q, a), b) in series_cases.iter().zip(&ours).zip(&theirs) {
            assert_eq!(a, b, "{q}");
        }
    }

    // Points: rows in the time range and tag conditions; a condition on fields narrows
    // nothing (the points are read to be tested), a time range does.
    let mut lines = String::new();
    for i in 0..12 {
        lines.push_str(&format!("p v={i} {i}\n"));
    }
    let w = post(&format!("{base}/write?db=db&precision=s"), &lines);
    assert_eq!(w.status, 204);
    let refused =
        r#"{"results":[{"statement_id":0,"error":"max-select-point limit exceeed: (12/10)"}]}"#;
    assert_eq!(
        query(&base, "SELECT * FROM p", "?db=db").body.trim(),
        refused
    );
    assert_eq!(
        query(&base, "SELECT mean(v) FROM p WHERE v > 100", "?db=db")
            .body
            .trim(),
        refused
    );
    let ok = query(&base, "SELECT count(v) FROM p WHERE time >= 5s", "?db=db");
    assert!(ok.body.contains(",7]"), "{}", ok.body);
    // The statements after a refused one are not executed, as after any error.
    let two = query(
        &base,
        "SELECT * FROM p; SELECT count(v) FROM p WHERE time >= 5s",
        "?db=db",
    );
    assert!(two.body.contains("not executed"), "{}", two.body);
}
