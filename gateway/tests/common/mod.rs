//! A node in process for the query tests: meta service, storage engine and executor, and
//! answers as the HTTP API formats them.

#![allow(dead_code)]

pub mod pair;

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

/// Statements' answers as `/query` prints them (the `results` array), times in RFC3339.
#[allow(dead_code)]
pub fn json_of(results: &[querier::StatementResult]) -> serde_json::Value {
    let body = gateway::format::json(
        results,
        0,
        false,
        &gateway::format::FormatOptions::default(),
    );
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["results"].take()
}
