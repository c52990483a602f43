//! Digests kept with the files they were read from: a shard whose files have not changed is
//! not read again, and any change (new rows, a persist, a delete) is seen.

use catalog::{MetaOptions, MetaService};
use ingester::{DeleteScope, Ingester, IngesterConfig};
use line_protocol::{ParseOptions, parse_body};
use querier::Executor;
use replicas::digest::{DigestCache, of, of_cached};

#[tokio::test]
async fn a_digest_is_read_again_only_when_its_files_change() {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaService::open(MetaOptions::local(dir.path().join("meta")))
        .await
        .unwrap();
    let cfg = IngesterConfig::with_dirs(dir.path().join("data"), dir.path().join("wal"));
    let ing = Ingester::open(cfg, meta.clone(), meta.identity().data_id.unwrap())
        .await
        .unwrap();
    meta.create_database("db", None).await.unwrap();
    let ex = Executor::new(meta.clone(), Some(ing.clone()));
    let writer = coordinator::PointsWriter::with_ingester(meta.clone(), Some(ing.clone()));
    let write = |body: &'static str| {
        let writer = writer.clone();
        async move {
            let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
            writer.write("db", "", parsed.points, 0).await.unwrap();
        }
    };
    write("cpu,h=a v=1 1\ncpu,h=b v=2 2\nmem,h=a v=3 3").await;
    let shard = ing.shard_ids()[0];
    let cache = DigestCache::default();
    let digest = || of_cached(&ex, Some((&ing, &cache)), "db", shard);

    // Buffered rows are read every time, and not kept.
    let buffered = digest().await.unwrap();
    assert_eq!(buffered.points(), 3);
    assert_eq!(cache.counts(), (0, 0));

    ing.persist().await.unwrap();
    let first = digest().await.unwrap();
    assert_eq!(first, buffered, "the same rows, buffered or in Parquet");
    assert_eq!(cache.counts(), (0, 2), "both measurements read");
    let again = digest().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(cache.counts(), (2, 2), "nothing read the second time");
    assert_eq!(
        again,
        of(&ex, "db", shard).await.unwrap(),
        "as a whole read"
    );

    // A new file of one measurement: that one is read again.
    write("cpu,h=c v=4 4").await;
    ing.persist().await.unwrap();
    let grown = digest().await.unwrap();
    assert_eq!(grown.points(), 4);
    assert_eq!(cache.counts(), (3, 3));

    // A delete (a tombstone) changes the measurement's version too.
    let scope = DeleteScope {
        database: "db".into(),
        retention_policy: None,
        measurements: Some(vec!["cpu".into()]),
        predicate: None,
        min_time: 2,
        max_time: 2,
    };
    ing.delete(&scope).await.unwrap();
    let after = digest().await.unwrap();
    assert_eq!(after.points(), 3);
    assert_eq!(after, of(&ex, "db", shard).await.unwrap());
    assert_eq!(cache.counts(), (4, 4));
    ing.shutdown().await.unwrap();
    meta.shutdown().await;
}
