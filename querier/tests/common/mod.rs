//! A node in process for the querier's tests: meta service, storage engine and executor.

use std::sync::Arc;

use catalog::{MetaOptions, MetaService};
use ingester::{Ingester, IngesterConfig};
use querier::Executor;

pub struct Node {
    pub meta: Arc<MetaService>,
    pub ingester: Arc<Ingester>,
    pub exec: Executor,
    _dir: tempfile::TempDir,
}

impl Node {
    /// A fresh node with database `db` created.
    pub async fn with_database(db: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaService::open(MetaOptions::local(dir.path().join("meta")))
            .await
            .unwrap();
        let cfg = IngesterConfig::with_dirs(dir.path().join("data"), dir.path().join("wal"));
        let ingester = Ingester::open(cfg, meta.clone(), meta.identity().data_id.unwrap())
            .await
            .unwrap();
        meta.create_database(db, None).await.unwrap();
        let exec = Executor::new(meta.clone(), Some(ingester.clone()));
        Self {
            meta,
            ingester,
            exec,
            _dir: dir,
        }
    }

    pub async fn close(self) {
        self.ingester.shutdown().await.unwrap();
        self.meta.shutdown().await;
    }
}
