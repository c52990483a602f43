//! # ingester: the data node's write path and storage
//!
//! The ingester owns the data of the shards this node holds: it makes every acknowledged write
//! durable, buffers it as Arrow for queries, persists it as Parquet, compacts the files and
//! removes the shards the catalog no longer lists (expired or dropped).
//!
//! ```text
//!  points routed to shards of this node (crate `coordinator`: Ingester::write_shards)
//!    │ validate: shard schema (field types, reserved names)          ┌──────────────┐
//!    ├──▶ WAL entry (one per request) ─▶ writer thread ─▶ fsync ────▶│ wal/*.wal    │
//!    │     (group commit: many requests, one fsync)                  └──────────────┘
//!    └──▶ buffer: shard ▶ measurement ▶ TableBuffer (Arrow builders)
//!                 │ persist (size or age): freeze (move the buffers aside) + rotate WAL
//!                 ▼  as one step; writes go on into a new buffer
//!          sort by series, time; merge same series+time (later write wins per field)
//!                 ▼
//!          shards/<id>/<file>.parquet via object_store ─▶ fsync ─▶ manifest.json (atomic)
//!                 ▼                                                   ▼
//!          release WAL segments                          compaction, retention
//! ```
//!
//! Readers (the querier) take a [`TableSnapshot`]: the live files, the tombstones that still
//! hide rows of older files, and the buffered batches (each sorted and merged), oldest first.
//! Points of one series and time in several of them merge by the rule of persistence and
//! compaction: for each field, the latest write wins. A snapshot pins its files: compaction
//! and deletes that replace them remove them only once no snapshot lists them ([`pins`]).
//!
//! What it must not touch: HTTP, the line protocol text of a request (the gateway parses it),
//! InfluxQL, routing (which shard a point belongs to is the coordinator's decision), or the
//! catalog beyond reading it. [`wal::codec`] is the payload format of a shard's points
//! wherever they travel.

pub mod batch;
pub mod delete;
pub mod engine;
pub mod error;
pub mod manifest;
pub mod merge;
pub mod metrics;
pub mod parquet_io;
pub mod pins;
pub mod schema;
pub mod table;
pub mod wal;

pub use delete::{TagPredicate, Tombstone};
pub use engine::{
    DeleteScope, Ingester, IngesterConfig, TableSnapshot, TableVersion, WriteOutcome, now_nanos,
};
pub use error::{StorageError, WalError, WriteError};
pub use schema::{FieldType, TableSchema};
pub use table::SortedRows;
