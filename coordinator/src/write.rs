//! [`PointsWriter`]: a request's points routed to shards and handed to their owners' writers.

use std::sync::Arc;

use async_trait::async_trait;
use catalog::{MetaError, MetaService, ShardGroupInfo};
use ingester::{Ingester, WriteOutcome};
use line_protocol::Point;

/// Why a write request failed as a whole (nothing of it was written).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("database not found: \"{0}\"")]
    DatabaseNotFound(String),
    #[error("retention policy not found: {0}")]
    RetentionPolicyNotFound(String),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("shard group {0} has no shards")]
    NoShards(u64),
    #[error(
        "shard {shard} is owned by data node(s) {owners:?}, not by this one; writes are not forwarded between data nodes yet: send them to an owner (SHOW SHARDS, SHOW SERVERS)"
    )]
    NotOwner { shard: u64, owners: Vec<u64> },
    /// The data node that owns the shard refused or failed the write.
    #[error(transparent)]
    Shard(#[from] ingester::WriteError),
}

/// Writes points already routed to shards on one data node. [`LocalShards`] is this node's
/// ingester; the replication work adds writers for remote owners behind the same trait.
#[async_trait]
pub trait ShardWriter: Send + Sync + std::fmt::Debug {
    /// The data node this writer stores on.
    fn node_id(&self) -> u64;

    /// Writes each shard's points (`rp` is the policy's name): durable before `Ok`, points
    /// that do not fit their shard's schema dropped with 1.x's reason.
    async fn write_shards(
        &self,
        db: &str,
        rp: &str,
        shards: Vec<(u64, Vec<Point<'_>>)>,
    ) -> Result<WriteOutcome, ingester::WriteError>;
}

/// This node's own shards: its ingester.
#[derive(Debug, Clone)]
pub struct LocalShards(pub Arc<Ingester>);

#[async_trait]
impl ShardWriter for LocalShards {
    fn node_id(&self) -> u64 {
        self.0.node_id()
    }

    async fn write_shards(
        &self,
        db: &str,
        rp: &str,
        shards: Vec<(u64, Vec<Point<'_>>)>,
    ) -> Result<WriteOutcome, ingester::WriteError> {
        self.0.write_shards(db, rp, shards).await
    }
}

/// FNV-1a over the series key: stable across processes and versions, so a series always maps
/// to the same shard of a group.
pub fn series_hash(p: &Point<'_>) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |b: &[u8]| {
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    feed(p.measurement.as_bytes());
    for (k, v) in &p.tags {
        feed(b",");
        feed(k.as_bytes());
        feed(b"=");
        feed(v.as_bytes());
    }
    h
}

/// Routes writes: 1.x's `PointsWriter`.
#[derive(Debug, Clone)]
pub struct PointsWriter {
    meta: Arc<MetaService>,
    /// This node's shards, where it has the data role.
    local: Option<Arc<dyn ShardWriter>>,
}

impl PointsWriter {
    pub fn new(meta: Arc<MetaService>, local: Option<Arc<dyn ShardWriter>>) -> Self {
        Self { meta, local }
    }

    /// A writer to this node's ingester, if it has one.
    pub fn with_ingester(meta: Arc<MetaService>, ingester: Option<Arc<Ingester>>) -> Self {
        let local = ingester.map(|i| Arc::new(LocalShards(i)) as Arc<dyn ShardWriter>);
        Self::new(meta, local)
    }

    /// Writes points to `db`.`rp` (the default policy when `rp` is empty). Points beyond the
    /// policy's retention, and points their shard's schema refuses, are dropped with a reason;
    /// the others are durable on their owner before this returns.
    pub async fn write(
        &self,
        db: &str,
        rp: &str,
        points: Vec<Point<'_>>,
        now: i64,
    ) -> Result<WriteOutcome, WriteError> {
        let catalog = self.meta.catalog();
        let dbi = catalog
            .database(db)
            .ok_or_else(|| WriteError::DatabaseNotFound(db.to_string()))?;
        let rpi = dbi
            .rp(rp)
            .ok_or_else(|| WriteError::RetentionPolicyNotFound(rp.to_string()))?;
        let rp_name = rpi.name.clone();
        let oldest_allowed = if rpi.duration > 0 {
            now.saturating_sub(rpi.duration)
        } else {
            i64::MIN
        };
        let mut dropped = WriteOutcome::default();
        let mut groups: Vec<ShardGroupInfo> = Vec::new();
        // Shards in the order their first point came, each with its points in request order.
        let mut shards: Vec<(u64, Vec<Point<'_>>)> = Vec::new();
        for p in points {
            if p.time < oldest_allowed {
                dropped.dropped += 1;
                dropped
                    .reason
                    .get_or_insert_with(|| "points beyond retention policy".to_string());
                continue;
            }
            let group = match groups.iter().position(|g| g.contains(p.time)) {
                Some(i) => &groups[i],
                None => {
                    groups.push(self.meta.shard_group_for(db, &rp_name, p.time).await?);
                    &groups[groups.len() - 1]
                }
            };
            // The series hash only matters when the group has a choice of shards.
            let shard = match group.shards.as_slice() {
                [only] => Some(only),
                _ => group.shard_for(series_hash(&p)),
            };
            let Some(shard) = shard else {
                return Err(WriteError::NoShards(group.id));
            };
            let local = self.local.as_ref().map(|l| l.node_id());
            if !local.is_some_and(|id| shard.owners.contains(&id)) {
                return Err(WriteError::NotOwner {
                    shard: shard.id,
                    owners: shard.owners.clone(),
                });
            }
            match shards.iter_mut().find(|(id, _)| *id == shard.id) {
                Some((_, points)) => points.push(p),
                None => shards.push((shard.id, vec![p])),
            }
        }
        let mut outcome = match (&self.local, shards.is_empty()) {
            (Some(local), false) => local.write_shards(db, &rp_name, shards).await?,
            _ => WriteOutcome::default(),
        };
        outcome.dropped += dropped.dropped;
        if dropped.reason.is_some() {
            // The first reason in request order: retention drops are decided first.
            outcome.reason = dropped.reason;
        }
        Ok(outcome)
    }
}
