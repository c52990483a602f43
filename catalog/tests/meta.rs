//! The meta service through openraft, on disk: changes survive a restart.

use catalog::{CatalogError, MetaError, MetaOptions, MetaService};

fn opts(dir: &std::path::Path) -> MetaOptions {
    MetaOptions::local(dir.to_path_buf())
}

#[tokio::test]
async fn catalog_changes_are_durable_and_ids_stable() {
    let dir = tempfile::tempdir().unwrap();
    let (group, identity) = {
        let meta = MetaService::open(opts(dir.path())).await.unwrap();
        assert_eq!(meta.identity().meta_id, Some(1));
        assert_eq!(meta.identity().data_id, Some(2));
        meta.create_database("db", None).await.unwrap();
        let g = meta.shard_group_for("db", "", 1_000).await.unwrap();
        assert_eq!(g.shards[0].owners, vec![2]);
        let err = meta.shard_group_for("nope", "", 0).await.unwrap_err();
        assert!(matches!(
            err,
            MetaError::Catalog(CatalogError::DatabaseNotFound(_))
        ));
        let identity = meta.identity().clone();
        meta.shutdown().await;
        (g, identity)
    };
    let meta = MetaService::open(opts(dir.path())).await.unwrap();
    assert_eq!(meta.identity(), identity);
    let cat = meta.catalog();
    assert_eq!(
        cat.data_nodes.len(),
        1,
        "restart must not register the node twice"
    );
    assert_eq!(
        cat.database("db")
            .unwrap()
            .rp("")
            .unwrap()
            .shard_group_for(1_000),
        Some(&group)
    );
    // the same time again is the same group, without a new proposal
    assert_eq!(
        meta.shard_group_for("db", "autogen", 2_000).await.unwrap(),
        group
    );
    meta.drop_database("db").await.unwrap();
    assert!(meta.catalog().database("db").is_none());
    meta.shutdown().await;
}
