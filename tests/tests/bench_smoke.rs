//! `fletch-bench` at a smoke size against a real `fletchd`: generate, load and every query type
//! run, and the answers compare equal with the same server (the comparison path itself).

use std::process::Command;

use fletch_tests::{Fletchd, bin};

#[test]
fn fletch_bench_loads_and_queries_a_small_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    let url = node.url("");
    let pid = node.child.id().to_string();
    let data = ["--scale", "5", "--duration", "20m", "--seed", "9"];
    let out = Command::new(bin("fletch-bench"))
        .arg("load")
        .args(data)
        .args([
            "--url",
            &url,
            "--workers",
            "2",
            "--batch-size",
            "100",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["points"], 5 * 120);
    assert_eq!(report["failed_batches"], 0);

    let out = Command::new(bin("fletch-bench"))
        .arg("query")
        .args(data)
        .args([
            "--url",
            &url,
            "--reference",
            &url,
            "--iterations",
            "2",
            "--skip",
            "1",
            "--server-pid",
            &pid,
            "--quiet-pid",
            &pid,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10, "every TSBS query type runs");
    for r in rows {
        assert_eq!(
            (r["errors"].as_u64(), r["mismatches"].as_u64()),
            (Some(0), Some(0)),
            "{r}"
        );
        // Each type waited for the idle server, and its CPU per query and every latency are
        // reported.
        assert_eq!(r["quiet"], true, "{r}");
        assert!(r["server_cpu_ms"].is_string(), "{r}");
        assert_eq!(r["latencies_ms"].as_array().map(Vec::len), Some(2), "{r}");
    }

    // The same picks in SQL over Flight SQL: every answer holds the numbers of the InfluxQL
    // form (the reference answers that), on the data as buffered and once persisted to
    // Parquet (a restart persists the buffer).
    sql_agrees_with_influxql(&url, &data);
    assert!(node.terminate().success());
    let node = Fletchd::start(dir.path(), &[]);
    let url = node.url("");
    sql_agrees_with_influxql(&url, &data);
    // A statement that cannot run is counted as an error, not as agreement.
    let out = Command::new(bin("fletch-bench"))
        .arg("query")
        .args(data)
        .args([
            "--url",
            &url,
            "--db",
            "nope",
            "--language",
            "sql",
            "--iterations",
            "1",
            "--types",
            "lastpoint",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown database fails the run");

    let out = Command::new(bin("fletch-bench"))
        .arg("types")
        .output()
        .unwrap();
    let types = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = types.lines().collect();
    let ran: Vec<&str> = rows.iter().filter_map(|r| r["type"].as_str()).collect();
    assert_eq!(listed, ran, "`types` lists what `query` runs");
}

/// `fletch-bench query --language sql` against `url`, which is its own reference: every TSBS
/// type runs in SQL and each answer has the numbers of its InfluxQL form.
fn sql_agrees_with_influxql(url: &str, data: &[&str]) {
    let out = Command::new(bin("fletch-bench"))
        .arg("query")
        .args(data)
        .args(["--url", url, "--reference", url, "--language", "sql"])
        .args(["--iterations", "3", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10, "every TSBS query type runs in SQL");
    for r in rows {
        assert_eq!(
            (r["errors"].as_u64(), r["mismatches"].as_u64()),
            (Some(0), Some(0)),
            "{r}"
        );
    }
}
