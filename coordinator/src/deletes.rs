//! Deletes recorded in the catalog, applied by every data node to the shards it owns.
//!
//! `DELETE`, `DROP SERIES` and `DROP MEASUREMENT` are recorded in the Raft catalog
//! ([`catalog::Command::RecordDelete`]), whichever node they are sent to. Each data node's
//! [`DeleteApplier`] applies every recorded delete it has not applied yet to the shards it owns
//! (an owner that was down does so when it is back), once per shard, then acknowledges it
//! ([`catalog::Command::AckDeletes`]); a delete every data node has acknowledged is let go.
//!
//! ```text
//!  DELETE on any node ─▶ RecordDelete (Raft index d) ─▶ every data node's catalog
//!     each data node: DeleteApplier ─▶ Ingester::delete_recorded(scope, d) on its shards
//!                                  ─▶ AckDeletes { node, d } ─▶ pruned once all acknowledged
//!  a write routed at catalog index i < d (under way, or queued in hinted handoff) reaching an
//!  owner that applied d: the points d removes are left out (Ingester::write_shards_at)
//! ```
//!
//! So hinted handoff cannot bring deleted points back, and anti-entropy leaves a database's
//! shards alone while some node has a delete of it to apply (`replicas`).

use std::sync::Arc;
use std::time::Duration;

use catalog::{Command, MetaService};
use ingester::{DeleteScope, Ingester, StorageError};
use tokio::sync::watch;

/// How long the applier waits before trying again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// One data node's applier of recorded deletes.
#[derive(Debug)]
pub struct DeleteApplier {
    meta: Arc<MetaService>,
    ingester: Arc<Ingester>,
    /// The catalog index through which every recorded delete is applied here.
    applied: watch::Sender<u64>,
    /// One pass at a time (the loop and a `DELETE` sent to this node).
    pass: tokio::sync::Mutex<()>,
}

impl DeleteApplier {
    pub fn new(meta: Arc<MetaService>, ingester: Arc<Ingester>) -> Arc<Self> {
        Arc::new(Self {
            meta,
            ingester,
            applied: watch::channel(0).0,
            pass: tokio::sync::Mutex::new(()),
        })
    }

    /// Waits (at most `timeout`) until every delete recorded up to catalog `index` is applied
    /// here; false when that took longer.
    pub async fn wait(&self, index: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|a| *a >= index)).await,
            Ok(Ok(_))
        )
    }

    /// Applies the recorded deletes this node has not applied, and acknowledges them.
    pub async fn apply_pending(&self) -> Result<(), StorageError> {
        let _pass = self.pass.lock().await;
        let node = self.ingester.node_id();
        let (pending, through, acked) = {
            let applied = self.meta.watch().borrow().clone();
            let cat = &applied.state;
            let acked = cat.delete_acks.get(&node).copied().unwrap_or(0);
            let pending: Vec<_> = cat
                .deletes
                .iter()
                .filter(|d| d.index > acked)
                .cloned()
                .collect();
            (pending, applied.applied_index, acked)
        };
        let mut done = acked;
        for d in pending {
            match serde_json::from_str::<DeleteScope>(&d.scope) {
                Ok(scope) => self.ingester.delete_recorded(&scope, d.index).await?,
                Err(e) => {
                    tracing::error!(index = d.index, error = %e, "a recorded delete cannot be read; it is skipped")
                }
            }
            done = d.index;
        }
        if done > acked {
            let ack = Command::AckDeletes { node, index: done };
            if let Err(e) = self.meta.execute(ack).await {
                // Applied all the same (once per shard); acknowledged on a later pass.
                tracing::warn!(error = %e, "could not acknowledge applied deletes; will try again");
            }
        }
        self.applied.send_if_modified(|a| {
            let newer = through > *a;
            *a = (*a).max(through);
            newer
        });
        Ok(())
    }

    /// Applies deletes as the catalog records them, until the process ends.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut catalog = self.meta.watch();
            loop {
                let retry = match self.apply_pending().await {
                    Ok(()) => false,
                    Err(e) => {
                        tracing::warn!(error = %e, "applying recorded deletes failed; will try again");
                        true
                    }
                };
                let acked = {
                    let cat = self.meta.catalog();
                    let node = self.ingester.node_id();
                    cat.deletes.is_empty()
                        || cat.delete_acks.get(&node).copied().unwrap_or(0) >= cat.last_delete
                };
                if retry || !acked {
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        r = catalog.changed() => if r.is_err() { return },
                    }
                } else if catalog.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}
