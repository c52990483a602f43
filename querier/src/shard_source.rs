//! Where a query's shards are read: the [`ShardSource`] seam.
//!
//! A statement reads "measurement M of shard S": its schema, the measurements a shard holds,
//! and a [`TableSnapshot`] (files, tombstones, buffered batches) that [`crate::scan`] turns
//! into a DataFusion scan with the statement's columns and predicate pushed down (and the
//! series indexes and kept plans on top). [`LocalShards`] is this node's ingester.
//!
//! [`ShardSet::resolve`] decides, for each shard of a database, retention policy and time
//! range, who reads it. No shard is skipped silently: until shards of other nodes are read
//! remotely (over Arrow Flight, with the distributed-query work), a shard this node does not
//! own fails the statement with [`ExecError::ShardNotLocal`], naming the shard and its owners,
//! instead of answering as if it were empty.
//!
//! ```text
//!  catalog: shards of db.rp overlapping the range ─▶ ShardSet::resolve
//!     ├─ owned here ─▶ ShardSource (LocalShards: Ingester::table_snapshot, ...)
//!     └─ owned elsewhere ─▶ ExecError::ShardNotLocal { shard, owners }
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use catalog::DatabaseInfo;
use ingester::{Ingester, TableSchema, TableSnapshot};

use crate::executor::ExecError;
use crate::select::TimeRange;

/// The data of the shards one node holds, as queries read it.
pub trait ShardSource: Send + Sync + std::fmt::Debug {
    /// The data node whose shards these are.
    fn node_id(&self) -> u64;

    /// The measurements with data (persisted or buffered) in any of `shards`.
    fn measurements(&self, shards: &[u64]) -> BTreeSet<String>;

    /// Measurement `m`'s schema in `shard`, if the shard has it.
    fn schema(&self, shard: u64, m: &str) -> Option<TableSchema>;

    /// What a query reads of measurement `m` in `shard`: its files (pinned until the snapshot
    /// is dropped), tombstones and buffered batches; `None` when the shard lacks `m`.
    fn snapshot(&self, shard: u64, m: &str) -> Result<Option<TableSnapshot>, ExecError>;

    /// This node's storage engine, where the snapshot's files are read.
    fn ingester(&self) -> &Arc<Ingester>;
}

/// This node's own shards: its ingester.
#[derive(Debug, Clone)]
pub struct LocalShards(pub Arc<Ingester>);

impl ShardSource for LocalShards {
    fn node_id(&self) -> u64 {
        self.0.node_id()
    }

    fn measurements(&self, shards: &[u64]) -> BTreeSet<String> {
        self.0.measurements(shards)
    }

    fn schema(&self, shard: u64, m: &str) -> Option<TableSchema> {
        self.0.table_schema(shard, m)
    }

    fn snapshot(&self, shard: u64, m: &str) -> Result<Option<TableSnapshot>, ExecError> {
        Ok(self.0.table_snapshot(shard, m)?)
    }

    fn ingester(&self) -> &Arc<Ingester> {
        &self.0
    }
}

/// The shards a statement reads, each with the source that reads it.
pub struct ShardSet<'a> {
    pub source: Option<&'a Arc<dyn ShardSource>>,
    pub shards: Vec<u64>,
}

impl<'a> ShardSet<'a> {
    /// The shards of `rp` (every policy when empty) whose groups overlap `range`, each read
    /// by `source`; a shard `source` does not own fails with its owners.
    pub fn resolve(
        source: Option<&'a Arc<dyn ShardSource>>,
        dbi: &DatabaseInfo,
        rp: &str,
        range: TimeRange,
    ) -> Result<Self, ExecError> {
        let here = source.map(|s| s.node_id());
        let mut shards = Vec::new();
        for shard in dbi
            .retention_policies
            .values()
            .filter(|p| rp.is_empty() || p.name == rp)
            .flat_map(|p| p.live_shard_groups())
            .filter(|g| g.overlaps(range.min, range.max))
            .flat_map(|g| g.shards.iter())
        {
            if !here.is_some_and(|id| shard.owners.contains(&id)) {
                return Err(ExecError::ShardNotLocal {
                    shard: shard.id,
                    owners: shard.owners.clone(),
                });
            }
            shards.push(shard.id);
        }
        Ok(Self { source, shards })
    }
}
