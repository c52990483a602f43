//! # replicas: the copies of a shard, compared and repaired
//!
//! A shard with replication factor n has n owners, and hinted handoff brings each owner the
//! writes it missed while it was down, for up to `[hinted-handoff] max-age`. This crate covers
//! what that cannot: an owner down for longer, a lost disk, a node replaced by an empty one.
//!
//! ```text
//!  AntiEntropy (every [anti-entropy] check-interval, on each node)
//!    for each cold shard this node owns first (its group ended; hot shards are left alone,
//!    so ingest never shares its files with a check):
//!      every owner's ShardDigest (this node: digest::of(Executor); others: Flight data.digest)
//!        measurement ─▶ series key ─▶ { points, first and last time, checksum of the rows }
//!      compare: series missing or different on an owner
//!      repair::copy_series: rows of those series from an owner that has them
//!        (a ShardSource scan) ─▶ points ─▶ WAL entries ─▶ written on the owner that lacks
//!        them (Nodes::write: its ingester, or Flight data.write)
//! ```
//!
//! A point with the same series and time replaces itself, so copying a series onto an owner
//! that has part of it adds what is missing and changes nothing else: after a repair every
//! owner has the union of the copies. Where two owners hold different values for the same
//! series and time (two writes of the same point that reached them in different orders), the
//! values of the owner copied last win on both.
//!
//! What it must not touch: the storage engine's files (it reads through the querier's
//! `ShardSource` and writes through the write path), HTTP, or the catalog's ownership (moving
//! shards between nodes is the operator's, through the catalog).

pub mod digest;
pub mod repair;
pub mod service;

pub use digest::{SeriesDigest, ShardDigest};
pub use repair::{Nodes, RepairError};
pub use service::{AntiEntropy, EntropyConfig};
