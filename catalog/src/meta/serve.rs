//! Answers other nodes: every internal Flight action ([`crate::rpc::action`]) lands in
//! [`MetaService::handle_action`], and the meta HTTP API's `POST /join` in
//! [`MetaService::join`]. The gateway owns the listeners and maps [`ActionError`] to a gRPC
//! status; everything a peer should act on travels inside the JSON reply.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::MetaService;
use crate::error::MetaError;
use crate::rpc::{
    AddMemberRequest, DropServerRequest, JoinReply, JoinRequest, Remote, RemoteError, ServerKind,
    StatusReply, action,
};

/// Why an action could not even be attempted.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("unknown action {0:?}")]
    Unknown(String),
    #[error("malformed {action} request: {source}")]
    Malformed {
        action: String,
        source: serde_json::Error,
    },
    #[error("encoding the {action} reply: {source}")]
    Encode {
        action: String,
        source: serde_json::Error,
    },
}

fn decode<T: DeserializeOwned>(action: &str, body: &[u8]) -> Result<T, ActionError> {
    serde_json::from_slice(body).map_err(|source| ActionError::Malformed {
        action: action.to_string(),
        source,
    })
}

fn encode<T: Serialize>(action: &str, value: &T) -> Result<Vec<u8>, ActionError> {
    serde_json::to_vec(value).map_err(|source| ActionError::Encode {
        action: action.to_string(),
        source,
    })
}

fn remote<T>(r: Result<T, MetaError>) -> Remote<T> {
    r.map_err(RemoteError::from)
}

impl MetaService {
    /// Runs one internal action for a peer and returns its JSON reply.
    pub async fn handle_action(&self, kind: &str, body: &[u8]) -> Result<Vec<u8>, ActionError> {
        match kind {
            action::RAFT_APPEND => {
                let reply = self.raft.append_entries(decode(kind, body)?).await;
                encode(kind, &reply)
            }
            action::RAFT_VOTE => {
                let reply = self.raft.vote(decode(kind, body)?).await;
                encode(kind, &reply)
            }
            action::RAFT_SNAPSHOT => {
                let reply = self.raft.install_snapshot(decode(kind, body)?).await;
                encode(kind, &reply)
            }
            action::META_JOIN => {
                let req: JoinRequest = decode(kind, body)?;
                encode(kind, &remote(self.join_local(req).await))
            }
            action::META_ADD_MEMBER => {
                let req: AddMemberRequest = decode(kind, body)?;
                encode(kind, &remote(self.add_member_local(req).await))
            }
            action::META_EXECUTE => {
                let cmd = decode(kind, body)?;
                encode(kind, &remote(self.execute_local(cmd).await))
            }
            action::META_DROP_SERVER => {
                let req: DropServerRequest = decode(kind, body)?;
                encode(kind, &remote(self.drop_server_local(req).await))
            }
            action::META_STATUS => encode(kind, &remote(self.status_local().await)),
            action::PING => encode(kind, &self.raft_id),
            other => Err(ActionError::Unknown(other.to_string())),
        }
    }

    /// `POST /join` on the meta HTTP API: registers a node through the leader.
    pub async fn join(&self, req: JoinRequest) -> Result<JoinReply, MetaError> {
        let deadline = Instant::now() + self.opts.commit_timeout;
        self.on_leader_until(action::META_JOIN, &req, deadline, || {
            self.join_local(req.clone())
        })
        .await
    }

    /// `DROP META SERVER` / `DROP DATA SERVER`: answers the warnings to show with the result.
    pub async fn drop_server(
        &self,
        kind: ServerKind,
        id: u64,
        force: bool,
    ) -> Result<Vec<String>, MetaError> {
        let req = DropServerRequest { kind, id, force };
        // Pings of the remaining members come on top of the commits.
        let deadline = Instant::now() + self.opts.commit_timeout * 2;
        let warnings = self
            .on_leader_until(action::META_DROP_SERVER, &req, deadline, || {
                self.drop_server_local(req.clone())
            })
            .await?;
        // As every catalog change: the next statement on this node sees it.
        self.catch_up(self.opts.commit_timeout).await;
        Ok(warnings)
    }

    /// The leader's view of the Raft group (`SHOW META STATUS`).
    pub async fn cluster_status(&self) -> Result<StatusReply, MetaError> {
        let deadline = Instant::now() + self.opts.commit_timeout.min(Duration::from_secs(5));
        self.on_leader_until(action::META_STATUS, &(), deadline, || self.status_local())
            .await
    }
}
