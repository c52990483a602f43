//! Errors of the catalog: the deterministic ones a command produces when applied
//! ([`CatalogError`], part of the replicated outcome) and the ones of the meta service that
//! runs it ([`MetaError`]).

use serde::{Deserialize, Serialize};

/// Why a command was refused. The texts are InfluxDB 1.x's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CatalogError {
    #[error("database name required")]
    DatabaseNameRequired,
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    #[error("retention policy not found: {0}")]
    RetentionPolicyNotFound(String),
    #[error("retention policy conflicts with an existing policy")]
    RetentionPolicyConflict,
    #[error("retention policy already exists")]
    RetentionPolicyExists,
    #[error("retention policy duration must be at least 1h0m0s")]
    RetentionTooShort,
    #[error("retention policy duration must be greater than the shard duration")]
    ShardDurationTooLong,
    #[error("replication factor must be greater than 0")]
    ReplicationTooLow,
    #[error("no data nodes available to own shards")]
    NoDataNodes,
    #[error("meta node not found: {0}")]
    MetaNodeNotFound(u64),
    #[error("data node not found: {0}")]
    DataNodeNotFound(u64),
    #[error(
        "data node {node} holds the only copy of shard(s) {shards:?}; use DROP DATA SERVER {node} FORCE to drop it anyway (their data is lost)"
    )]
    SoleOwner { node: u64, shards: Vec<u64> },
    #[error("shard not found: {0}")]
    ShardNotFound(u64),
    #[error("data node {node} does not own shard {shard}")]
    NotAnOwner { shard: u64, node: u64 },
    #[error("shard {0} has no other owner: removing this one would lose its data")]
    LastOwner(u64),
    #[error("username required")]
    UsernameRequired,
    #[error("user already exists")]
    UserExists,
    #[error("user not found")]
    UserNotFound,
    #[error("continuous query already exists")]
    ContinuousQueryExists,
    #[error("subscription already exists")]
    SubscriptionExists,
    #[error("subscription not found")]
    SubscriptionNotFound,
    #[error("invalid subscription URL: {0}")]
    InvalidSubscriptionUrl(String),
}

/// Errors of the meta service.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("meta storage at {path}: {source}")]
    Storage { path: String, source: redb::Error },
    #[error("meta node id file {path}: {source}")]
    NodeId {
        path: String,
        source: std::io::Error,
    },
    /// No leader, or no quorum to commit: catalog changes fail, reads go on.
    #[error("meta service unavailable: {0}")]
    Unavailable(String),
    /// Asked of the leader, but this node is not (or no longer) the leader.
    #[error("this meta node is not the leader")]
    NotLeader,
    /// A membership change the cluster cannot make safely.
    #[error("{0}")]
    Refused(String),
    #[error("cannot join the cluster: {0}")]
    Join(String),
    #[error("raft: {0}")]
    Raft(String),
}
