//! The catalog state machine: applies committed commands to [`CatalogState`], keeps the result
//! durable in the same redb file as the log, and publishes every new state on a watch channel,
//! so that readers (the write path, the query path) never wait for Raft.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, StorageError, StorageIOError};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::io_err;
use super::types::{Entry, LogId, Response, SnapshotMeta, StoredMembership, TypeConfig};
use crate::model::CatalogState;

const SM: TableDefinition<&str, &[u8]> = TableDefinition::new("state_machine");
const STATE: &str = "state";
const SNAPSHOT: &str = "snapshot";

type SResult<T> = Result<T, StorageError<u64>>;

/// What is persisted after each applied batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    catalog: CatalogState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The applied catalog as readers see it: the state and the Raft index it reflects.
#[derive(Debug, Clone, Default)]
pub struct AppliedCatalog {
    pub state: Arc<CatalogState>,
    pub applied_index: u64,
}

pub struct StateMachine {
    db: Arc<Database>,
    applied: Applied,
    publish: watch::Sender<AppliedCatalog>,
    snapshot_seq: u64,
}

impl StateMachine {
    /// Loads the last applied state from `db`.
    pub fn open(db: Arc<Database>) -> SResult<(Self, watch::Receiver<AppliedCatalog>)> {
        let read = |e: redb::Error| io_err(StorageIOError::read_state_machine, e);
        {
            let txn = db.begin_write().map_err(|e| read(e.into()))?;
            txn.open_table(SM).map_err(|e| read(e.into()))?;
            txn.commit().map_err(|e| read(e.into()))?;
        }
        let applied: Applied = {
            let txn = db.begin_read().map_err(|e| read(e.into()))?;
            let table = txn.open_table(SM).map_err(|e| read(e.into()))?;
            match table.get(STATE).map_err(|e| read(e.into()))? {
                Some(v) => serde_json::from_slice(v.value())
                    .map_err(|e| io_err(StorageIOError::read_state_machine, e))?,
                None => Applied::default(),
            }
        };
        let (publish, rx) = watch::channel(AppliedCatalog {
            state: Arc::new(applied.catalog.clone()),
            applied_index: applied.last_applied.map(|l| l.index).unwrap_or(0),
        });
        Ok((
            Self {
                db,
                applied,
                publish,
                snapshot_seq: 0,
            },
            rx,
        ))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> SResult<()> {
        let write = |e: redb::Error| io_err(StorageIOError::write_state_machine, e);
        let txn = self.db.begin_write().map_err(|e| write(e.into()))?;
        {
            let mut table = txn.open_table(SM).map_err(|e| write(e.into()))?;
            table.insert(key, bytes).map_err(|e| write(e.into()))?;
        }
        txn.commit().map_err(|e| write(e.into()))
    }

    fn persist_and_publish(&self) -> SResult<()> {
        let bytes = serde_json::to_vec(&self.applied)
            .map_err(|e| io_err(StorageIOError::write_state_machine, e))?;
        self.put(STATE, &bytes)?;
        self.publish.send_replace(AppliedCatalog {
            state: Arc::new(self.applied.catalog.clone()),
            applied_index: self.applied.last_applied.map(|l| l.index).unwrap_or(0),
        });
        Ok(())
    }

    fn current_snapshot(&self) -> SResult<Option<StoredSnapshot>> {
        let read = |e: redb::Error| io_err(StorageIOError::read_state_machine, e);
        let txn = self.db.begin_read().map_err(|e| read(e.into()))?;
        let table = txn.open_table(SM).map_err(|e| read(e.into()))?;
        match table.get(SNAPSHOT).map_err(|e| read(e.into()))? {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| io_err(StorageIOError::read_state_machine, e)),
            None => Ok(None),
        }
    }
}

/// Builds snapshots from a copy of the applied state, so the state machine keeps applying.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    applied: Applied,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> SResult<Snapshot<TypeConfig>> {
        let data = serde_json::to_vec(&self.applied.catalog)
            .map_err(|e| io_err(StorageIOError::write_state_machine, e))?;
        let last = self.applied.last_applied;
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.seq),
            None => format!("--{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.applied.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        let bytes = serde_json::to_vec(&stored)
            .map_err(|e| io_err(StorageIOError::write_state_machine, e))?;
        let write = |e: redb::Error| io_err(StorageIOError::write_state_machine, e);
        let txn = self.db.begin_write().map_err(|e| write(e.into()))?;
        {
            let mut table = txn.open_table(SM).map_err(|e| write(e.into()))?;
            table
                .insert(SNAPSHOT, bytes.as_slice())
                .map_err(|e| write(e.into()))?;
        }
        txn.commit().map_err(|e| write(e.into()))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> SResult<(Option<LogId>, StoredMembership)> {
        Ok((
            self.applied.last_applied,
            self.applied.last_membership.clone(),
        ))
    }

    async fn apply<I>(&mut self, entries: I) -> SResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            self.applied.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => out.push(Response(Ok(crate::model::Outcome::Done))),
                EntryPayload::Normal(cmd) => {
                    let result = self.applied.catalog.apply_at(&cmd, entry.log_id.index);
                    if let Err(e) = &result {
                        tracing::debug!(?cmd, error = %e, "catalog command refused");
                    }
                    out.push(Response(result));
                }
                EntryPayload::Membership(m) => {
                    self.applied.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    out.push(Response(Ok(crate::model::Outcome::Done)));
                }
            }
        }
        self.persist_and_publish()?;
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        SnapshotBuilder {
            db: self.db.clone(),
            applied: self.applied.clone(),
            seq: self.snapshot_seq,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> SResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> SResult<()> {
        let data = snapshot.into_inner();
        let catalog: CatalogState = serde_json::from_slice(&data)
            .map_err(|e| io_err(StorageIOError::read_state_machine, e))?;
        self.applied = Applied {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            catalog,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let bytes = serde_json::to_vec(&stored)
            .map_err(|e| io_err(StorageIOError::write_state_machine, e))?;
        self.put(SNAPSHOT, &bytes)?;
        tracing::info!(
            index = ?meta.last_log_id.map(|l| l.index),
            "installed a catalog snapshot from the leader"
        );
        self.persist_and_publish()
    }

    async fn get_current_snapshot(&mut self) -> SResult<Option<Snapshot<TypeConfig>>> {
        Ok(self.current_snapshot()?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
