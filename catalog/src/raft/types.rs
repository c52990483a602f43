//! The Raft type configuration of the catalog.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;
use crate::model::{Command, Outcome};

/// What applying one log entry returned; deterministic, so it is the same on every meta node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response(pub Result<Outcome, CatalogError>);

openraft::declare_raft_types!(
    /// The catalog's Raft types: commands in, outcomes out, nodes addressed by their tcp address.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;
