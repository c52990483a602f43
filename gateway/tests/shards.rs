//! Queries across data nodes through the `ShardSource` seam, in one process: two data nodes
//! share one catalog, each owns half of every shard group, and each reads the other's shards
//! through the other's executor (what Arrow Flight will carry between processes). Their
//! answers must equal those of one node holding every point, whether the data is buffered or
//! persisted; without a peer, a node refuses rather than answer from half the data.

use std::sync::Arc;

use line_protocol::{ParseOptions, parse_body};
use querier::shard_source::{ScanRequest, ShardSource};
use querier::{Executor, QueryContext};
use serde_json::Value;

mod common;

use common::pair::Pair;

/// Writes `body` through node 0 (each point reaches its shard's owner).
async fn write(c: &Pair, body: &str) {
    let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
    assert!(parsed.errors.is_empty());
    c.execs[0]
        .writer()
        .write("db", "", parsed.points, 0)
        .await
        .unwrap();
}

/// `v` with every float rounded to 12 significant digits: partial aggregates merged in another
/// order may differ in the last bits (`stddev`, `mean`), as between runs with other partitions.
fn rounded(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            let r: f64 = format!("{f:.11e}").parse().unwrap_or(f);
            serde_json::json!(r)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        v => v,
    }
}

async fn query(ex: &Executor, q: &str) -> Value {
    let stmts = querier::influxql::parse_query(q).unwrap();
    let ctx = QueryContext {
        database: Some("db".into()),
        ..Default::default()
    };
    common::json_of(&ex.execute(&stmts, &ctx).await)
}

const HOUR: i64 = 3_600_000_000_000;
const DAY: i64 = 24 * HOUR;

/// Points of two measurements over two shard groups (a week apart), with a field that only
/// a few series have and a tag only one measurement has.
fn data() -> String {
    let mut out = String::new();
    for week in 0..2 {
        for h in 0..12 {
            for i in 0..6 {
                let t = week * 7 * DAY + i * HOUR + h * 1_000_000_000;
                let region = if h % 2 == 0 { "east" } else { "west" };
                out += &format!(
                    "cpu,host=h{h},region={region} usage={}.5,n={}i {t}\n",
                    (h * 7 + i * 3) % 100,
                    h + i
                );
                if h % 5 == 0 {
                    out += &format!("cpu,host=h{h},region={region} extra=\"x{i}\" {t}\n");
                }
                if h % 3 == 0 {
                    out += &format!("mem,host=h{h},rack=r{} free={}i {t}\n", h % 2, 1000 - i);
                }
                // A measurement without tags: one series, in one shard of each group.
                if h == 0 {
                    out += &format!("load value={i} {t}\n");
                }
            }
        }
    }
    out
}

const QUERIES: &[&str] = &[
    "SELECT * FROM cpu",
    "SELECT usage FROM cpu WHERE host = 'h3'",
    "SELECT usage, extra FROM cpu WHERE extra =~ /x[12]/",
    "SELECT * FROM cpu WHERE usage > 50 AND region = 'west' ORDER BY time DESC LIMIT 7",
    "SELECT mean(usage), max(n) FROM cpu WHERE time >= 0 AND time < 30d GROUP BY time(1d), region fill(none)",
    "SELECT count(usage), sum(n) FROM cpu GROUP BY host",
    "SELECT last(usage) FROM cpu GROUP BY host",
    "SELECT top(usage, host, 3) FROM cpu",
    "SELECT max(m) FROM (SELECT mean(usage) AS m FROM cpu GROUP BY host)",
    // Aggregates split into partial ones on the owners and a final one on the querier.
    "SELECT median(usage), mode(n), percentile(usage, 90), spread(usage), stddev(usage) FROM cpu GROUP BY region",
    "SELECT max(usage) FROM cpu GROUP BY region",
    "SELECT min(usage), max(n) FROM cpu WHERE region = 'east' GROUP BY host",
    "SELECT first(usage), last(n), count(extra) FROM cpu WHERE time >= 0 AND time < 14d GROUP BY time(1d) fill(0)",
    "SELECT integral(usage) FROM cpu GROUP BY host",
    "SELECT derivative(mean(usage), 1h) FROM cpu WHERE time >= 0 AND time < 14d GROUP BY time(1h) fill(none)",
    "SELECT sum(n) / count(n), mean(usage) * 2 FROM cpu GROUP BY region",
    "SELECT count(*) FROM cpu",
    "SELECT mean(free), count(free) FROM mem GROUP BY *",
    "SELECT count(usage) FROM cpu WHERE host = 'h3' OR host = 'h8' GROUP BY time(2d) fill(none)",
    "SELECT bottom(usage, 2), host FROM cpu",
    "SELECT count(distinct(host)) FROM cpu",
    "SELECT * FROM /.*/ LIMIT 3",
    "SELECT free FROM mem WHERE rack = 'r1' SLIMIT 2",
    "SHOW MEASUREMENTS",
    "SHOW TAG KEYS",
    "SHOW FIELD KEYS",
    "SHOW TAG VALUES WITH KEY = host",
    "SHOW TAG VALUES FROM cpu WITH KEY = region WHERE host = 'h4'",
    "SHOW SERIES",
    "SHOW SERIES FROM load",
    "SELECT count(value) FROM load",
    "SELECT * FROM load WHERE value > 2",
    "SHOW TAG KEYS FROM load",
    "SHOW FIELD KEYS FROM load",
];

#[tokio::test]
async fn every_node_answers_as_one_node_holding_all_points() {
    let reference = common::Node::with_database("db").await;
    let body = data();
    let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
    assert!(parsed.errors.is_empty());
    reference
        .exec
        .writer()
        .write("db", "", parsed.points, 0)
        .await
        .unwrap();
    let c = Pair::with_database("db").await;
    write(&c, &body).await;

    // Each node owns some of the data, not all of it.
    let groups = c.meta.catalog().database("db").unwrap().retention_policies["autogen"]
        .shard_groups
        .clone();
    assert_eq!(groups.len(), 2);
    for g in &groups {
        assert_eq!(g.shards.len(), 2, "one shard per data node: {g:?}");
    }
    for ing in &c.ingesters {
        let own = ing.measurements(&ing.shard_ids());
        assert!(own.contains("cpu"), "{own:?}");
    }

    for persisted in [false, true] {
        if persisted {
            c.persist().await;
            reference.ingester.persist().await.unwrap();
        }
        for q in QUERIES {
            let want = query(&reference.exec, q).await;
            assert!(
                want[0].get("error").is_none(),
                "{q}: reference failed: {want}"
            );
            for (i, ex) in c.execs.iter().enumerate() {
                let before = c.served[1 - i].fragments.lock().unwrap().len();
                let got = query(ex, q).await;
                let ran = c.served[1 - i].fragments.lock().unwrap().len() - before;
                // Aggregates run partly on the peer, as plan fragments.
                let splits = q.starts_with("SELECT")
                    && !q.contains("distinct")
                    && [
                        "count(", "sum(", "mean(", "max(", "min(", "last(", "median(",
                    ]
                    .iter()
                    .any(|f| q.contains(f));
                assert!(!splits || ran > 0, "node {i}: no fragment for {q}");
                assert_eq!(
                    rounded(got),
                    rounded(want.clone()),
                    "node {i}, persisted {persisted}: {q}"
                );
            }
        }
    }

    // The frame of a node over both groups: half of the shards read by the peer.
    let frame = c.execs[0]
        .measurement_frame(
            c.execs[0].session(),
            "db",
            "",
            "cpu",
            querier::select::TimeRange::ALL,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((frame.stats.shards, frame.stats.shards_remote), (4, 2));
    assert_eq!(frame.stats.files, None, "no kept plan over a peer's rows");

    reference.close().await;
}

#[tokio::test]
async fn a_peer_is_asked_for_the_columns_and_rows_a_statement_needs() {
    let c = Pair::with_database("db").await;
    write(&c, &data()).await;
    c.persist().await;
    let got = query(&c.execs[0], "SELECT usage FROM cpu WHERE host = 'h3'").await;
    let rows = got[0]["series"][0]["values"].as_array().unwrap().len();
    assert_eq!(rows, 12, "{got}");
    let scans = c.served[1].scans.lock().unwrap().clone();
    assert_eq!(
        scans.len(),
        1,
        "one request for the peer's shards: {scans:?}"
    );
    let (columns, filters, answered) = &scans[0];
    assert!(
        !columns.iter().any(|c| c == "n" || c == "extra"),
        "no field the statement does not read: {columns:?}"
    );
    assert!(*filters > 0, "the condition goes with the request");
    assert!(
        *answered <= rows,
        "the peer filters by host: {answered} rows for {rows}"
    );
}

#[tokio::test]
async fn a_peer_runs_the_partial_aggregate_and_answers_only_its_states() {
    let c = Pair::with_database("db").await;
    write(&c, &data()).await;
    c.persist().await;
    let q = "SELECT count(usage), sum(n) FROM cpu GROUP BY host";
    let got = query(&c.execs[0], q).await;
    assert_eq!(got[0]["series"].as_array().map(Vec::len), Some(12), "{got}");
    assert!(
        c.served[1].scans.lock().unwrap().is_empty(),
        "no raw rows asked for"
    );
    let fragments = c.served[1].fragments.lock().unwrap().clone();
    assert_eq!(fragments.len(), 1, "{fragments:?}");
    let (plan, rows) = &fragments[0];
    assert!(plan.contains("AggregateExec: mode=Partial"), "{plan}");
    // The peer's shards hold some of the 12 hosts: one state per host it has.
    assert!(*rows > 0 && *rows <= 12, "{rows} states");

    // EXPLAIN shows the fragment, with its shards and owners.
    let explained = query(&c.execs[0], &format!("EXPLAIN {q}"))
        .await
        .to_string();
    assert!(
        explained.contains("FragmentExec: shards=") && explained.contains("mode=Final"),
        "{explained}"
    );
    // EXPLAIN ANALYZE shows which node answered and how many rows it sent.
    let analyzed = query(&c.execs[0], &format!("EXPLAIN ANALYZE {q}"))
        .await
        .to_string();
    let peer = c.ingesters[1].node_id();
    assert!(
        analyzed.contains(&format!("node={peer}")) && analyzed.contains("output_rows="),
        "{analyzed}"
    );
    // ... and the fragment as the peer ran it, with its own metrics.
    assert!(
        analyzed.contains("ran=[AggregateExec: mode=Partial")
            && analyzed.contains("DataSourceExec"),
        "{analyzed}"
    );

    // Raw points still come as scans, with the columns and condition pushed down.
    let got = query(&c.execs[0], "SELECT usage FROM cpu WHERE host = 'h3'").await;
    assert!(got[0]["series"].is_array(), "{got}");
    assert_eq!(c.served[1].scans.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_peer_asked_for_last_values_leaves_out_rows_before_them() {
    let c = Pair::with_database("db").await;
    write(&c, &data()).await;
    c.persist().await;
    let shards = c.ingesters[1].shard_ids();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        ingester::schema::time_field(),
        ingester::schema::tag_field("host"),
        datafusion::arrow::datatypes::Field::new(
            "usage",
            datafusion::arrow::datatypes::DataType::Float64,
            true,
        ),
    ]));
    let rows = |last_values: bool| {
        let request = ScanRequest {
            database: "db".into(),
            measurement: "cpu".into(),
            shards: shards.clone(),
            range: querier::select::TimeRange::ALL,
            schema: schema.clone(),
            filters: vec![],
            last_values,
        };
        let ex = c.execs[1].clone();
        async move {
            use futures::TryStreamExt;
            let batches: Vec<_> = ex.scan(request).await.unwrap().try_collect().await.unwrap();
            batches.iter().map(|b| b.num_rows()).sum::<usize>()
        }
    };
    let (all, last) = (rows(false).await, rows(true).await);
    // Two weeks of points: each week's shard is read from its own series' last ones, its
    // last hour (6 + 6 rows; from the smaller bound of the two, the second week's 36 rows
    // would all come).
    assert_eq!((last, all), (12, 72));
    // And the answer is the same as one node's.
    let q = "SELECT last(usage) FROM cpu GROUP BY host";
    let reference = common::Node::with_database("db").await;
    let body = data();
    let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
    reference
        .exec
        .writer()
        .write("db", "", parsed.points, 0)
        .await
        .unwrap();
    assert_eq!(query(&c.execs[0], q).await, query(&reference.exec, q).await);
    reference.close().await;
}

#[tokio::test]
async fn a_refusal_after_the_catalog_moved_on_plans_the_statement_again() {
    let c = Pair::with_database("db").await;
    write(&c, &data()).await;
    let q = "SELECT count(usage) FROM cpu GROUP BY region";
    let want = query(&c.execs[0], q).await;
    c.served[1]
        .refuse_next
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let got = query(&c.execs[0], q).await;
    assert_eq!(got, want);
    assert!(
        !c.served[1]
            .refuse_next
            .load(std::sync::atomic::Ordering::SeqCst),
        "the peer was asked"
    );
}

#[tokio::test]
async fn a_fragment_of_another_format_version_is_refused() {
    let c = Pair::with_database("db").await;
    write(&c, &data()).await;
    let plan = Arc::new(datafusion::physical_plan::empty::EmptyExec::new(Arc::new(
        datafusion::arrow::datatypes::Schema::empty(),
    )));
    let fragment = querier::fragment::Fragment::new("db".into(), vec![], plan);
    let mut bytes = fragment.encode(0).unwrap().to_vec();
    let ctx = c.execs[0].session().task_ctx();
    assert!(querier::fragment::Fragment::decode(&bytes, &ctx).is_ok());
    bytes[5..9].copy_from_slice(&(querier::fragment::FRAGMENT_VERSION + 1).to_le_bytes());
    let err = querier::fragment::Fragment::decode(&bytes, &ctx)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("format version") && err.contains("same Fletch version"),
        "{err}"
    );
    // A fragment over shards the node does not own is refused, never answered empty.
    let fragment =
        querier::fragment::Fragment::new("db".into(), c.ingesters[1].shard_ids(), fragment.plan);
    let err = c.execs[0].fragment(fragment).await.err().unwrap();
    assert!(
        matches!(err, querier::ExecError::ShardNotLocal { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn without_a_peer_a_node_refuses_and_a_peer_serves_only_its_own_shards() {
    let c = Pair::with_database("db").await;
    write(&c, &data()).await;
    let got = query(&c.alone, "SELECT * FROM cpu").await;
    let error = got[0]["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.starts_with("shard ") && error.contains("is owned by data node(s)"),
        "{got}"
    );
    let got = query(&c.alone, "SHOW MEASUREMENTS").await;
    assert!(got[0]["error"].is_string(), "{got}");

    // Asked for a shard it does not own, a node says so rather than answer it empty.
    let other = c.ingesters[1].shard_ids();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::empty());
    let request = ScanRequest {
        database: "db".into(),
        measurement: "cpu".into(),
        shards: other.clone(),
        range: querier::select::TimeRange::ALL,
        schema,
        filters: vec![],
        last_values: false,
    };
    let err = c.execs[0].scan(request).await.err().unwrap();
    assert!(
        matches!(err, querier::ExecError::ShardNotLocal { shard, .. } if other.contains(&shard)),
        "{err}"
    );
    let err = c.execs[0].measurements("db", &other).await.unwrap_err();
    assert!(
        matches!(err, querier::ExecError::ShardNotLocal { .. }),
        "{err}"
    );
}
