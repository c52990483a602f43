//! The Raft log, vote and committed index, durable in a redb file under `[meta] dir`.
//!
//! Every `append` is one redb transaction committed with immediate durability (fsync) before
//! openraft is told the entries are flushed.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, StorageError, StorageIOError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::io_err;
use super::types::{Entry, LogId, TypeConfig, Vote};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStore")
    }
}

type SResult<T> = Result<T, StorageError<u64>>;

impl LogStore {
    pub fn new(db: Arc<Database>) -> SResult<Self> {
        let txn = db
            .begin_write()
            .map_err(|e| io_err(StorageIOError::write_logs, e))?;
        txn.open_table(LOG)
            .map_err(|e| io_err(StorageIOError::write_logs, e))?;
        txn.open_table(META)
            .map_err(|e| io_err(StorageIOError::write_logs, e))?;
        txn.commit()
            .map_err(|e| io_err(StorageIOError::write_logs, e))?;
        Ok(Self { db })
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> SResult<Option<T>> {
        let read = |e: redb::Error| io_err(StorageIOError::read, e);
        let txn = self.db.begin_read().map_err(|e| read(e.into()))?;
        let table = txn.open_table(META).map_err(|e| read(e.into()))?;
        match table.get(key).map_err(|e| read(e.into()))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| io_err(StorageIOError::read, e)),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> SResult<()> {
        let write = |e: redb::Error| io_err(StorageIOError::write, e);
        let bytes = serde_json::to_vec(value).map_err(|e| io_err(StorageIOError::write, e))?;
        let txn = self.db.begin_write().map_err(|e| write(e.into()))?;
        {
            let mut table = txn.open_table(META).map_err(|e| write(e.into()))?;
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| write(e.into()))?;
        }
        txn.commit().map_err(|e| write(e.into()))
    }

    /// Removes log entries in `range` (used by truncate and purge).
    fn remove_range(&self, range: impl RangeBounds<u64>, purged: Option<&LogId>) -> SResult<()> {
        let write = |e: redb::Error| io_err(StorageIOError::write_logs, e);
        let txn = self.db.begin_write().map_err(|e| write(e.into()))?;
        {
            let mut table = txn.open_table(LOG).map_err(|e| write(e.into()))?;
            table
                .retain_in(range, |_, _| false)
                .map_err(|e| write(e.into()))?;
            if let Some(p) = purged {
                let bytes =
                    serde_json::to_vec(p).map_err(|e| io_err(StorageIOError::write_logs, e))?;
                let mut meta = txn.open_table(META).map_err(|e| write(e.into()))?;
                meta.insert(LAST_PURGED, bytes.as_slice())
                    .map_err(|e| write(e.into()))?;
            }
        }
        txn.commit().map_err(|e| write(e.into()))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> SResult<Vec<Entry>> {
        let read = |e: redb::Error| io_err(StorageIOError::read_logs, e);
        let txn = self.db.begin_read().map_err(|e| read(e.into()))?;
        let table = txn.open_table(LOG).map_err(|e| read(e.into()))?;
        let start = match range.start_bound() {
            Bound::Included(s) => Bound::Included(*s),
            Bound::Excluded(s) => Bound::Excluded(*s),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(s) => Bound::Included(*s),
            Bound::Excluded(s) => Bound::Excluded(*s),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in table
            .range::<u64>((start, end))
            .map_err(|e| read(e.into()))?
        {
            let (_, v) = item.map_err(|e| read(e.into()))?;
            out.push(
                serde_json::from_slice(v.value())
                    .map_err(|e| io_err(StorageIOError::read_logs, e))?,
            );
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> SResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId> = self.get_meta(LAST_PURGED)?;
        let read = |e: redb::Error| io_err(StorageIOError::read_logs, e);
        let txn = self.db.begin_read().map_err(|e| read(e.into()))?;
        let table = txn.open_table(LOG).map_err(|e| read(e.into()))?;
        let last = match table.last().map_err(|e| read(e.into()))? {
            Some((_, v)) => {
                let e: Entry = serde_json::from_slice(v.value())
                    .map_err(|e| io_err(StorageIOError::read_logs, e))?;
                Some(e.log_id)
            }
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> SResult<()> {
        self.put_meta(VOTE, vote)
    }

    async fn read_vote(&mut self) -> SResult<Option<Vote>> {
        self.get_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> SResult<()> {
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> SResult<Option<LogId>> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> SResult<()>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let write = |e: redb::Error| io_err(StorageIOError::write_logs, e);
        let result = (|| {
            let txn = self.db.begin_write().map_err(|e| write(e.into()))?;
            {
                let mut table = txn.open_table(LOG).map_err(|e| write(e.into()))?;
                for entry in entries {
                    let bytes = serde_json::to_vec(&entry)
                        .map_err(|e| io_err(StorageIOError::write_logs, e))?;
                    table
                        .insert(entry.log_id.index, bytes.as_slice())
                        .map_err(|e| write(e.into()))?;
                }
            }
            txn.commit().map_err(|e| write(e.into()))
        })();
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> SResult<()> {
        self.remove_range(log_id.index.., None)
    }

    async fn purge(&mut self, log_id: LogId) -> SResult<()> {
        self.remove_range(..=log_id.index, Some(&log_id))
    }
}
