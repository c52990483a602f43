//! Queries that cannot take a node down: the memory budget of `[coordinator]
//! query-memory-bytes` and `query-pool-bytes` on the benchmark's data (its generator, 100 hosts
//! over two hours), with the unbounded `GROUP BY time(1s)` that grew InfluxDB 1.6.7 to 24 GB.

use std::time::Duration;

use fletch_tests::http::{post, query};
use fletch_tests::{Fletchd, wait_for};

const HOSTS: usize = 100;
/// Two hours at a row every 10 s.
const ROWS_PER_HOST: usize = 720;
const BOUNDED: &str = "SELECT mean(usage_user) FROM cpu WHERE time >= '2016-01-01T00:00:00Z' AND time < '2016-01-01T02:00:00Z' GROUP BY time(1s), hostname";
const UNBOUNDED: &str = "SELECT mean(usage_user) FROM cpu GROUP BY time(1s)";

/// 2016-01-01T00:00:00Z in seconds.
const START: i64 = 1_451_606_400;

/// The benchmark's data set (`fletch-bench`'s TSBS cpu-only generator: 10 tags, 10 fields),
/// 100 hosts over two hours, posted in batches of 5000 lines as the bench loads it.
fn load(base: &str) {
    assert_eq!(query(base, "CREATE DATABASE benchmark", "").status, 200);
    let spec = fletch_bench::generate::Spec {
        scale: HOSTS as u64,
        start: START * 1_000_000_000,
        duration: (ROWS_PER_HOST as i64) * fletch_bench::generate::INTERVAL,
        seed: 123,
        host_offset: 0,
    };
    let mut text = Vec::new();
    fletch_bench::generate::write_lines(&spec, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), HOSTS * ROWS_PER_HOST);
    for batch in lines.chunks(5000) {
        let w = post(&format!("{base}/write?db=benchmark"), &batch.join("\n"));
        assert_eq!(w.status, 204, "{}", w.body);
    }
}

/// The node's peak resident memory (`VmHWM`), in bytes.
fn peak_rss(node: &Fletchd) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

fn error_of(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["results"][0]["error"].as_str().map(str::to_string)
}

#[test]
fn a_query_past_its_budget_fails_clearly_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 2 << 20;
    let node = Fletchd::start(
        dir.path(),
        &[("FLETCH_COORDINATOR_QUERY_MEMORY_BYTES", "2m")],
    );
    let base = format!("http://{}", node.http);
    load(&base);

    // The unbounded query is refused before it reads a row (the buckets guard).
    let r = query(&base, UNBOUNDED, "?db=benchmark");
    let e = error_of(&r.body).unwrap_or_default();
    assert!(
        e.starts_with("max-select-buckets limit exceeded: ("),
        "{}",
        r.body
    );

    // The bounded one needs a hash table of 720,000 groups: more than 2 MiB, and a hash
    // aggregate of `GROUP BY time` cannot spill. Run it over and over (bounded) while writes
    // arrive: each is acknowledged, the queries fail with the budget's error.
    let reader = {
        let base = base.clone();
        std::thread::spawn(move || {
            (0..5)
                .map(|_| query(&base, BOUNDED, "?db=benchmark").body)
                .collect::<Vec<_>>()
        })
    };
    for i in 0..20 {
        let w = post(
            &format!("{base}/write?db=benchmark&precision=s"),
            &format!("cpu,hostname=late usage_user={i} {}\n", START + 7200 + i),
        );
        assert_eq!(w.status, 204, "write {i} during the queries: {}", w.body);
    }
    for body in reader.join().unwrap() {
        let e = error_of(&body).unwrap_or_default();
        assert!(
            e.starts_with("query-memory-bytes limit exceeded: (") && e.contains("/2097152) bytes"),
            "{body}"
        );
    }
    let late = query(
        &base,
        "SELECT count(usage_user) FROM cpu WHERE hostname = 'late'",
        "?db=benchmark",
    );
    assert!(
        late.body.contains("[\"1970-01-01T00:00:00Z\",20]"),
        "{}",
        late.body
    );
    // Small queries still answer within the budget.
    let small = query(
        &base,
        "SELECT count(usage_user) FROM cpu WHERE hostname = 'host_7'",
        "?db=benchmark",
    );
    assert!(small.body.contains(",720]"), "{}", small.body);
    let peak = peak_rss(&node);
    assert!(
        peak < budget + (300 << 20),
        "peak RSS {peak} bytes is past the budget plus 300 MB"
    );
}

#[test]
fn within_its_budget_a_query_answers_and_a_sort_spills_to_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 16 << 20;
    let node = Fletchd::start(
        dir.path(),
        &[("FLETCH_COORDINATOR_QUERY_MEMORY_BYTES", "16m")],
    );
    let base = format!("http://{}", node.http);
    load(&base);
    let r = query(
        &base,
        BOUNDED,
        "?db=benchmark&chunked=true&chunk_size=10000",
    );
    assert_eq!(r.status, 200);
    // Chunked: one JSON object per chunk; count the rows of every series.
    let mut rows = 0;
    let mut hosts = std::collections::BTreeSet::new();
    for line in r.body.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["results"][0]["error"].is_null(), "{line}");
        for s in v["results"][0]["series"].as_array().into_iter().flatten() {
            hosts.insert(s["tags"]["hostname"].as_str().unwrap().to_string());
            rows += s["values"].as_array().unwrap().len();
        }
    }
    assert_eq!(hosts.len(), HOSTS);
    assert_eq!(rows, HOSTS * 7200, "every host's 7,200 one-second buckets");

    // A whole sort of the measurement is larger than 16 MiB: it spills and still answers.
    let spill = dir.path().join("data/spill");
    let r = query(
        &base,
        "SELECT usage_user, usage_system, hostname FROM cpu ORDER BY time DESC",
        "?db=benchmark",
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(
        v["results"][0]["error"].is_null(),
        "{}",
        &r.body[..300.min(r.body.len())]
    );
    let values = v["results"][0]["series"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), HOSTS * ROWS_PER_HOST);
    assert_eq!(values[0][0], "2016-01-01T01:59:50Z");
    assert_eq!(values[values.len() - 1][0], "2016-01-01T00:00:00Z");
    let metrics = fletch_tests::http::send("GET", &format!("{base}/metrics"), &[], Vec::new())
        .unwrap()
        .body;
    let spilled: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fletch_query_spill_files_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        spilled > 0,
        "the sort spilled to {}:\n{metrics}",
        spill.display()
    );
    assert!(
        metrics.contains("fletch_query_spill_bytes 0\n"),
        "spill files removed once read"
    );
    let peak = peak_rss(&node);
    assert!(
        peak < budget + (300 << 20),
        "peak RSS {peak} bytes is past the budget plus 300 MB"
    );
    // What spilling left behind is removed: by a clean stop, and at start after a crash.
    let status = node.terminate();
    assert!(status.success());
    let stale = spill.join("datafusion-left-by-a-crash");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("run.arrow"), b"x").unwrap();
    let node = Fletchd::start(
        dir.path(),
        &[("FLETCH_COORDINATOR_QUERY_MEMORY_BYTES", "16m")],
    );
    wait_for(
        "the stale spill files removed",
        Duration::from_secs(10),
        || (!stale.exists()).then_some(()),
    );
    drop(node);
}

#[test]
fn the_node_pool_bounds_all_queries_together() {
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[("FLETCH_COORDINATOR_QUERY_POOL_BYTES", "2m")]);
    let base = format!("http://{}", node.http);
    load(&base);
    let r = query(&base, BOUNDED, "?db=benchmark");
    let e = error_of(&r.body).unwrap_or_default();
    assert!(
        e.starts_with("query-pool-bytes limit exceeded: (") && e.contains("/2097152) bytes"),
        "{}",
        r.body
    );
    // A small query answers.
    let r = query(&base, "SELECT count(usage_user) FROM cpu", "?db=benchmark");
    assert!(r.body.contains(",72000]"), "{}", r.body);
    // SQL statements draw on the same pool.
    let sql = "SELECT hostname, time, count(*) FROM cpu GROUP BY hostname, time";
    let r = fletch_tests::http::send(
        "GET",
        &format!(
            "{base}/api/v3/query_sql?db=benchmark&q={}",
            fletch_tests::http::urlencode(sql)
        ),
        &[],
        Vec::new(),
    )
    .unwrap();
    assert!(
        r.status >= 400 && r.body.contains("query-pool-bytes limit exceeded: ("),
        "{} {}",
        r.status,
        r.body
    );
}
