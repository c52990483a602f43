//! The write coordinator on one node: what a request is refused for, what is dropped, where
//! points go, and the retention service.

use std::path::Path;
use std::sync::Arc;

use catalog::{MetaOptions, MetaService, RetentionPolicySpec};
use coordinator::{PointsWriter, WriteError};
use ingester::{Ingester, IngesterConfig};
use line_protocol::{ParseOptions, Point, parse_body};

const HOUR: i64 = 3_600_000_000_000;

struct Node {
    meta: Arc<MetaService>,
    ingester: Arc<Ingester>,
    writer: PointsWriter,
}

async fn open(dir: &Path) -> Node {
    let meta = MetaService::open(MetaOptions::local(dir.join("meta")))
        .await
        .unwrap();
    let cfg = IngesterConfig::with_dirs(dir.join("data"), dir.join("wal"));
    let node_id = meta.identity().data_id.unwrap();
    let ingester = Ingester::open(cfg, meta.clone(), node_id).await.unwrap();
    let writer = PointsWriter::with_ingester(meta.clone(), Some(ingester.clone()));
    Node {
        meta,
        ingester,
        writer,
    }
}

impl Node {
    async fn close(self) {
        self.ingester.shutdown().await.unwrap();
        self.meta.shutdown().await;
    }
}

fn points(body: &str) -> Vec<Point<'_>> {
    let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.points
}

#[tokio::test]
async fn unknown_database_and_rp_fail_the_whole_request() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let err = n
        .writer
        .write("nope", "", points("m v=1 1"), 0)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "database not found: \"nope\"");
    n.meta.create_database("db", None).await.unwrap();
    let err = n
        .writer
        .write("db", "rp9", points("m v=1 1"), 0)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "retention policy not found: rp9");
    assert!(n.ingester.shard_ids().is_empty(), "nothing was written");
    n.close().await;
}

#[tokio::test]
async fn points_beyond_retention_are_dropped_and_expired_groups_removed() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let rp = RetentionPolicySpec {
        name: "short".into(),
        duration: Some(2 * HOUR),
        shard_group_duration: None,
        replica_n: None,
    };
    n.meta.create_database("db", Some(rp)).await.unwrap();
    let now = 10 * HOUR;
    // A schema conflict later in the request does not hide the retention reason, as in 1.x.
    let body = format!(
        "m v=1 {}\nm v=2 {}\nm v=\"s\" {}",
        9 * HOUR,
        5 * HOUR,
        9 * HOUR + 1
    );
    let out = n.writer.write("db", "", points(&body), now).await.unwrap();
    assert_eq!((out.written, out.dropped), (1, 2));
    assert_eq!(
        out.reason.as_deref(),
        Some("points beyond retention policy")
    );
    n.ingester.persist().await.unwrap();
    assert_eq!(n.ingester.shard_ids().len(), 1);
    assert_eq!(
        coordinator::retention::expire_shard_groups(&n.meta, now)
            .await
            .unwrap(),
        0,
        "the group is within retention at `now`"
    );
    // Two hours after the group's end plus the duration, the group is gone from the catalog,
    // and the data node removes its shard.
    assert_eq!(
        coordinator::retention::expire_shard_groups(&n.meta, now + 3 * HOUR)
            .await
            .unwrap(),
        1
    );
    let rp = n
        .meta
        .catalog()
        .database("db")
        .unwrap()
        .rp("")
        .unwrap()
        .clone();
    assert!(rp.live_shard_groups().next().is_none());
    n.ingester.drop_removed_shards().await.unwrap();
    assert!(n.ingester.shard_ids().is_empty());
    n.close().await;
}

#[tokio::test]
async fn a_point_goes_to_the_group_of_its_time_and_a_shard_its_node_owns() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    n.meta.create_database("db", None).await.unwrap();
    // Two weeks apart: two shard groups (infinite retention has 7-day groups).
    let body = format!("m,h=a v=1 {}\nm,h=b v=2 {}", HOUR, 24 * 14 * HOUR);
    let out = n.writer.write("db", "", points(&body), 0).await.unwrap();
    assert_eq!((out.written, out.dropped), (2, 0));
    let catalog = n.meta.catalog();
    let rp = catalog.database("db").unwrap().rp("").unwrap();
    assert_eq!(rp.live_shard_groups().count(), 2);
    let mut shards = n.ingester.shard_ids();
    shards.sort();
    let mut expected: Vec<u64> = rp
        .live_shard_groups()
        .flat_map(|g| g.shards.iter().map(|s| s.id))
        .collect();
    expected.sort();
    assert_eq!(shards, expected);
    n.close().await;
}

#[tokio::test]
async fn a_node_without_the_data_role_refuses_with_the_shards_owners() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    n.meta.create_database("db", None).await.unwrap();
    let no_data = PointsWriter::with_ingester(n.meta.clone(), None);
    let err = no_data
        .write("db", "", points("m v=1 1"), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, WriteError::NotOwner { owners, .. } if owners == &vec![n.ingester.node_id()]),
        "{err}"
    );
    n.close().await;
}

#[test]
fn the_series_hash_is_fnv1a_of_the_series_key() {
    // Stable across versions: a series must map to the same shard of a group forever.
    let p = &points("cpu,host=a,region=eu v=1 1")[0];
    let mut h: u64 = 0xcbf29ce484222325;
    for b in b"cpu,host=a,region=eu" {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    assert_eq!(coordinator::series_hash(p), h);
}

#[tokio::test]
async fn the_retention_service_runs_on_its_interval_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let rp = RetentionPolicySpec {
        name: "short".into(),
        duration: Some(HOUR),
        shard_group_duration: None,
        replica_n: None,
    };
    n.meta.create_database("db", Some(rp)).await.unwrap();
    // A group of long ago: created through the catalog as a write of old data would.
    let now = ingester::now_nanos();
    n.meta
        .shard_group_for("db", "short", now - 3 * HOUR)
        .await
        .unwrap();
    let live = |n: &Node| {
        n.meta
            .catalog()
            .database("db")
            .unwrap()
            .rp("")
            .unwrap()
            .live_shard_groups()
            .count()
    };
    assert_eq!(live(&n), 1);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let service = tokio::spawn(coordinator::retention::run(
        n.meta.clone(),
        std::time::Duration::from_millis(20),
        stop_rx,
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while live(&n) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the group never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), service)
        .await
        .expect("the service stops when told")
        .unwrap();
    n.close().await;
}
