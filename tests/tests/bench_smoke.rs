//! `fletch-bench` at a smoke size against a real `fletchd`: generate, load and every query type
//! run, and the answers compare equal with the same server (the comparison path itself).

use std::process::Command;

use fletch_tests::{Fletchd, bin};

/// The query types `fletch-bench types` lists: TSBS's ten and two kept earlier forms.
const TYPES: usize = 12;

#[test]
fn fletch_bench_loads_and_queries_a_small_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    let url = node.url("");
    let pid = node.child.id().to_string();
    let data = ["--scale", "5", "--duration", "20m", "--seed", "9"];
    let report = load(&url, &data, "100");
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
    assert_eq!(rows.len(), TYPES, "every TSBS query type runs");
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
    let mut args = vec!["query"];
    args.extend(data);
    args.extend(["--url", url, "--reference", url, "--language", "sql"]);
    args.extend(["--iterations", "3"]);
    let rows = bench_json(&args);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), TYPES, "every TSBS query type runs in SQL");
    for r in rows {
        assert_eq!(
            (r["errors"].as_u64(), r["mismatches"].as_u64()),
            (Some(0), Some(0)),
            "{r}"
        );
    }
}

/// `fletch-bench query` of `types` against `url`, its own reference: every query answers and
/// answers the same twice.
fn queries_answer(url: &str, data: &[&str], types: &str) -> serde_json::Value {
    let mut args = vec!["query"];
    args.extend(data);
    args.extend(["--url", url, "--reference", url, "--types", types]);
    args.extend(["--iterations", "2"]);
    let rows = bench_json(&args);
    for r in rows.as_array().unwrap() {
        assert_eq!(
            (r["errors"].as_u64(), r["mismatches"].as_u64()),
            (Some(0), Some(0)),
            "{r}"
        );
    }
    rows
}

/// What `bench/compare.sh` runs, at a tiny scale: the TSBS types in the three states of the
/// data (buffered only, right after a persist, compacted), the types while a paced load writes
/// newer points, and the high-cardinality set's own types.
#[test]
fn the_benchmark_sets_and_states_run_at_a_tiny_scale() {
    let dir = tempfile::tempdir().unwrap();
    // Buffered only: the whole set stays in the write buffer.
    let buffer = [
        ("FLETCH_DATA_CACHE_SNAPSHOT_MEMORY_SIZE", "1073741824"),
        ("FLETCH_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION", "1h"),
    ];
    let node = Fletchd::start(dir.path(), &buffer);
    let url = node.url("");
    let data = ["--scale", "4", "--duration", "30m", "--seed", "5"];
    load(&url, &data, "50");
    let all = fletch_bench_types();
    queries_answer(&url, &data, &all);
    assert!(
        !dir.path().join("data/shards").exists()
            || walk(&dir.path().join("data/shards"))
                .iter()
                .all(|p| !p.ends_with(".parquet")),
        "nothing persisted yet"
    );

    // Right after a persist: a stop persists the buffer; a new process reads the new files.
    assert!(node.terminate().success());
    let persisted = [("FLETCH_DATA_COMPACT_FULL_WRITE_COLD_DURATION", "4h")];
    let node = Fletchd::start(dir.path(), &persisted);
    let url = node.url("");
    assert!(
        walk(&dir.path().join("data/shards"))
            .iter()
            .any(|p| p.ends_with(".parquet")),
        "persisted"
    );
    queries_answer(&url, &data, &all);

    // Queries while a paced load writes the set's hosts' newer points, going on from the
    // set's end (as bench/compare.sh's mixed run does); SIGTERM ends the load, which reports.
    let paced = Command::new(bin("fletch-bench"))
        .arg("load")
        .args([
            "--scale",
            "4",
            "--start",
            "2016-01-01T00:30:00Z",
            "--duration",
            "100d",
        ])
        .args(["--seed", "5", "--rate", "2000"])
        .args([
            "--url",
            &url,
            "--workers",
            "2",
            "--batch-size",
            "20",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut args = vec!["query"];
    args.extend(data);
    args.extend(["--url", &url, "--types", &all, "--iterations", "2"]);
    bench_json(&args);
    let pid = paced.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let report = paced.wait_with_output().unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert!(report["points"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["failed_batches"], 0, "{report}");
    assert!(node.terminate().success());

    // High cardinality: a host per series, a few rows each.
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    let url = node.url("");
    let card = ["--scale", "300", "--duration", "30s", "--seed", "5"];
    load(&url, &card, "50");
    let rows = queries_answer(
        &url,
        &card,
        "series-cardinality,tag-values-1,single-host-1,single-groupby-1-1-1,high-cpu-1",
    );
    assert_eq!(rows.as_array().unwrap().len(), 5);
    let answer = fletch_tests::http::query(&url, "SHOW SERIES CARDINALITY", "?db=benchmark");
    assert!(answer.body.contains("300"), "{}", answer.body);
}

/// `fletch-bench load` of `data` into `url` over 2 connections: its report.
fn load(url: &str, data: &[&str], batch_size: &str) -> serde_json::Value {
    let mut args = vec!["load"];
    args.extend(data);
    args.extend(["--url", url, "--workers", "2", "--batch-size", batch_size]);
    bench_json(&args)
}

/// `fletch-bench <args> --json`, which must succeed: its report.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin("fletch-bench"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The query types `fletch-bench types` lists, comma-separated.
fn fletch_bench_types() -> String {
    let out = Command::new(bin("fletch-bench"))
        .arg("types")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .collect::<Vec<_>>()
        .join(",")
}

/// Every file under `dir`, as strings.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}
