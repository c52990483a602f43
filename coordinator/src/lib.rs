//! # coordinator: where a write goes
//!
//! The coordinator owns the routing of writes, as 1.x's `coordinator.PointsWriter` does: for a
//! request's points it resolves the database and retention policy, drops points beyond the
//! policy's duration, finds (or creates, through the meta service) the shard group of each
//! point's time, places each series on one shard of its group by the hash of its series key,
//! and hands each shard's points to a [`ShardWriter`] for the shard's owners. It also runs the
//! retention service that expires shard groups in the catalog.
//!
//! ```text
//!  parsed points (gateway /write, SELECT ... INTO)
//!     ─▶ PointsWriter::write(db, rp, points, now)
//!          database / rp from the catalog ─▶ drop points beyond retention
//!          shard group per time (MetaService::shard_group_for: created through Raft if missing)
//!          shard per series: FNV-1a of the series key ─▶ owners
//!     ─▶ shards with 2+ owners: columns agreed through the catalog (`columns`), points that
//!        disagree dropped here, so that every owner keeps the same field types
//!     ─▶ per shard: ShardWriter::write_shard(owner, db, rp, shard, points)
//!          LocalShards: this node's ingester (WAL fsync before the answer)
//!     ─▶ acknowledged: the points to the subscriptions of db.rp (`subscriber`, best effort)
//!  RetentionService (every [retention] check-interval): expired groups ─▶ DeleteShardGroup
//!     (each data node's ingester then removes the shards the catalog no longer lists)
//! ```
//!
//! A shard's points travel in the WAL entry format (`ingester::wal::codec`), so a replica
//! can be sent exactly what a WAL stores.
//!
//! What it must not touch: the storage engine's internals (it calls `Ingester::write_shards`
//! only), HTTP, or the line protocol text (the gateway parses it).

mod columns;
pub mod consistency;
pub mod deletes;
pub mod hinted;
pub mod peer;
pub mod retention;
pub mod subscriber;
pub mod write;

pub use consistency::Consistency;
pub use deletes::DeleteApplier;
pub use subscriber::{Subscriber, SubscriberConfig};
pub use write::{LocalShards, PointsWriter, ShardWriter, WriteError, series_hash};
