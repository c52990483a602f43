//! # catalog: the cluster's metadata, replicated with Raft
//!
//! This crate owns the catalog of a Fletch cluster: its nodes, databases, retention policies,
//! shard groups and shards (with the data nodes that own each shard), and the Raft group
//! (openraft) that replicates it: meta nodes vote, standbys and data-only nodes follow.
//!
//! ```text
//!   gateway / ingester ──execute(Command)──▶ MetaService ─┬─ leader: client_write ─▶ openraft
//!                                                          └─ else: rpc "meta.execute" ─▶ leader
//!   peers ──Flight DoAction (gateway::flight)──▶ MetaService::handle_action ─▶ openraft
//!                                                              │ log (redb, fsync), replicate
//!                                                              ▼
//!   readers ◀──watch<AppliedCatalog>── StateMachine::apply ◀── committed entries
//!                                        └─ CatalogState::apply (pure, deterministic)
//! ```
//!
//! - [`model`]: the data and the commands; applying a command is a pure function, so every
//!   member that applies the same log has the same catalog.
//! - [`columns`]: what each column of a replicated shard is, decided once in the log, so that
//!   every owner refuses the same points.
//! - [`continuous`]: continuous queries, and the claims that make each run happen once.
//! - [`subscription`]: the destinations a retention policy's writes are copied to.
//! - [`raft`]: openraft's parts in the layout of its `raft-kv-rocksdb` example: `types`,
//!   `log_store`, `state_machine`, `network` (Raft messages as Flight actions).
//! - [`rpc`]: the internal wire format (action names, requests, replies) and its client.
//! - [`meta`]: the application API: open, join, propose a command from any node, read the
//!   applied catalog; the leader's membership work and the answers to peers.
//!
//! Readers never wait for Raft: they read the last applied catalog from a watch channel, so
//! writes to existing shards continue while the meta quorum is unavailable.
//!
//! What it must not touch: series data, files of shards, or the client HTTP API. It speaks to
//! other nodes only through [`rpc`] and the meta HTTP `POST /join` that `-join` calls; the
//! listeners belong to the gateway. The ingester and the querier read the catalog; only the
//! meta service changes it.

pub mod columns;
pub mod continuous;
pub mod error;
pub mod meta;
pub mod model;
pub mod raft;
pub mod rpc;
pub mod subscription;

pub use columns::{ColumnDeclaration, ColumnType, ForgetColumns};
pub use continuous::{ContinuousQueryInfo, CqCommand, PendingRun};
pub use error::{CatalogError, MetaError};
pub use meta::{ActionError, MetaOptions, MetaService, NodeIdentity};
pub use model::{
    CatalogState, Command, DatabaseInfo, NodeInfo, Outcome, Privilege, RetentionPolicyInfo,
    RetentionPolicySpec, ShardGroupInfo, ShardInfo, ShardPlace, UserCommand, UserInfo,
};
pub use raft::state_machine::AppliedCatalog;
pub use subscription::{SubscriptionCommand, SubscriptionInfo, SubscriptionMode};
