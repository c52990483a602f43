//! How this meta node reaches the other members of the Raft group: each Raft message is one
//! Flight action on the peer's `[meta] bind-address` (see [`crate::rpc`]), with the peer's
//! `Result` carried back as JSON.
//!
//! A peer that cannot be reached is `Unreachable` to openraft, which then backs off; a peer that
//! answers with a Raft error is a `RemoteError`.

use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::TypeConfig;
use crate::rpc::{RpcClient, action};

#[derive(Debug, Clone)]
pub struct Network {
    rpc: Arc<RpcClient>,
}

impl Network {
    pub fn new(rpc: Arc<RpcClient>) -> Self {
        Self { rpc }
    }
}

#[derive(Debug)]
pub struct PeerClient {
    target: u64,
    addr: String,
    rpc: Arc<RpcClient>,
}

impl PeerClient {
    async fn send<Q, R, E>(
        &self,
        action: &str,
        req: &Q,
        ttl: Duration,
    ) -> Result<R, RPCError<u64, BasicNode, E>>
    where
        Q: Serialize,
        R: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<R, E> =
            self.rpc
                .call(&self.addr, action, req, ttl)
                .await
                .map_err(|e| {
                    if e.is_unreachable() {
                        RPCError::Unreachable(Unreachable::new(&e))
                    } else {
                        RPCError::Network(NetworkError::new(&e))
                    }
                })?;
        answer.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                BasicNode {
                    addr: self.addr.clone(),
                },
                e,
            ))
        })
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        PeerClient {
            target,
            addr: node.addr.clone(),
            rpc: self.rpc.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    /// After a failed call to a peer: 250 ms, doubling up to 2 s, so that a node that is down
    /// costs little and logs little, and one that comes back hears from the leader soon.
    fn backoff(&self) -> Backoff {
        let mut next = Duration::from_millis(250);
        Backoff::new(std::iter::from_fn(move || {
            let now = next;
            next = (next * 2).min(Duration::from_secs(2));
            Some(now)
        }))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send(action::RAFT_APPEND, &rpc, option.hard_ttl())
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        self.send(action::RAFT_SNAPSHOT, &rpc, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        self.send(action::RAFT_VOTE, &rpc, option.hard_ttl()).await
    }
}
