//! Queries in process over a real meta service and storage engine: the same answers whether
//! data is buffered, persisted, overlapping or compacted; and scans that read only what can
//! match.

use line_protocol::{ParseOptions, parse_body};
use querier::QueryContext;
use serde_json::Value;

mod common;

use common::Node;

async fn node() -> Node {
    Node::with_database("db").await
}

trait Client {
    async fn write(&self, body: &str);
    async fn query(&self, q: &str) -> Value;
    /// The frame of measurement `m` in `db` over `min..=max`, as `ctx` plans it.
    async fn scan(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        min: i64,
        max: i64,
    ) -> querier::scan::Frame;
}

impl Client for Node {
    async fn write(&self, body: &str) {
        let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
        assert!(parsed.errors.is_empty());
        let out = self
            .exec
            .writer()
            .write("db", "", parsed.points, 0)
            .await
            .unwrap();
        assert_eq!(out.dropped, 0, "{:?}", out.reason);
    }

    async fn scan(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        min: i64,
        max: i64,
    ) -> querier::scan::Frame {
        let range = querier::select::TimeRange { min, max };
        self.exec
            .measurement_frame(ctx, "db", "", "m", range)
            .await
            .unwrap()
            .unwrap()
    }

    async fn query(&self, q: &str) -> Value {
        let stmts = querier::influxql::parse_query(q).unwrap();
        let ctx = QueryContext {
            database: Some("db".into()),
            ..Default::default()
        };
        common::json_of(&self.exec.execute(&stmts, &ctx).await)
    }
}

const QUERIES: &[&str] = &[
    "SELECT * FROM cpu",
    "SELECT usage FROM cpu WHERE host = 'b' AND time >= 20 AND time <= 40",
    "SELECT mean(usage), max(usage), count(idle) FROM cpu GROUP BY host",
    "SELECT last(usage) FROM cpu WHERE time >= 0 AND time < 100 GROUP BY time(20ns)",
    "SHOW SERIES",
    "SHOW TAG VALUES WITH KEY = host",
];

#[tokio::test]
async fn answers_do_not_depend_on_where_the_data_is() {
    let n = node().await;
    n.write("cpu,host=a usage=1,idle=1i 10\ncpu,host=b usage=2 20\ncpu,host=a usage=3 30\ncpu,host=b usage=4,idle=4i 40").await;
    let mut expected = Vec::new();
    for q in QUERIES {
        expected.push(n.query(q).await);
    }
    n.ingester.persist().await.unwrap();
    for (q, e) in QUERIES.iter().zip(&expected) {
        assert_eq!(&n.query(q).await, e, "after persist: {q}");
    }
    // A later write of an existing point merges into it (later wins per field), from the
    // buffer and then from a second, overlapping file.
    n.write("cpu,host=a usage=30 30\ncpu,host=b idle=2i 20")
        .await;
    let merged = n.query("SELECT usage, idle FROM cpu").await;
    let rows = &merged[0]["series"][0]["values"];
    assert_eq!(
        rows,
        &serde_json::json!([
            ["1970-01-01T00:00:00.00000001Z", 1, 1],
            ["1970-01-01T00:00:00.00000002Z", 2, 2],
            ["1970-01-01T00:00:00.00000003Z", 30, null],
            ["1970-01-01T00:00:00.00000004Z", 4, 4]
        ])
    );
    n.ingester.persist().await.unwrap();
    assert_eq!(
        n.query("SELECT usage, idle FROM cpu").await,
        merged,
        "two overlapping files"
    );
    assert_eq!(n.ingester.compact(0).await.unwrap(), 0);
    n.ingester
        .delete(&ingester::DeleteScope {
            database: "db".into(),
            retention_policy: None,
            measurements: Some(vec!["cpu".into()]),
            predicate: Some(ingester::TagPredicate::Eq("host".into(), "b".into())),
            min_time: 0,
            max_time: 25,
        })
        .await
        .unwrap();
    let after_delete = n.query("SELECT usage, idle FROM cpu").await;
    assert_eq!(
        after_delete[0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    n.ingester.compact(0).await.unwrap();
    assert_eq!(
        n.query("SELECT usage, idle FROM cpu").await,
        after_delete,
        "after compaction"
    );
    n.close().await;
}

#[tokio::test]
async fn scans_read_only_the_files_and_rows_that_can_match() {
    let n = node().await;
    // Three files in one shard, one host each and disjoint times; one more shard a year later.
    for (i, host) in ["h1", "h2", "h3"].iter().enumerate() {
        let t0 = i as i64 * 1_000;
        let body: String = (0..100)
            .map(|j| format!("m,host={host} v={j} {}\n", t0 + j))
            .collect();
        n.write(&body).await;
        n.ingester.persist().await.unwrap();
    }
    n.write(&format!("m,host=h1 v=1 {}", 365 * 86_400_000_000_000i64))
        .await;
    n.ingester.persist().await.unwrap();

    let ctx = querier::scan::session(2);
    let stats = n.scan(&ctx, 1_000, 1_099).await.stats;
    assert_eq!(
        (stats.shards, stats.files_scanned, stats.files_skipped),
        (1, 1, 2),
        "{stats:?}"
    );

    // No time bound: all three files of the first shard are opened, but the series indexes
    // select only h3's rows, in h3's file.
    let plan = n
        .query("EXPLAIN ANALYZE SELECT v FROM m WHERE host = 'h3' AND time < 52w")
        .await;
    assert_eq!(
        series_index(&plan),
        ["files=3 series_runs=3 → 1 rows=300 → 100 datafusion_pruning=off"],
        "{plan:#}"
    );
    let rows = n.query("SELECT count(v) FROM m WHERE host = 'h3'").await;
    assert_eq!(rows[0]["series"][0]["values"][0][1], 100);
    n.close().await;
}

#[tokio::test]
async fn a_file_is_sorted_by_series_so_one_host_reads_only_its_rows() {
    let n = node().await;
    // 50 hosts x 1000 points, written interleaved in time; tag `a` (10 values) sorts before
    // `host` by name, but the file is sorted by series, so each host's rows are one run.
    let body: String = (0..1000)
        .flat_map(|j| (0..50).map(move |h| format!("m,a=g{},host=h{h:02} v={j} {j}\n", h % 10)))
        .collect();
    n.write(&body).await;
    n.ingester.persist().await.unwrap();
    let plan = n
        .query("EXPLAIN ANALYZE SELECT v FROM m WHERE host = 'h07'")
        .await;
    assert_eq!(
        series_index(&plan),
        ["files=1 series_runs=50 → 1 rows=50000 → 1000 datafusion_pruning=off"],
        "{plan:#}"
    );
    // A time range selects the pages of the host's run that hold it (pages of at most 1024
    // rows).
    let plan = n
        .query("EXPLAIN ANALYZE SELECT v FROM m WHERE host = 'h07' AND time >= 100 AND time < 200")
        .await;
    let line = series_index(&plan).join("");
    let selected: usize = line
        .split("rows=50000 → ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(usize::MAX);
    assert!((100..=1000).contains(&selected), "{plan:#}");
    // A condition on a field leaves DataFusion's pruning on, unless the selection is already
    // a few pages at most.
    let plan = n
        .query("EXPLAIN ANALYZE SELECT v FROM m WHERE a = 'g7' AND v > 500")
        .await;
    assert_eq!(
        series_index(&plan),
        ["files=1 series_runs=50 → 5 rows=50000 → 5000 datafusion_pruning=off"],
        "{plan:#}"
    );
    let plan = n
        .query("EXPLAIN ANALYZE SELECT v FROM m WHERE v > 500")
        .await;
    assert_eq!(
        series_index(&plan),
        ["files=1 series_runs=50 → 50 rows=50000 → 50000 datafusion_pruning=on"],
        "{plan:#}"
    );
    // Gap filling keeps its input's order (series, then time): only the sort below it.
    let plan = n
        .query("EXPLAIN SELECT max(v) FROM m WHERE host = 'h07' AND time >= 0 AND time < 1000 GROUP BY time(100ns), a")
        .await
        .to_string();
    assert_eq!(plan.matches("SortExec").count(), 1, "{plan}");
    let rows = n.query("SELECT count(v) FROM m WHERE host = 'h07'").await;
    assert_eq!(rows[0]["series"][0]["values"][0][1], 1000);
    let rows = n
        .query("SELECT count(v) FROM m WHERE host = 'h07' AND time >= 100 AND time < 200")
        .await;
    assert_eq!(rows[0]["series"][0]["values"][0][1], 100);
    let rows = n
        .query("SELECT count(v) FROM m WHERE host = 'h07' AND v > 500")
        .await;
    assert_eq!(rows[0]["series"][0]["values"][0][1], 499);
    n.close().await;
}

/// The `series_index` lines of an `EXPLAIN` answer.
fn series_index(plan: &Value) -> Vec<String> {
    plan[0]["series"][0]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row[0] == "series_index")
        .filter_map(|row| row[1].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn one_write_with_the_same_point_twice_reads_as_one_point() {
    let n = node().await;
    n.write("m,h=a v=1,w=1 10\nm,h=a v=2 10").await;
    let rows = n.query("SELECT v, w FROM m").await;
    assert_eq!(
        rows[0]["series"][0]["values"],
        serde_json::json!([["1970-01-01T00:00:00.00000001Z", 2, 1]])
    );
    n.close().await;
}

#[tokio::test]
async fn sources_overlapping_outside_the_query_range_are_not_merged() {
    let n = node().await;
    // A file up to time 100, and a buffered write at time 100 too: the two overlap at 100 only.
    let body: String = (0..=10)
        .map(|i| format!("m,h=a v={i} {}\n", i * 10))
        .collect();
    n.write(&body).await;
    n.ingester.persist().await.unwrap();
    n.write("m,h=b v=1 100\nm,h=b v=2 200").await;
    let ctx = querier::scan::session(2);
    let stats = n.scan(&ctx, 0, 50).await.stats;
    assert_eq!(
        (
            stats.files_scanned,
            stats.batches_in_memory,
            stats.shards_merged
        ),
        (1, 0, 0),
        "query before the overlap: plain scans, {stats:?}"
    );
    let stats = n.scan(&ctx, 90, 110).await.stats;
    assert_eq!(
        stats.shards_merged, 1,
        "query across the overlap: merged by series and time there, {stats:?}"
    );
    let rows = n
        .query("SELECT v FROM m WHERE time >= 90 AND time <= 110 GROUP BY h")
        .await;
    assert_eq!(rows[0]["series"].as_array().unwrap().len(), 2);
    n.close().await;
}

/// A scan expected to read few rows runs in one partition (no repartitioning for a
/// one-series dashboard query); a large one is split across cores.
#[tokio::test]
async fn small_scans_run_in_one_partition() {
    let n = node().await;
    let body: String = (0..120_000)
        .map(|i| format!("m,host=h{} v={i} {}\n", i % 100, 1_000_000 + i))
        .collect();
    n.write(&body).await;
    n.ingester.persist().await.unwrap();
    let ctx = querier::scan::session(2);
    let partitions = async |min, max| {
        let df = n.scan(&ctx, min, max).await.df.build().unwrap();
        df.task_ctx().session_config().target_partitions()
    };
    assert_eq!(partitions(0, 2_000_000).await, 2, "all 120k rows");
    // A tenth of the file's time span: about 12k rows.
    assert_eq!(partitions(1_000_000, 1_012_000).await, 1, "about 12k rows");

    // Once the file's series index is loaded (by a first query), a condition on one or two
    // hosts of the 100 counts their share of its rows: 1.2k or 2.4k rows, one partition.
    let groups = async |q: &str| {
        let plan = n.query(&format!("EXPLAIN {q}")).await.to_string();
        (plan.contains("file_groups={1 group"), plan)
    };
    let one = "SELECT count(v) FROM m WHERE host = 'h7'";
    n.query(one).await;
    let (single, plan) = groups(one).await;
    assert!(single, "{plan}");
    let (single, plan) =
        groups("SELECT count(v) FROM m WHERE (host = 'h7' OR host = 'h8') AND v > 0").await;
    assert!(single, "{plan}");
    let (single, plan) = groups("SELECT count(v) FROM m").await;
    assert!(!single, "all 120k rows: {plan}");
    let (single, plan) = groups("SELECT count(v) FROM m WHERE host != 'h7'").await;
    assert!(!single, "99 hosts: {plan}");
    assert_eq!(n.query(one).await[0]["series"][0]["values"][0][1], 1200);
}

const LAST_VALUES: &[&str] = &[
    "SELECT last(*) FROM m GROUP BY h",
    "SELECT last(x) FROM m",
    "SELECT last(x) FROM m GROUP BY *",
    "SELECT last(y), last(z) FROM m WHERE h = 'a' OR h = 'c' GROUP BY h",
    "SELECT last(x) FROM m WHERE y > 0 GROUP BY h",
];

#[tokio::test]
async fn last_values_skip_rows_before_every_series_last_ones() {
    let n = node().await;
    // Each series' last x, y and z are at different rows; the earliest of them is at 5.
    n.write("m,h=a x=0 1\nm,h=b x=0,y=0 2\nm,h=a x=1,y=1 10\nm,h=a y=2 20\nm,h=b x=5 30\nm,h=b y=7 15\nm,h=c z=1 5\nm,h=c x=2 40").await;
    let mut expected = Vec::new();
    for q in LAST_VALUES {
        expected.push(n.query(q).await);
    }
    n.ingester.persist().await.unwrap();
    for (q, e) in LAST_VALUES.iter().zip(&expected) {
        assert_eq!(&n.query(q).await, e, "from a file: {q}");
    }
    // a's last x is not in its last row.
    let by_host = n.query("SELECT last(x) FROM m GROUP BY h").await;
    let lasts: Vec<&Value> = by_host[0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["values"][0])
        .collect();
    assert_eq!(
        lasts,
        [
            &serde_json::json!(["1970-01-01T00:00:00.00000001Z", 1]),
            &serde_json::json!(["1970-01-01T00:00:00.00000003Z", 5]),
            &serde_json::json!(["1970-01-01T00:00:00.00000004Z", 2]),
        ]
    );
    // The file's rows from its bound were read once and kept (querier::last_rows): the two
    // rows before 5 are left out.
    assert_eq!(n.exec.last_rows().bounds(), [(5, Some(6))]);
    let plan = n
        .query("EXPLAIN ANALYZE SELECT last(x) FROM m WHERE y > 0")
        .await;
    assert!(
        !plan.to_string().contains(" >= 5"),
        "a condition on a field keeps every row: {plan}"
    );
    // A second file and the buffer, then one compacted file: still the same bound rule.
    n.write("m,h=c z=3 50").await;
    n.ingester.persist().await.unwrap();
    n.write("m,h=a x=8 45").await;
    let mut expected = Vec::new();
    for q in LAST_VALUES {
        expected.push(n.query(q).await);
    }
    n.ingester.persist().await.unwrap();
    assert_eq!(n.ingester.compact(i64::MAX).await.unwrap(), 1);
    for (q, e) in LAST_VALUES.iter().zip(&expected) {
        assert_eq!(&n.query(q).await, e, "after compaction: {q}");
    }
    // The compacted file's bound comes from its own rows (b's last y at 15), not from the
    // earliest input's (c's z at 5): its six rows from 15 are kept.
    assert!(
        n.exec.last_rows().bounds().contains(&(15, Some(6))),
        "the compacted file's bound: {:?}",
        n.exec.last_rows().bounds()
    );
    // Deleting a's later rows leaves its last x before every recorded bound: a delete turns
    // the bound off, before compaction and after it.
    n.ingester
        .delete(&ingester::DeleteScope {
            database: "db".into(),
            retention_policy: None,
            measurements: Some(vec!["m".into()]),
            predicate: Some(ingester::TagPredicate::Eq("h".into(), "a".into())),
            min_time: 10,
            max_time: 100,
        })
        .await
        .unwrap();
    let only_a = serde_json::json!(["1970-01-01T00:00:00.000000001Z", 0]);
    let q = "SELECT last(x) FROM m WHERE h = 'a'";
    assert_eq!(n.query(q).await[0]["series"][0]["values"][0], only_a);
    n.ingester.compact(i64::MAX).await.unwrap();
    assert_eq!(
        n.query(q).await[0]["series"][0]["values"][0],
        only_a,
        "compacted"
    );
    n.close().await;
}

/// A kept plan runs again without the dynamic filters a TopK pushed into its scan: they hold
/// what the plan's last run learnt (`ORDER BY time DESC LIMIT 2` answered one row from files
/// from its second run on).
#[tokio::test]
async fn a_kept_plan_with_a_limit_answers_the_same_each_time() {
    let n = node().await;
    let body: String = (0..2000)
        .map(|i| format!("m,h=h{} x={i} {}\n", i % 2, 10 + i))
        .collect();
    n.write(&body).await;
    let queries = [
        ("SELECT x FROM m ORDER BY time DESC LIMIT 2", 2),
        ("SELECT x FROM m ORDER BY time LIMIT 2", 2),
        (
            "SELECT x FROM m WHERE h = 'h1' ORDER BY time DESC LIMIT 3",
            3,
        ),
        ("SELECT * FROM m ORDER BY time DESC LIMIT 1", 1),
        ("SELECT x FROM m ORDER BY time DESC LIMIT 2 OFFSET 1", 2),
        ("SELECT max(x), min(x) FROM m", 1),
    ];
    for state in ["buffered", "persisted"] {
        for (q, rows) in queries {
            let first = n.query(q).await;
            let got = first[0]["series"][0]["values"]
                .as_array()
                .map_or(0, Vec::len);
            assert_eq!(got, rows, "{state}: {q}: {first}");
            for run in 1..4 {
                assert_eq!(n.query(q).await, first, "{state}: {q}: run {run}");
            }
        }
        n.ingester.persist().await.unwrap();
    }
    n.close().await;
}

/// A file's rows from its shard's last-value bound are read once and kept (querier::last_rows);
/// later queries of last values answer from them as from the file. A bound that leaves too
/// many rows (a series that stopped long ago holds it back) has its file scanned each time, and
/// that is kept too; compaction's new file is kept from its own bound.
#[tokio::test]
async fn files_rows_from_their_bounds_are_kept_where_few() {
    let n = node().await;
    // a stops at 5; b goes on for 20,000 points after it.
    let mut body = String::from("m,h=a x=1 1\nm,h=a x=2,y=1 5\n");
    for i in 0..20_000 {
        body.push_str(&format!("m,h=b x={i} {}\n", 10 + i));
    }
    n.write(&body).await;
    let queries = [
        "SELECT * FROM m GROUP BY h ORDER BY time DESC LIMIT 1",
        "SELECT last(x) FROM m GROUP BY h",
        "SELECT last(*) FROM m",
        "SELECT x, y FROM m WHERE h = 'a' ORDER BY time DESC LIMIT 1",
    ];
    let answers = async || {
        let mut all = Vec::new();
        for q in queries {
            all.push(n.query(q).await);
        }
        all
    };
    let buffered = answers().await;
    assert_eq!(
        buffered[0][0]["series"][0]["values"][0],
        serde_json::json!(["1970-01-01T00:00:00.000020009Z", 19_999, null]),
        "b's newest, first under ORDER BY time DESC"
    );
    n.ingester.persist().await.unwrap();
    for round in 0..2 {
        assert_eq!(answers().await, buffered, "from the file, round {round}");
    }
    assert_eq!(
        n.exec.last_rows().bounds(),
        [(5, None)],
        "20,001 rows from 5"
    );
    // a reports again, into a second file; the shard's bound stays at 5.
    n.write("m,h=a x=3 30000").await;
    let buffered = answers().await;
    n.ingester.persist().await.unwrap();
    assert_eq!(answers().await, buffered, "from two files");
    assert_eq!(n.exec.last_rows().bounds(), [(5, None), (5, Some(1))]);
    // One file now: a's only y, at 5, still holds the bound back, so the new file is scanned.
    assert_eq!(n.ingester.compact(i64::MAX).await.unwrap(), 1);
    for round in 0..2 {
        assert_eq!(answers().await, buffered, "compacted, round {round}");
    }
    assert_eq!(
        n.exec.last_rows().bounds(),
        [(5, None), (5, None), (5, Some(1))]
    );
    // With a's y newer, the bound moves to b's newest (20,009): two rows kept.
    n.write("m,h=a y=2 30001").await;
    let buffered = answers().await;
    n.ingester.persist().await.unwrap();
    assert_eq!(n.ingester.compact(i64::MAX).await.unwrap(), 1);
    for round in 0..2 {
        assert_eq!(answers().await, buffered, "compacted again, round {round}");
    }
    assert!(
        n.exec.last_rows().bounds().contains(&(20_009, Some(3))),
        "{:?}",
        n.exec.last_rows().bounds()
    );
    n.close().await;
}

/// Queries of last values read each source from its bound: a field that appears later (in the
/// buffer, then in a file of its own) is answered beside the file's; the newest row, a time
/// range and a tag condition answer from the same bounds.
#[tokio::test]
async fn last_values_follow_new_fields_time_ranges_and_tags() {
    let n = node().await;
    let body: String = (0..300)
        .map(|i| format!("m,h=h{} x={i} {}\n", i % 3, 1000 + i))
        .collect();
    n.write(&body).await;
    n.ingester.persist().await.unwrap();
    let lasts = async |q: &str| -> Vec<Value> {
        let v = n.query(q).await;
        v[0]["series"]
            .as_array()
            .map(|s| s.iter().map(|s| s["values"][0].clone()).collect())
            .unwrap_or_default()
    };
    let t = |ns: i64| format!("1970-01-01T00:00:00.00000{ns}Z");
    let q = "SELECT last(*) FROM m GROUP BY h";
    assert_eq!(
        lasts(q).await,
        [
            serde_json::json!([t(1297), 297]),
            serde_json::json!([t(1298), 298]),
            serde_json::json!([t(1299), 299]),
        ]
    );
    n.write("m,h=h1 w=7 1300").await;
    // Two selectors: 1.x answers time zero.
    let zero = "1970-01-01T00:00:00Z";
    let with_w = [
        serde_json::json!([zero, null, 297]),
        serde_json::json!([zero, 7, 298]),
        serde_json::json!([zero, null, 299]),
    ];
    assert_eq!(lasts(q).await, with_w, "w in the buffer");
    n.ingester.persist().await.unwrap();
    assert_eq!(lasts(q).await, with_w, "w in a file of its own");
    // The newest row of each series, as TSBS's lastpoint asks for it (series in descending
    // order, as 1.x lists them for ORDER BY time DESC).
    let newest = lasts("SELECT * FROM m GROUP BY h ORDER BY time DESC LIMIT 1").await;
    assert_eq!(
        newest,
        [
            serde_json::json!([t(1299), null, 299]),
            serde_json::json!(["1970-01-01T00:00:00.0000013Z", 7, null]),
            serde_json::json!([t(1297), null, 297]),
        ]
    );
    assert_eq!(
        lasts("SELECT last(x) FROM m WHERE time >= 1298 GROUP BY h").await,
        [
            serde_json::json!([t(1298), 298]),
            serde_json::json!([t(1299), 299]),
        ]
    );
    assert_eq!(
        lasts("SELECT last(x) FROM m WHERE h = 'h0'").await,
        [serde_json::json!([t(1297), 297])]
    );
    n.close().await;
}

/// Many short series (three points per host, as a high-cardinality set has): the persisted
/// files write their float columns without dictionaries, and every query answers as it did
/// from the buffer, from those files and once they are compacted. 6,000 hosts make more than
/// one row group, so hosts in later groups are read from plain pages found by the page index.
#[tokio::test]
async fn short_series_answer_the_same_from_files_with_plain_floats() {
    let n = node().await;
    let hosts = 6000;
    let body: String = (0..hosts)
        .flat_map(|h| {
            (0..3).map(move |t| {
                format!(
                    "cpu,host=h{h:05},rack=r{} v={}.25,w={}i {}\n",
                    h % 7,
                    h * 3 + t,
                    t,
                    1_000 + t * 10
                )
            })
        })
        .collect();
    n.write(&body).await;
    let queries = [
        "SELECT * FROM cpu WHERE host = 'h05999'",
        "SELECT * FROM cpu WHERE host = 'h00042' OR host = 'h04242'",
        "SELECT max(v), count(w) FROM cpu WHERE host = 'h03000' AND time >= 1000 AND time < 1030 GROUP BY time(10ns)",
        "SELECT last(*) FROM cpu WHERE rack = 'r3' AND host =~ /h0599/ GROUP BY host",
        "SELECT * FROM cpu WHERE host =~ /h0420/ GROUP BY host ORDER BY time DESC LIMIT 1",
        "SELECT sum(v), count(v) FROM cpu WHERE time > 1000",
        "SHOW TAG VALUES WITH KEY = rack WHERE host = 'h05000'",
    ];
    let answers =
        async |stage: &str| -> Vec<Value> { non_empty_answers(&n, &queries, stage).await };
    let buffered = answers("buffered").await;
    assert_eq!(
        buffered[0][0]["series"][0]["values"][2],
        serde_json::json!(["1970-01-01T00:00:00.00000102Z", "h05999", "r0", 17999.25, 2]),
        "{}",
        buffered[0]
    );
    assert_eq!(
        buffered[6][0]["series"][0]["values"],
        serde_json::json!([["rack", "r2"]]),
        "{}",
        buffered[6]
    );
    n.ingester.persist().await.unwrap();
    // The persisted file: float columns without dictionaries, in several row groups.
    let files: Vec<std::path::PathBuf> = walk(n.ingester.data_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!files.is_empty());
    for f in &files {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let reader = SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap();
        let meta = reader.metadata();
        assert!(meta.num_row_groups() > 1, "{f:?}");
        for g in meta.row_groups() {
            for c in g.columns() {
                let plain = c.dictionary_page_offset().is_none();
                match c.column_path().string().as_str() {
                    "v" | "time" => assert!(plain, "{f:?}: {c:?}"),
                    _ => assert!(!plain, "{f:?}: {c:?}"),
                }
            }
        }
    }
    assert_eq!(answers("persisted").await, buffered);
    n.ingester.compact(0).await.unwrap();
    assert_eq!(answers("compacted").await, buffered);
    n.close().await;
}

/// Each query's answer, asserted to hold rows (`stage` names the data's state in a failure).
async fn non_empty_answers(n: &Node, queries: &[&str], stage: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for q in queries {
        let a = n.query(q).await;
        assert!(
            a[0]["series"][0]["values"]
                .as_array()
                .is_some_and(|v| !v.is_empty()),
            "{stage}: {q}: {a}"
        );
        out.push(a);
    }
    out
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

/// Pairs of queries of one shape with other values: the second runs from the plan the first
/// left (where it can be bound) and must answer as a fresh plan does.
const SAME_SHAPE: &[(&str, &str, bool)] = &[
    (
        "SELECT max(usage) FROM cpu WHERE host = 'a' AND time >= 0 AND time < 100 GROUP BY time(20ns)",
        "SELECT max(usage) FROM cpu WHERE host = 'b' AND time >= 20 AND time < 60 GROUP BY time(20ns)",
        true,
    ),
    (
        "SELECT max(usage), min(idle) FROM cpu WHERE (host = 'a' OR host = 'b' OR host = 'c' OR host = 'd') AND time >= 0 AND time < 50 GROUP BY time(10ns) fill(0)",
        "SELECT max(usage), min(idle) FROM cpu WHERE (host = 'b' OR host = 'c' OR host = 'd' OR host = 'e') AND time >= 30 AND time < 90 GROUP BY time(10ns) fill(0)",
        true,
    ),
    (
        "SELECT usage, idle FROM cpu WHERE usage > 1.5 AND time >= 0 AND time <= 100",
        "SELECT usage, idle FROM cpu WHERE usage > 5.5 AND time >= 20 AND time <= 70",
        true,
    ),
    // One old value would have to become two: planned afresh.
    (
        "SELECT usage FROM cpu WHERE (host = 'a' OR host = 'a') AND time >= 0 AND time <= 100",
        "SELECT usage FROM cpu WHERE (host = 'a' OR host = 'b') AND time >= 0 AND time <= 100",
        false,
    ),
    // A tag compared otherwise than `= 'value'` is `coalesce(tag, '')` (a missing tag is
    // empty in 1.x), which the optimizer makes a CASE expression; the value that changes is
    // outside it.
    (
        "SELECT usage FROM cpu WHERE host != 'a' AND time >= 0 AND time <= 100",
        "SELECT usage FROM cpu WHERE host != 'c' AND time >= 0 AND time <= 100",
        true,
    ),
    // The optimizer rewrites simple patterns (`~ 'a'` as `LIKE '%a%'`), so the pattern is not
    // found as written: planned afresh.
    (
        "SELECT usage FROM cpu WHERE host =~ /a/ AND time >= 0 AND time <= 100",
        "SELECT usage FROM cpu WHERE host =~ /b|c/ AND time >= 0 AND time <= 100",
        false,
    ),
    // A value that changes inside a function call: planned afresh.
    (
        "SELECT usage FROM cpu WHERE abs(usage - 2.5) > 1.0 AND time >= 0 AND time <= 100",
        "SELECT usage FROM cpu WHERE abs(usage - 3.5) > 1.0 AND time >= 0 AND time <= 100",
        false,
    ),
    // An aggregate without GROUP BY time reports the range's start as its time, a value
    // outside the filters: another start is another plan (and another statement template).
    (
        "SELECT count(usage) FROM cpu WHERE host = 'a' AND time >= 0 AND time <= 100",
        "SELECT count(usage) FROM cpu WHERE host = 'b' AND time >= 30 AND time <= 80",
        false,
    ),
    // One that does not: bound.
    (
        "SELECT usage FROM cpu WHERE abs(usage) > 2.5 AND time >= 0 AND time <= 100",
        "SELECT usage FROM cpu WHERE abs(usage) > 3.5 AND time >= 0 AND time <= 100",
        true,
    ),
    // Parameters of InfluxQL's functions that a plan's display does not show (its functions'
    // names only): other plans, not bound.
    (
        "SELECT percentile(usage, 50) FROM cpu WHERE host = 'a' AND time >= 0 AND time < 100 GROUP BY time(50ns)",
        "SELECT percentile(usage, 90) FROM cpu WHERE host = 'a' AND time >= 0 AND time < 100 GROUP BY time(50ns)",
        false,
    ),
    (
        "SELECT integral(usage, 10ns) FROM cpu WHERE host = 'b' AND time >= 0 AND time < 100 GROUP BY time(50ns)",
        "SELECT integral(usage, 20ns) FROM cpu WHERE host = 'b' AND time >= 0 AND time < 100 GROUP BY time(50ns)",
        false,
    ),
    (
        "SELECT moving_average(usage, 2) FROM cpu WHERE host = 'c' AND time >= 0 AND time <= 100",
        "SELECT moving_average(usage, 3) FROM cpu WHERE host = 'c' AND time >= 0 AND time <= 100",
        false,
    ),
];

#[tokio::test]
async fn kept_plans_answer_as_fresh_plans_do() {
    let n = node().await;
    let mut body = String::new();
    for t in 1..10 {
        for (i, host) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let usage = (t * 3 + i as i64) as f64 / 2.0;
            body.push_str(&format!(
                "cpu,host={host} usage={usage},idle={}i {}\n",
                t + i as i64,
                t * 10
            ));
        }
    }
    n.write(&body).await;
    let fresh = querier::Executor::new(n.meta.clone(), Some(n.ingester.clone()));
    // Buffered rows (their scan is kept without them, and given the running query's), then
    // the same rows in files.
    same_shapes_answer_as_fresh_plans(&n, &fresh).await;
    n.ingester.persist().await.unwrap();
    same_shapes_answer_as_fresh_plans(&n, &fresh).await;
    n.close().await;
}

/// Each pair of [`SAME_SHAPE`]: the second statement runs the first's kept plan (or not, as
/// the pair says) and answers as a fresh executor does; so does the first again.
async fn same_shapes_answer_as_fresh_plans(n: &Node, fresh: &querier::Executor) {
    let ctx = QueryContext {
        database: Some("db".into()),
        ..Default::default()
    };
    for (first, second, bound) in SAME_SHAPE {
        let hits = n.exec.plans().hits();
        let templates = n.exec.plans().template_hits();
        n.query(first).await;
        assert_eq!(n.exec.plans().hits(), hits, "nothing kept yet for {first}");
        let answer = n.query(second).await;
        let stmts = querier::influxql::parse_query(second).unwrap();
        let expected = common::json_of(&fresh.execute(&stmts, &ctx).await);
        assert_eq!(answer, expected, "{second}");
        assert!(
            answer[0]["series"][0]["values"]
                .as_array()
                .is_some_and(|v| !v.is_empty()),
            "{second}: {answer}"
        );
        assert_eq!(n.exec.plans().hits() - hits, u64::from(*bound), "{second}");
        // A bound statement ran from the first one's template, without a logical plan of its
        // own (debug builds build it anyway, to check the template against it).
        assert_eq!(
            n.exec.plans().template_hits() - templates,
            u64::from(*bound),
            "{second}"
        );
        // And the first again, from the plan the second left or planned.
        let again = n.query(first).await;
        let stmts = querier::influxql::parse_query(first).unwrap();
        let expected = common::json_of(&fresh.execute(&stmts, &ctx).await);
        assert_eq!(again, expected, "{first} after {second}");
    }
}

/// `cpu,host=a|b usage=t` at t = 0..10 (times 0, 10, ..., 90).
fn two_hosts_ten_points() -> String {
    let mut body = String::new();
    for host in ["a", "b"] {
        for t in 0..10i64 {
            body.push_str(&format!("cpu,host={host} usage={t} {}\n", t * 10));
        }
    }
    body
}

/// A kept plan of buffered rows reads the rows buffered when it runs, not those it was planned
/// with: a write between two runs is in the second answer, a persist moves the rows to files.
#[tokio::test]
async fn a_kept_plan_of_buffered_rows_reads_the_rows_buffered_when_it_runs() {
    let n = node().await;
    n.write(&two_hosts_ten_points()).await;
    let query = |host: &str| {
        format!(
            "SELECT count(usage), max(usage) FROM cpu WHERE host = '{host}' AND time >= 0 AND time < 1000 GROUP BY time(500ns)"
        )
    };
    let first = |v: &Value| v[0]["series"][0]["values"][0].clone();
    assert_eq!(first(&n.query(&query("a")).await)[1], 10);
    let hits = n.exec.plans().hits();
    assert_eq!(first(&n.query(&query("b")).await)[1], 10);
    assert_eq!(
        n.exec.plans().hits(),
        hits + 1,
        "the kept plan ran for host b"
    );
    // A write: the buffer's rows change, the kept plan reads them.
    n.write("cpu,host=b usage=50 100\ncpu,host=b usage=60 110\n")
        .await;
    let answer = n.query(&query("b")).await;
    assert_eq!(
        first(&answer),
        serde_json::json!(["1970-01-01T00:00:00Z", 12, 60]),
        "{answer}"
    );
    assert_eq!(n.exec.plans().hits(), hits + 2, "the kept plan ran again");
    assert_eq!(first(&n.query(&query("a")).await)[1], 10);
    // Files and buffered rows together, then files only: other scans, the same answers.
    n.ingester.persist().await.unwrap();
    n.write("cpu,host=a usage=70 120\n").await;
    for _ in 0..2 {
        let answer = n.query(&query("a")).await;
        assert_eq!(
            first(&answer),
            serde_json::json!(["1970-01-01T00:00:00Z", 11, 70]),
            "{answer}"
        );
        let answer = n.query(&query("b")).await;
        assert_eq!(
            first(&answer),
            serde_json::json!(["1970-01-01T00:00:00Z", 12, 60]),
            "{answer}"
        );
    }
    // A kept plan holds no rows: its scans of buffered rows are kept without batches.
    let held = n.exec.plans().metrics_held();
    for host in ["a", "b", "a", "b"] {
        n.query(&query(host)).await;
    }
    assert_eq!(n.exec.plans().metrics_held(), held);
    n.close().await;
}

#[tokio::test]
async fn tables_of_file_sets_are_kept_for_their_files_and_schema() {
    let n = node().await;
    n.write(&two_hosts_ten_points()).await;
    n.ingester.persist().await.unwrap();
    let count = |v: &Value| v[0]["series"][0]["values"][0][1].clone();
    let usage = |host: &str| format!("SELECT count(usage) FROM cpu WHERE host = '{host}'");
    assert_eq!(count(&n.query(&usage("a")).await), 10);
    assert_eq!(n.exec.listings().len(), 1);
    // The same files: the same table.
    assert_eq!(count(&n.query(&usage("b")).await), 10);
    assert_eq!(n.exec.listings().len(), 1);
    // The same files under a wider schema (a buffered row with a new field): a table of that
    // schema, the files' rows without the field.
    n.write("cpu,host=a idle=5 1000\n").await;
    let answer = n.query("SELECT count(usage), count(idle) FROM cpu").await;
    assert_eq!(
        answer[0]["series"][0]["values"][0],
        serde_json::json!(["1970-01-01T00:00:00Z", 20, 1]),
        "{answer}"
    );
    // New files: their own table, with their rows.
    n.ingester.persist().await.unwrap();
    assert_eq!(count(&n.query("SELECT count(idle) FROM cpu").await), 1);
    assert_eq!(count(&n.query(&usage("a")).await), 10);
    assert_eq!(n.exec.listings().len(), 2);
    n.close().await;
}

#[tokio::test]
async fn a_frame_reads_its_files_after_compaction_replaces_them() {
    let n = node().await;
    for t in [10, 20] {
        n.write(&format!("m,host=a v={t} {t}\n")).await;
        n.ingester.persist().await.unwrap();
    }
    let ctx = querier::scan::session(2);
    let frame = n.scan(&ctx, 0, 100).await;
    assert_eq!(frame.stats.files_scanned, 2);
    // Compaction replaces both files before the frame runs (as it may while a query plans).
    assert_eq!(n.ingester.compact(i64::MAX).await.unwrap(), 1);
    let counted = frame.df.build().unwrap().count().await.unwrap();
    assert_eq!(counted, 2);
    drop(frame.pinned);
    // Once the frame is done, its files go; a new frame reads the compacted one.
    let frame = n.scan(&ctx, 0, 100).await;
    assert_eq!(frame.stats.files_scanned, 1);
    assert_eq!(frame.df.build().unwrap().count().await.unwrap(), 2);
    n.close().await;
}

#[tokio::test]
async fn runs_of_a_kept_plan_leave_no_metrics_in_it() {
    let n = node().await;
    let mut body = String::new();
    for host in ["a", "b", "c", "d", "e", "f"] {
        for t in 0..100i64 {
            body.push_str(&format!("cpu,host={host} usage={t} {}\n", t * 10));
        }
    }
    n.write(&body).await;
    n.ingester.persist().await.unwrap();
    let query = |host: &str| {
        format!(
            "SELECT max(usage) FROM cpu WHERE host = '{host}' AND time >= 0 AND time < 1000 GROUP BY time(100ns)"
        )
    };
    n.query(&query("a")).await;
    let (hits, held) = (n.exec.plans().hits(), n.exec.plans().metrics_held());
    let templates = n.exec.plans().template_hits();
    let attached = n.exec.indexes().scans_attached();
    for host in ["b", "c", "d", "e", "f"] {
        let answer = n.query(&query(host)).await;
        assert_eq!(
            answer[0]["series"][0]["values"].as_array().map(Vec::len),
            Some(10)
        );
    }
    assert_eq!(n.exec.plans().hits(), hits + 5);
    // The same statement with another host: no logical plan built (in release builds).
    assert_eq!(n.exec.plans().template_hits(), templates + 5);
    // Each run of the kept plan read only its host's rows.
    assert_eq!(n.exec.indexes().scans_attached(), attached + 5);
    // Each run counted into its own metrics (they used to pile up in the kept plan's scan,
    // about 14 KB a query).
    assert_eq!(n.exec.plans().metrics_held(), held);
    n.close().await;
}

#[tokio::test]
async fn kept_plans_of_scans_in_several_partitions_answer_as_fresh_plans_do() {
    let n = node().await;
    // More rows than a one-partition scan takes, so the plan repartitions.
    for host in ["a", "b", "c", "d"] {
        let mut body = String::new();
        for t in 0..30_000i64 {
            body.push_str(&format!(
                "cpu,host={host} usage={} {}\n",
                (t % 97) as f64 / 4.0,
                t * 10
            ));
        }
        n.write(&body).await;
    }
    n.ingester.persist().await.unwrap();
    let first = "SELECT max(usage), count(usage) FROM cpu WHERE host = 'a' AND time >= 0 AND time < 300000 GROUP BY time(50000ns)";
    let second = "SELECT max(usage), count(usage) FROM cpu WHERE host = 'c' AND time >= 10 AND time < 299990 GROUP BY time(50000ns)";
    let plan = n.query(&format!("EXPLAIN {second}")).await;
    assert!(plan.to_string().contains("RepartitionExec"), "{plan}");
    let fresh = querier::Executor::new(n.meta.clone(), Some(n.ingester.clone()));
    let ctx = QueryContext {
        database: Some("db".into()),
        ..Default::default()
    };
    n.query(first).await;
    let hits = n.exec.plans().hits();
    let answer = n.query(second).await;
    assert_eq!(n.exec.plans().hits(), hits + 1);
    let stmts = querier::influxql::parse_query(second).unwrap();
    let expected = common::json_of(&fresh.execute(&stmts, &ctx).await);
    assert_eq!(answer, expected);
    assert_eq!(
        answer[0]["series"][0]["values"].as_array().map(Vec::len),
        Some(6)
    );
    n.close().await;
}

#[tokio::test]
async fn selections_by_time_alone_answer_the_same_in_windows() {
    let n = node().await;
    // Three hosts, points every 7 ns with some gaps, in two measurements; half persisted, half
    // buffered (later times), so windows cut through files and buffers.
    let body = |from: i64, to: i64| -> String {
        let mut body = String::new();
        for t in (from..to).step_by(7) {
            for (i, host) in ["a", "b", "c"].iter().enumerate() {
                if (t / 7 + i as i64) % 5 == 0 {
                    continue;
                }
                body.push_str(&format!(
                    "cpu,host={host} v={},w={}i {t}\n",
                    t as f64 / 4.0,
                    t % 11
                ));
                if t % 3 == 0 {
                    body.push_str(&format!("mem,host={host} used={}i {t}\n", t * 2));
                }
            }
        }
        body
    };
    n.write(&body(0, 2100)).await;
    n.ingester.persist().await.unwrap();
    n.write(&body(2100, 3000)).await;
    let windowed =
        querier::Executor::new(n.meta.clone(), Some(n.ingester.clone())).with_window_rows(50);
    let whole =
        querier::Executor::new(n.meta.clone(), Some(n.ingester.clone())).with_window_rows(u64::MAX);
    let ctx = QueryContext {
        database: Some("db".into()),
        ..Default::default()
    };
    for q in [
        "SELECT * FROM cpu",
        "SELECT v, host FROM cpu WHERE host = 'b'",
        "SELECT * FROM cpu WHERE time >= 500 AND time <= 2500",
        "SELECT v FROM cpu LIMIT 137",
        "SELECT v FROM cpu WHERE time > 1000 ORDER BY time DESC LIMIT 61",
        "SELECT * FROM cpu ORDER BY time DESC",
        "SELECT * FROM cpu, mem",
        "SELECT * FROM /.*/ LIMIT 100",
        "SELECT v * 2 FROM cpu WHERE w > 3",
        "SELECT used FROM mem SLIMIT 1",
    ] {
        let stmts = querier::influxql::parse_query(q).unwrap();
        let a = common::json_of(&windowed.execute(&stmts, &ctx).await);
        let b = common::json_of(&whole.execute(&stmts, &ctx).await);
        assert_eq!(a, b, "{q}");
        assert!(
            a[0]["series"][0]["values"]
                .as_array()
                .is_some_and(|v| v.len() > 10),
            "{q}: {a}"
        );
    }
    n.close().await;
}

#[tokio::test]
async fn a_request_past_query_timeout_answers_1x_error_and_stops() {
    let n = node().await;
    n.write("cpu,host=a usage=1 10\ncpu,host=b usage=2 20")
        .await;
    let stmts = querier::influxql::parse_query("SELECT * FROM cpu; SHOW MEASUREMENTS").unwrap();
    let ctx = QueryContext {
        database: Some("db".into()),
        ..Default::default()
    };
    let ex = n
        .exec
        .clone()
        .with_query_timeout(std::time::Duration::from_nanos(1));
    let got = common::json_of(&ex.execute(&stmts, &ctx).await);
    assert_eq!(
        got,
        serde_json::json!([
            {"statement_id": 0, "error": "query-timeout limit exceeded"},
            {"statement_id": 1, "error": "not executed"}
        ])
    );
    // Zero is no limit.
    let ex = n.exec.clone().with_query_timeout(std::time::Duration::ZERO);
    let got = common::json_of(&ex.execute(&stmts, &ctx).await);
    assert!(
        got[0]["series"].is_array() && got[1]["series"].is_array(),
        "{got}"
    );
}

#[tokio::test]
async fn show_queries_lists_and_kill_query_interrupts_a_running_request() {
    let n = node().await;
    let lines: Vec<String> = (0..200)
        .map(|h| format!("cpu,host=h{h} usage={h} 10"))
        .collect();
    n.write(&lines.join("\n")).await;
    let ctx = QueryContext {
        database: Some("db".into()),
        ..Default::default()
    };
    // A request whose reader is slow: 200 series wait in a channel of a few items, so the
    // request stays running.
    let slow = querier::influxql::parse_query("SELECT * FROM cpu GROUP BY host").unwrap();
    let mut answer = n.exec.run(slow, ctx.clone());
    let first = answer.recv().await.expect("a first item");
    assert!(
        matches!(first, querier::result::Item::Series { .. }),
        "{first:?}"
    );
    let show = querier::influxql::parse_query("SHOW QUERIES").unwrap();
    let listed = common::json_of(&n.exec.execute(&show, &ctx).await);
    let rows = listed[0]["series"][0]["values"].as_array().unwrap().clone();
    assert_eq!(
        listed[0]["series"][0]["columns"],
        serde_json::json!(["qid", "query", "database", "duration", "status"])
    );
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0][1], "SELECT * FROM cpu GROUP BY host");
    assert_eq!(
        (rows[0][2].as_str(), rows[0][4].as_str()),
        (Some("db"), Some("running"))
    );
    assert_eq!(rows[1][1], "SHOW QUERIES");
    let qid = rows[0][0].as_u64().unwrap();

    let kill = querier::influxql::parse_query(&format!("KILL QUERY {qid}")).unwrap();
    let killed = common::json_of(&n.exec.execute(&kill, &ctx).await);
    assert_eq!(killed, serde_json::json!([{"statement_id": 0}]));
    // The slow request ends with 1.x's error, before all its series.
    let mut series = 1;
    let mut end = None;
    while let Some(item) = answer.recv().await {
        match item {
            querier::result::Item::Series { .. } => series += 1,
            querier::result::Item::End { error, .. } => end = Some(error),
            _ => {}
        }
    }
    assert_eq!(end, Some(Some("query interrupted".to_string())));
    assert!(series < 200, "{series} series sent");
    // It is gone from the list; an unknown qid is 1.x's error.
    let listed = common::json_of(&n.exec.execute(&show, &ctx).await);
    assert_eq!(
        listed[0]["series"][0]["values"].as_array().map(Vec::len),
        Some(1)
    );
    let kill = querier::influxql::parse_query(&format!("KILL QUERY {qid}")).unwrap();
    assert_eq!(
        common::json_of(&n.exec.execute(&kill, &ctx).await),
        serde_json::json!([{"statement_id": 0, "error": format!("no such query id: {qid}")}])
    );
    let elsewhere = querier::influxql::parse_query("KILL QUERY 1 ON \"otherhost:8088\"").unwrap();
    let got = common::json_of(&n.exec.execute(&elsewhere, &ctx).await);
    assert!(
        got[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no node of the cluster has that address")),
        "{got}"
    );
    n.close().await;
}

#[tokio::test]
async fn past_max_concurrent_queries_a_request_is_refused_whole() {
    let n = node().await;
    n.write("cpu,host=a usage=1 10").await;
    let ex = n
        .exec
        .clone()
        .with_query_limits(1, std::time::Duration::ZERO);
    let ctx = QueryContext {
        database: Some("db".into()),
        ..Default::default()
    };
    let stmts = querier::influxql::parse_query("SELECT * FROM cpu; SHOW MEASUREMENTS").unwrap();
    // One request running (held here), so the next is one too many.
    let running = ex
        .queries()
        .attach("SELECT sleep".into(), "db".into())
        .unwrap();
    assert_eq!(
        common::json_of(&ex.execute(&stmts, &ctx).await),
        serde_json::json!([{"statement_id": 0, "error": "max-concurrent-queries limit exceeded(1, 1)"}])
    );
    drop(running);
    let got = common::json_of(&ex.execute(&stmts, &ctx).await);
    assert!(
        got[0]["series"].is_array() && got[1]["series"].is_array(),
        "{got}"
    );
    n.close().await;
}

/// SQL's newest row per tag (`DISTINCT ON (tags) ... ORDER BY tags, time DESC`, TSBS's SQL
/// `lastpoint`) reads only rows at or after every series' last one, and answers the same as a
/// scan of every row would; with a filter that could hide newer rows, every row is read.
#[tokio::test]
async fn sql_newest_row_per_tag_skips_older_rows_and_answers_the_same() {
    let n = node().await;
    let mut lines = Vec::new();
    for t in 1..=50i64 {
        lines.push(format!("cpu,host=a usage={t} {}", t * 1_000_000_000));
        lines.push(format!(
            "cpu,host=b usage={} {}",
            100 + t,
            t * 1_000_000_000 + 1
        ));
    }
    // Host c stopped early: its last row is the bound.
    lines.push("cpu,host=c usage=7 40000000000".to_string());
    n.write(&lines.join("\n")).await;
    n.ingester.persist().await.unwrap();
    let ctx = querier::sql::session(&n.exec, "db").await.unwrap();
    let rows = |q: &str| {
        let ctx = ctx.clone();
        let q = q.to_string();
        async move {
            let batches = ctx.sql(&q).await.unwrap().collect().await.unwrap();
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
        }
    };
    let newest = "SELECT DISTINCT ON (host) host, usage FROM cpu ORDER BY host, time DESC";
    assert_eq!(
        rows(newest).await,
        "+------+-------+\n| host | usage |\n+------+-------+\n| a    | 50.0  |\n| b    | 150.0 |\n| c    | 7.0   |\n+------+-------+"
    );
    // The file was read from the bound, and those rows kept (querier::last_rows): 11 each
    // of a and b, c's one.
    assert_eq!(n.exec.last_rows().bounds(), [(40_000_000_000, Some(23))]);
    // A filter could hide the newest rows: all rows are read, and the answer is right.
    let filtered =
        "SELECT DISTINCT ON (host) host, usage FROM cpu WHERE usage < 40 ORDER BY host, time DESC";
    assert_eq!(
        rows(filtered).await,
        "+------+-------+\n| host | usage |\n+------+-------+\n| a    | 39.0  |\n| c    | 7.0   |\n+------+-------+"
    );
    let plan = rows(&format!("EXPLAIN {filtered}")).await;
    assert!(!plan.contains("40000000000"), "{plan}");
    // Oldest first is not the newest row: no bound either.
    let oldest = "SELECT DISTINCT ON (host) host, usage FROM cpu ORDER BY host, time ASC";
    assert!(rows(&oldest).await.contains("| a    | 1.0   |"));
    n.close().await;
}

#[tokio::test]
async fn sql_statements_are_running_queries_that_can_be_killed_or_time_out() {
    use futures::StreamExt;
    use gateway::statement::{Access, Params, run_sql};
    let n = node().await;
    n.write("cpu,host=a usage=1 1000000000").await;
    let access = Access {
        auth: std::sync::Arc::new(gateway::auth::Auth::new(
            false,
            String::new(),
            0,
            n.exec.meta_service().clone(),
        )),
        caller: None,
    };
    let sql = "SELECT usage FROM cpu";
    // Listed while its answer is being read, as SHOW QUERIES lists InfluxQL requests.
    let mut answer = run_sql(&n.exec, &access, Some("db"), sql, Params::None)
        .await
        .unwrap();
    let listed = n.exec.queries().list();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].text.as_str(), listed[0].database.as_str()),
        (sql, "db")
    );
    // KILL QUERY: the next read is the error, then the end (never a cut answer as a whole).
    n.exec.queries().kill(listed[0].id).unwrap();
    let first = answer.batches.next().await.expect("an item");
    assert_eq!(first.unwrap_err().to_string(), "query interrupted");
    assert!(answer.batches.next().await.is_none());
    drop(answer);
    assert!(n.exec.queries().list().is_empty(), "ended with its stream");
    // [coordinator] query-timeout.
    let ex = n
        .exec
        .clone()
        .with_query_timeout(std::time::Duration::from_millis(1));
    let mut answer = run_sql(&ex, &access, Some("db"), sql, Params::None)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let first = answer.batches.next().await.expect("an item");
    assert_eq!(
        first.unwrap_err().to_string(),
        "query-timeout limit exceeded"
    );
    // Without either, the rows.
    let mut answer = run_sql(&n.exec, &access, Some("db"), sql, Params::None)
        .await
        .unwrap();
    let batch = answer.batches.next().await.expect("an item").unwrap();
    assert_eq!(batch.num_rows(), 1);
    // Polled again after its end, the answer stays ended (it does not panic).
    assert!(answer.batches.next().await.is_none());
    assert!(answer.batches.next().await.is_none());
}

/// Transformations, technical analysis, forecasts, counts of empty buckets and SHOW conditions
/// give the same answers whether the points are buffered, half persisted, persisted or
/// compacted, over 60 000 points with gaps.
#[tokio::test]
async fn influxql_functions_answer_the_same_wherever_the_data_is() {
    let n = node().await;
    let body = |from: i64, to: i64| -> String {
        let mut body = String::new();
        for t in from..to {
            for (i, host) in ["a", "b", "c"].iter().enumerate() {
                // Host b misses whole stretches: empty buckets.
                if i == 1 && (t / 500) % 7 == 3 {
                    continue;
                }
                let v = 10.0 + 5.0 * ((t + 100 * i as i64) as f64 / 300.0).sin();
                body.push_str(&format!(
                    "cpu,host={host} v={v},w={}i {}\n",
                    (t * 7 + i as i64) % 13,
                    t * 10
                ));
            }
        }
        body
    };
    let queries = [
        "SELECT exponential_moving_average(v, 20), relative_strength_index(v, 14) FROM cpu WHERE host = 'a'",
        "SELECT triple_exponential_derivative(v, 5, 1, 'simple') FROM cpu WHERE host = 'b' AND time < 30000",
        "SELECT relative_strength_index(mean(v), 5) FROM cpu WHERE time >= 0 AND time < 200000 GROUP BY time(1000ns), host",
        "SELECT kaufmans_adaptive_moving_average(max(w), 4) FROM cpu WHERE time >= 0 AND time < 200000 GROUP BY time(2000ns)",
        "SELECT chande_momentum_oscillator(v, 10) FROM cpu WHERE host = 'c' LIMIT 1000 OFFSET 5000",
        "SELECT holt_winters_with_fit(first(v), 5, 4) FROM cpu WHERE time >= 0 AND time < 40000 GROUP BY time(1000ns), host",
        "SELECT holt_winters(max(w), 3, 0), mean(v) FROM cpu WHERE host = 'b' AND time >= 0 AND time < 40000 GROUP BY time(1000ns)",
        "SELECT count(w), count(v) + 1 FROM cpu WHERE time >= 0 AND time < 200000 GROUP BY time(5000ns), host",
        "SELECT moving_average(mean(v), 3), derivative(mean(v)) * 2 FROM cpu WHERE time >= 10000 AND time < 200000 GROUP BY time(5000ns), host",
        "SELECT derivative(*, 1u) FROM cpu WHERE host = 'b' LIMIT 500",
        "SELECT moving_average(v, 3) * 2 FROM cpu WHERE host = 'c' AND time < 50000",
        // Several calls in a field (a subquery) and a fill of buckets with other fields only.
        "SELECT derivative(v) + difference(w) FROM cpu WHERE host = 'a' AND time < 50000",
        "SELECT moving_average(mean(v), 2) * count(w), max(w) FROM cpu WHERE time >= 0 AND time < 100000 GROUP BY time(5000ns), host",
        "SELECT derivative(holt_winters(mean(v), 3, 0)) FROM cpu WHERE host = 'b' AND time >= 0 AND time < 40000 GROUP BY time(1000ns)",
        "SELECT mean(w), mean(v) FROM cpu WHERE time >= 0 AND time < 100000 GROUP BY time(1000ns), host fill(0)",
        "SHOW TAG VALUES WITH KEY = host WHERE v = 'x' AND host != 'a'",
        "SHOW MEASUREMENTS WHERE host !~ /d/",
    ];
    async fn answers(n: &Node, queries: &[&str]) -> Vec<Value> {
        non_empty_answers(n, queries, "").await
    }
    // Half persisted, half buffered.
    n.write(&body(0, 10_000)).await;
    n.ingester.persist().await.unwrap();
    n.write(&body(10_000, 20_000)).await;
    let half = answers(&n, &queries).await;
    n.ingester.persist().await.unwrap();
    let persisted = answers(&n, &queries).await;
    n.ingester.compact(0).await.unwrap();
    let compacted = answers(&n, &queries).await;
    for (i, q) in queries.iter().enumerate() {
        assert_eq!(half[i], persisted[i], "half buffered vs persisted: {q}");
        assert_eq!(persisted[i], compacted[i], "persisted vs compacted: {q}");
    }
    n.close().await;

    // All of it in the buffer, in a node of its own.
    let m = node().await;
    m.write(&body(0, 20_000)).await;
    let buffered = answers(&m, &queries).await;
    for (i, q) in queries.iter().enumerate() {
        assert_eq!(buffered[i], persisted[i], "buffered vs persisted: {q}");
    }
    m.close().await;
}

/// `GROUP BY time(d, now())`: the buckets start at the statement's now, into its interval.
#[tokio::test]
async fn group_by_time_now_aligns_the_buckets_on_now() {
    let n = node().await;
    let minute = 60_000_000_000i64;
    let start = ingester::now_nanos();
    let body: String = (0..30)
        .map(|i| format!("cpu,host=a v={i} {}\n", start - i * minute))
        .collect();
    n.write(&body).await;
    let before = ingester::now_nanos();
    let a = n
        .query(
            "SELECT count(v) FROM cpu WHERE time > now() - 1h GROUP BY time(7m, now()) fill(none)",
        )
        .await;
    let after = ingester::now_nanos();
    let rows = a[0]["series"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(rows.len() >= 4, "{a}");
    let every = 7 * minute;
    let mut total = 0;
    for r in &rows {
        let t = chrono::DateTime::parse_from_rfc3339(r[0].as_str().unwrap())
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        // Some now between the request's start and end falls on a bucket start.
        assert!(
            (t - before).rem_euclid(every) <= after - before,
            "{t} vs now in [{before}, {after}]"
        );
        total += r[1].as_i64().unwrap();
    }
    assert_eq!(total, 30, "{a}");
    n.close().await;
}

#[tokio::test]
async fn each_shard_is_read_from_its_own_last_value_bound() {
    let n = node().await;
    // Two shard groups a week apart: a and b report in the first, only a in the second.
    let week: i64 = 7 * 86_400 * 1_000_000_000;
    let body = format!(
        "m,h=a x=1 10\nm,h=a x=2 20\nm,h=b x=3 30\nm,h=a x=4 {}\nm,h=a x=5 {}",
        week + 10,
        week + 20
    );
    n.write(&body).await;
    let newest = "SELECT * FROM m GROUP BY h ORDER BY time DESC LIMIT 1";
    for state in ["buffered", "persisted"] {
        for q in [newest, "SELECT last(*) FROM m GROUP BY h"] {
            let plan = n.query(&format!("EXPLAIN ANALYZE {q}")).await.to_string();
            // The first shard from its series' earliest last time (a's, 20), the second from
            // its own (a's, a week later): not both from the smaller. Buffered rows are
            // filtered from them; files' rows from them are kept (querier::last_rows).
            if state == "buffered" {
                assert!(
                    plan.contains(" >= 20") && plan.contains(&format!(" >= {}", week + 20)),
                    "{state}: {q}: {plan}"
                );
            } else {
                // a's 20 and b's 30 from the first file; a's newest from the second.
                assert_eq!(
                    n.exec.last_rows().bounds(),
                    [(20, Some(2)), (week + 20, Some(1))],
                    "{state}: {q}"
                );
            }
        }
        let got = n.query(newest).await;
        let rows: Vec<&Value> = got[0]["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["values"][0][1])
            .collect();
        // Series in descending tag order under ORDER BY time DESC (as 1.x): b, then a.
        assert_eq!(
            rows,
            [&serde_json::json!(3), &serde_json::json!(5)],
            "{state}: {got}"
        );
        n.ingester.persist().await.unwrap();
    }
    n.close().await;
}

#[tokio::test]
async fn a_selection_of_every_field_reads_without_a_filter_on_them() {
    let n = node().await;
    n.write("m,h=a v=1,w=2 1\nm,h=a w=3 2\nm,h=b v=4 3").await;
    let plan = n.query("EXPLAIN ANALYZE SELECT * FROM m").await.to_string();
    assert!(!plan.contains("IS NOT NULL"), "{plan}");
    let plan = n.query("EXPLAIN ANALYZE SELECT v FROM m").await.to_string();
    assert!(
        plan.contains("IS NOT NULL"),
        "a row without v is left out: {plan}"
    );
    let count = |v: &Value| v[0]["series"][0]["values"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&n.query("SELECT * FROM m").await), 3);
    assert_eq!(count(&n.query("SELECT v FROM m").await), 2);
    n.close().await;
}

#[tokio::test]
async fn buffered_rows_read_between_writes_answer_as_persisted_rows_do() {
    let n = node().await;
    const QUERIES: &[&str] = &[
        "SELECT v FROM m WHERE host = 'h07' AND time >= 300 AND time < 900",
        "SELECT count(v), sum(v) FROM m GROUP BY host",
        "SELECT max(v) FROM m WHERE time >= 300 AND time < 900 GROUP BY time(100ns), host",
        "SELECT * FROM m GROUP BY host ORDER BY time DESC LIMIT 1",
        "SELECT last(*) FROM m GROUP BY host",
    ];
    // 50 hosts x 1000 points in 20 requests, time-ordered, every query after every request:
    // each read seals the rows since the one before into a run of its own.
    for r in 0..20i64 {
        let body: String = (r * 50..(r + 1) * 50)
            .flat_map(|t| (0..50).map(move |h| format!("m,host=h{h:02} v={t} {t}\n")))
            .collect();
        n.write(&body).await;
        for q in QUERIES {
            n.query(q).await;
        }
    }
    // A rewrite of a buffered point and a series' older point: the runs merge.
    n.write("m,host=h07 v=-1 310\nm,host=h99 v=5 1").await;
    let mut buffered = Vec::new();
    for q in QUERIES {
        buffered.push(n.query(q).await);
    }
    let point = n
        .query("SELECT v FROM m WHERE host = 'h07' AND time = 310")
        .await;
    assert_eq!(
        point[0]["series"][0]["values"],
        serde_json::json!([["1970-01-01T00:00:00.00000031Z", -1]]),
        "the later write, once"
    );
    n.ingester.persist().await.unwrap();
    for (q, b) in QUERIES.iter().zip(&buffered) {
        assert_eq!(&n.query(q).await, b, "{q}");
    }
    n.close().await;
}

/// `SHOW` statements whose condition is of tags only read the series indexes' runs (one row
/// per series of each file and buffer); a cardinality with a field in its condition reads the
/// rows. Both must find the same series wherever the data is: buffered, persisted, in two
/// shard groups (and with time picking one), under a delete, compacted.
#[tokio::test]
async fn show_statements_from_the_series_indexes_answer_as_from_the_rows() {
    let n = node().await;
    let week = 7 * 24 * 3_600_000_000_000i64;
    // Each count, and the same with a condition on a field (read on the rows) that every row
    // satisfies.
    let pairs = [
        (
            "SHOW SERIES EXACT CARDINALITY",
            "SHOW SERIES EXACT CARDINALITY WHERE v > -1000",
        ),
        (
            "SHOW SERIES EXACT CARDINALITY WHERE host != 'a'",
            "SHOW SERIES EXACT CARDINALITY WHERE host != 'a' AND v > -1000",
        ),
        (
            "SHOW SERIES EXACT CARDINALITY FROM cpu WHERE region = 'w' OR host =~ /c/",
            "SHOW SERIES EXACT CARDINALITY FROM cpu WHERE (region = 'w' OR host =~ /c/) AND v > -1000",
        ),
    ];
    // Listings, from the runs only; the last two with time (SHOW SERIES: the series of the
    // second shard group; TAG VALUES: every series once a group overlaps).
    let second = format!("SHOW SERIES WHERE time >= {week}");
    let timed_values = format!("SHOW TAG VALUES WITH KEY = host WHERE time >= {week}");
    let listings = [
        "SHOW SERIES",
        "SHOW SERIES FROM cpu WHERE region = 'w' OR host = 'c'",
        "SHOW SERIES CARDINALITY",
        "SHOW TAG VALUES WITH KEY = region WHERE host =~ /a|b|c/",
        "SHOW TAG VALUES WITH KEY IN (host, region)",
        "SHOW TAG KEYS WHERE host = 'c'",
        &second,
        &timed_values,
    ];
    async fn answers(
        n: &Node,
        pairs: &[(&str, &str)],
        listings: &[&str],
        stage: &str,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        for (runs, rows) in pairs {
            let a = n.query(runs).await;
            assert!(a[0].get("error").is_none(), "{stage}: {runs}: {a}");
            assert_eq!(a, n.query(rows).await, "{stage}: {runs}");
            out.push(a);
        }
        for q in listings {
            let a = n.query(q).await;
            assert!(a[0].get("error").is_none(), "{stage}: {q}: {a}");
            out.push(a);
        }
        out
    }
    let series = |a: &Vec<Value>| a[3][0]["series"][0]["values"].clone();
    n.write("cpu,host=a,region=w v=1 10\ncpu,host=b v=2 20\nmem,host=a v=1 10\nt v=1 10")
        .await;
    let buffered = answers(&n, &pairs, &listings, "buffered").await;
    n.ingester.persist().await.unwrap();
    let persisted = answers(&n, &pairs, &listings, "persisted").await;
    assert_eq!(buffered, persisted);
    // cpu and mem (t has no tags, and no runs to read).
    assert!(n.exec.indexes().len() >= 2, "the files' indexes were read");
    // A second shard group, and a buffer beside files: a series in both, a new one.
    n.write(&format!(
        "cpu,host=a,region=w v=3 {week}\ncpu,host=c,region=e v=4 {}\ncpu,host=b v=5 30",
        week + 10
    ))
    .await;
    let both = answers(&n, &pairs, &listings, "two groups, buffer and files").await;
    assert_eq!(
        series(&both),
        serde_json::json!([
            ["cpu,host=a,region=w"],
            ["cpu,host=b"],
            ["cpu,host=c,region=e"],
            ["mem,host=a"],
            ["t"]
        ])
    );
    assert_eq!(both[5][0]["series"][0]["values"], serde_json::json!([[5]]));
    assert_eq!(
        both[9][0]["series"][0]["values"],
        serde_json::json!([["cpu,host=a,region=w"], ["cpu,host=c,region=e"]])
    );
    assert_eq!(
        both[10][0]["series"],
        serde_json::json!([
            {"name": "cpu", "columns": ["key", "value"], "values": [["host", "a"], ["host", "b"], ["host", "c"]]},
            {"name": "mem", "columns": ["key", "value"], "values": [["host", "a"]]}
        ])
    );
    n.ingester.persist().await.unwrap();
    assert_eq!(
        answers(&n, &pairs, &listings, "two groups persisted").await,
        both
    );
    // A delete leaves a tombstone over the first group's files: host b is gone from it.
    n.ingester
        .delete(&ingester::DeleteScope {
            database: "db".into(),
            retention_policy: None,
            measurements: Some(vec!["cpu".into()]),
            predicate: Some(ingester::TagPredicate::Eq("host".into(), "b".into())),
            min_time: 0,
            max_time: week - 1,
        })
        .await
        .unwrap();
    let deleted = answers(&n, &pairs, &listings, "after a delete").await;
    assert_eq!(
        series(&deleted),
        serde_json::json!([
            ["cpu,host=a,region=w"],
            ["cpu,host=c,region=e"],
            ["mem,host=a"],
            ["t"]
        ])
    );
    assert_eq!(
        deleted[0][0]["series"],
        serde_json::json!([
            {"name": "cpu", "columns": ["count"], "values": [[2]]},
            {"name": "mem", "columns": ["count"], "values": [[1]]},
            {"name": "t", "columns": ["count"], "values": [[1]]}
        ])
    );
    assert_eq!(
        deleted[5][0]["series"][0]["values"],
        serde_json::json!([[4]])
    );
    assert_eq!(deleted[9], both[9], "the second group's series, untouched");
    assert_eq!(
        deleted[7][0]["series"][0]["values"],
        serde_json::json!([
            ["host", "a"],
            ["host", "c"],
            ["region", "e"],
            ["region", "w"]
        ])
    );
    n.ingester.compact(0).await.unwrap();
    assert_eq!(answers(&n, &pairs, &listings, "compacted").await, deleted);
    n.close().await;
}
