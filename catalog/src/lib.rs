//! # catalog: the cluster's metadata, replicated with Raft
//!
//! This crate owns the catalog of a Fletch cluster: its nodes, databases, retention policies,
//! shard groups and shards (with the data nodes that own each shard), and the Raft group
//! (openraft) that replicates it across meta nodes.
//!
//! ```text
//!   gateway / ingester ──execute(Command)──▶ MetaService ──client_write──▶ openraft
//!                                                                           │ log (redb, fsync)
//!                                                                           ▼
//!   readers ◀──watch<AppliedCatalog>── StateMachine::apply ◀── committed entries
//!                                        └─ CatalogState::apply (pure, deterministic)
//! ```
//!
//! - [`model`]: the data and the commands; applying a command is a pure function, so every
//!   meta node that applies the same log has the same catalog.
//! - [`raft`]: openraft's parts in the layout of its `raft-kv-rocksdb` example: `types`,
//!   `log_store`, `state_machine`, `network`.
//! - [`meta`]: the application API: propose a command, read the applied catalog.
//!
//! Readers never wait for Raft: they read the last applied catalog from a watch channel, so
//! writes to existing shards continue while the meta quorum is unavailable.
//!
//! What it must not touch: series data, files of shards, or HTTP. The ingester and the querier
//! read the catalog; only the meta service changes it.

pub mod error;
pub mod meta;
pub mod model;
pub mod raft;
pub mod rpc;

pub use error::{CatalogError, MetaError};
pub use meta::{ActionError, MetaOptions, MetaService, NodeIdentity};
pub use model::{
    CatalogState, Command, DatabaseInfo, NodeInfo, Outcome, RetentionPolicyInfo,
    RetentionPolicySpec, ShardGroupInfo, ShardInfo,
};
pub use raft::state_machine::AppliedCatalog;
