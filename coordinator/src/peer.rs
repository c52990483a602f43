//! Points sent to another owner of their shard, and received from one.
//!
//! ```text
//!  coordinator (node A)                                  owner (node B, [meta] bind-address)
//!    encode_entry(db, rp, B's shards) ─▶ FlightPeers::write ─ DoAction "data.write" ─▶
//!        body = catalog index (u64 LE) ++ WAL entry          serve_write:
//!                                                              wait until B's catalog has
//!                                                              applied that index (bounded)
//!                                                              every shard owned by B?
//!                                                              Ingester::write_shards (WAL fsync)
//!    ◀──────────────── JSON WriteOutcome (drops per shard) ◀──
//! ```
//!
//! The entry is exactly what a WAL stores (`ingester::wal::codec`). The catalog index makes the
//! owner wait for the shard group the coordinator may have just created, so that an owner never
//! takes points for a shard it does not know yet (its ingester would drop such a shard as
//! removed).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use catalog::MetaService;
use catalog::rpc::{RpcClient, RpcError, action};
use ingester::wal::WalEntry;
use ingester::{Ingester, WriteOutcome};

/// Why points could not be stored on another node.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    #[error("data node {0} is not in the catalog")]
    UnknownNode(u64),
    /// The node was not reached, or did not answer in time: worth trying again later.
    #[error("data node {node}: {message}")]
    Unreachable { node: u64, message: String },
    /// The node answered, and refused the points for now (buffer full, shutting down, its
    /// catalog behind): worth trying again later.
    #[error("data node {node}: {message}")]
    Busy { node: u64, message: String },
    /// The node answered, and refused the points for good (not an owner, a malformed entry).
    #[error("data node {node}: {message}")]
    Refused { node: u64, message: String },
}

impl PeerError {
    /// Whether the same points may be accepted later (hinted handoff keeps them until then).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Busy { .. })
    }
}

/// Stores points on other data nodes.
#[async_trait]
pub trait PeerWriter: Send + Sync + std::fmt::Debug {
    /// Sends `entry` (a WAL entry) to data node `node`, routed with the catalog at `index`;
    /// `Ok` once the node has it in its WAL.
    async fn write(&self, node: u64, index: u64, entry: Bytes) -> Result<WriteOutcome, PeerError>;
}

/// The body of a `data.write` action.
pub fn write_body(index: u64, entry: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(8 + entry.len());
    body.extend_from_slice(&index.to_le_bytes());
    body.extend_from_slice(entry);
    body.into()
}

/// Other data nodes, reached over Arrow Flight at their catalog `tcp_addr`.
#[derive(Debug)]
pub struct FlightPeers {
    meta: Arc<MetaService>,
    rpc: Arc<RpcClient>,
    timeout: Duration,
}

impl FlightPeers {
    /// Calls through `rpc`'s channels give up after `timeout`.
    pub fn new(meta: Arc<MetaService>, rpc: Arc<RpcClient>, timeout: Duration) -> Self {
        Self { meta, rpc, timeout }
    }
}

#[async_trait]
impl PeerWriter for FlightPeers {
    async fn write(&self, node: u64, index: u64, entry: Bytes) -> Result<WriteOutcome, PeerError> {
        let addr = self
            .meta
            .catalog()
            .data_node_tcp_addr(node)
            .ok_or(PeerError::UnknownNode(node))?;
        let body = write_body(index, &entry);
        let answer = self
            .rpc
            .call_raw(&addr, action::DATA_WRITE, body, self.timeout)
            .await
            .map_err(|e| peer_error(node, e))?;
        serde_json::from_slice(&answer).map_err(|e| PeerError::Refused {
            node,
            message: format!("undecodable answer to data.write: {e}"),
        })
    }
}

fn peer_error(node: u64, e: RpcError) -> PeerError {
    use tonic::Code;
    let message = e.to_string();
    match &e {
        RpcError::Status { source, .. } => match source.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::Unimplemented => {
                PeerError::Refused { node, message }
            }
            _ => PeerError::Busy { node, message },
        },
        _ => PeerError::Unreachable { node, message },
    }
}

/// Why this node refused points another node sent.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data.write body shorter than its header")]
    Short,
    #[error("no data role on this node")]
    NoData,
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Behind(catalog::MetaError),
    #[error("shard {shard} is owned by data node(s) {owners:?}, not by data node {node}")]
    NotOwner {
        shard: u64,
        node: u64,
        owners: Vec<u64>,
    },
    #[error(transparent)]
    Write(#[from] ingester::WriteError),
}

/// Stores the points of a `data.write` body on this node: waits (at most `wait`) until the
/// catalog has applied the sender's index, checks that this node owns every shard, and writes
/// them as a local write is written (WAL fsync before `Ok`).
pub async fn serve_write(
    meta: &MetaService,
    ingester: Option<&Arc<Ingester>>,
    body: &[u8],
    wait: Duration,
) -> Result<WriteOutcome, ServeError> {
    let ingester = ingester.ok_or(ServeError::NoData)?;
    if body.len() < 8 {
        return Err(ServeError::Short);
    }
    let (index, entry) = body.split_at(8);
    let index = u64::from_le_bytes(index.try_into().map_err(|_| ServeError::Short)?);
    meta.wait_applied(index, wait)
        .await
        .map_err(ServeError::Behind)?;
    let entry = WalEntry::decode(entry).map_err(|e| ServeError::Malformed(e.to_string()))?;
    let node = ingester.node_id();
    {
        let cat = meta.catalog();
        for s in &entry.shards {
            let owners = cat
                .find_shard(s.shard_id)
                .filter(|p| p.database.name == entry.database && p.rp.name == entry.rp)
                .map(|p| p.shard.owners.clone())
                .unwrap_or_default();
            if !owners.contains(&node) {
                return Err(ServeError::NotOwner {
                    shard: s.shard_id,
                    node,
                    owners,
                });
            }
        }
    }
    let shards = entry
        .shards
        .into_iter()
        .map(|s| (s.shard_id, s.points))
        .collect();
    Ok(ingester
        .write_shards_at(&entry.database, &entry.rp, shards, index)
        .await?)
}
