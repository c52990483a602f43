//! Internal RPC between nodes: Arrow Flight `DoAction` calls on the `[meta] bind-address` port.
//!
//! Every call is one Flight action whose type names the operation ([`action`]) and whose body
//! and single result are JSON. Raft's own messages (append, vote, snapshot) travel this way, and
//! so do the meta service's requests to the leader (join, add a member, run a catalog command,
//! drop a server). The port is a Flight service so that the data path (shards fetched over
//! `DoGet`) can share it later.
//!
//! ```text
//!   node A: MetaService / raft::network ──RpcClient::call(addr, action, json)──▶ node B:8088
//!   node B: gateway's Flight service ──do_action──▶ MetaService::handle_action ──▶ json result
//! ```
//!
//! The server side lives with the other listeners in the gateway; this module owns the wire
//! format on both ends: the action names, the request and reply types, and the client.
//!
//! With `[meta] internal-shared-secret` set, every call carries [`InternalCredential`] (derived
//! from the secret, never the secret itself) in the [`INTERNAL_AUTH_HEADER`] metadata, and the
//! server refuses calls without it; the meta HTTP API (`/join`, `/status`) takes the same
//! credential as an HTTP header.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use arrow_flight::Action;
use arrow_flight::flight_service_client::FlightServiceClient;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::error::{CatalogError, MetaError};
use crate::model::{Command, Outcome};

/// The gRPC metadata key (and HTTP header) that carries [`InternalCredential`].
pub const INTERNAL_AUTH_HEADER: &str = "x-fletch-internal-auth";

/// What nodes show each other on the internal port and the meta HTTP API: an HMAC-SHA256 of a
/// fixed text keyed with `[meta] internal-shared-secret`, hex (the secret itself never travels).
#[derive(Clone, PartialEq, Eq)]
pub struct InternalCredential(String);

impl std::fmt::Debug for InternalCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalCredential([REDACTED])")
    }
}

impl InternalCredential {
    /// The credential of `secret`; `None` for an empty secret (no internal authentication).
    pub fn from_secret(secret: &str) -> Option<Self> {
        use hmac::Mac;
        if secret.is_empty() {
            return None;
        }
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes())
                .ok()?;
        mac.update(b"fletch internal credential v1");
        let bytes = mac.finalize().into_bytes();
        Some(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this credential (compared in constant time).
    pub fn accepts(&self, presented: Option<&[u8]>) -> bool {
        let Some(p) = presented else {
            return false;
        };
        let want = self.0.as_bytes();
        p.len() == want.len() && p.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Adds the internal credential to every call of a client.
#[derive(Debug, Clone)]
pub struct AddCredential(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for AddCredential {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(INTERNAL_AUTH_HEADER, v.clone());
        }
        Ok(req)
    }
}

/// Refuses calls without the internal credential (none needed when no secret is set).
#[derive(Debug, Clone)]
pub struct CheckCredential(pub Option<InternalCredential>);

impl tonic::service::Interceptor for CheckCredential {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match &self.0 {
            None => Ok(req),
            Some(c)
                if c.accepts(
                    req.metadata()
                        .get(INTERNAL_AUTH_HEADER)
                        .map(|v| v.as_bytes()),
                ) =>
            {
                Ok(req)
            }
            Some(_) => Err(tonic::Status::unauthenticated(REFUSED_WITHOUT_SECRET)),
        }
    }
}

/// What a node answers a call without the right internal credential.
pub const REFUSED_WITHOUT_SECRET: &str = "the internal port takes calls from the cluster's nodes only: the [meta] internal-shared-secret credential is missing or does not match";

/// A client of the internal Flight service, with the node's credential on every call.
pub type InternalClient = FlightServiceClient<InterceptedService<Channel, AddCredential>>;

/// Largest message either end accepts (Raft snapshots of a big catalog are the largest).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The action types of the internal Flight service.
pub mod action {
    pub const RAFT_APPEND: &str = "raft.append";
    pub const RAFT_VOTE: &str = "raft.vote";
    pub const RAFT_SNAPSHOT: &str = "raft.snapshot";
    /// Register a new or restarted node in the catalog and give it its ids.
    pub const META_JOIN: &str = "meta.join";
    /// Make a registered node a Raft member (learner, then voter while voters are missing).
    pub const META_ADD_MEMBER: &str = "meta.add-member";
    /// Run a catalog command on the leader.
    pub const META_EXECUTE: &str = "meta.execute";
    /// `DROP META SERVER` / `DROP DATA SERVER`, run on the leader.
    pub const META_DROP_SERVER: &str = "meta.drop-server";
    /// The leader's view of the Raft group (`SHOW META STATUS`).
    pub const META_STATUS: &str = "meta.status";
    /// Liveness probe: answers with the node's Raft id.
    pub const PING: &str = "ping";
    /// Store points on a data node that owns their shards (body: the catalog index the sender
    /// routed with, then a WAL entry; see `coordinator::peer`).
    pub const DATA_WRITE: &str = "data.write";
    /// The measurements in some of a data node's shards (JSON).
    pub const DATA_MEASUREMENTS: &str = "data.measurements";
    /// A measurement's schema in some of a data node's shards (JSON).
    pub const DATA_SCHEMA: &str = "data.schema";
    /// A data node's digest of its copy of a shard (JSON; see `replicas::digest`).
    pub const DATA_DIGEST: &str = "data.digest";
    /// The queries running on a node (`SHOW QUERIES` across the cluster; JSON).
    pub const QUERY_LIST: &str = "query.list";
    /// Stop a query running on a node (`KILL QUERY <qid> ON "<host>"`; JSON: the qid).
    pub const QUERY_KILL: &str = "query.kill";
}

/// A node asking to join (or rejoin) the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Ids the node already has (a restart), or none (a new node).
    pub meta_id: Option<u64>,
    pub data_id: Option<u64>,
    /// Advertised Raft / RPC address.
    pub tcp_addr: String,
    /// Set when the node has the meta role.
    pub meta_http_addr: Option<String>,
    /// Set when the node has the data role.
    pub data_http_addr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinReply {
    pub meta_id: Option<u64>,
    pub data_id: Option<u64>,
    /// The leader's Raft / RPC address, where the node asks to become a member.
    pub leader_tcp_addr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddMemberRequest {
    pub raft_id: u64,
    pub tcp_addr: String,
    /// A meta node may vote; a data-only node only follows the log.
    pub voter: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddMemberReply {
    /// Whether the node is a voter now (otherwise a standby or a data-only follower).
    pub voter: bool,
    /// The leader's last log index when the node was added: the new member has the catalog
    /// once it has applied this far.
    pub index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecuteReply {
    /// The log index of the command, so the caller can wait until its own copy applied it.
    pub index: u64,
    pub outcome: Result<Outcome, CatalogError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerKind {
    Meta,
    Data,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DropServerRequest {
    pub kind: ServerKind,
    pub id: u64,
    pub force: bool,
}

/// One member of the Raft group as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub raft_id: u64,
    pub tcp_addr: String,
    /// `leader`, `voter`, `standby` (a meta node that does not vote) or `follower` (a data-only
    /// node that keeps a copy of the catalog).
    pub role: String,
    /// Highest log index known to be on that member (the leader's own last index for itself).
    pub matched_index: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReply {
    pub leader: u64,
    pub term: u64,
    pub commit_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// Why a remote meta call failed, as it travels back to the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RemoteError {
    Catalog(CatalogError),
    /// The callee is no longer the leader: ask again.
    NotLeader,
    Unavailable(String),
    Refused(String),
    Other(String),
}

impl From<MetaError> for RemoteError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::Catalog(c) => Self::Catalog(c),
            MetaError::NotLeader => Self::NotLeader,
            MetaError::Unavailable(m) => Self::Unavailable(m),
            MetaError::Refused(m) => Self::Refused(m),
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<RemoteError> for MetaError {
    fn from(e: RemoteError) -> Self {
        match e {
            RemoteError::Catalog(c) => Self::Catalog(c),
            RemoteError::NotLeader => Self::NotLeader,
            RemoteError::Unavailable(m) => Self::Unavailable(m),
            RemoteError::Refused(m) => Self::Refused(m),
            RemoteError::Other(m) => Self::Raft(m),
        }
    }
}

/// A meta call's reply on the wire.
pub type Remote<T> = Result<T, RemoteError>;

/// Why an RPC did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("invalid node address {addr:?}: {source}")]
    Address {
        addr: String,
        source: tonic::transport::Error,
    },
    /// Nothing answered at the address (refused, unroutable, or connect timed out).
    #[error("node at {addr} is not reachable: {source}")]
    Unreachable { addr: String, source: tonic::Status },
    #[error("node at {addr} answered {action} with an error: {source}")]
    Status {
        addr: String,
        action: String,
        source: tonic::Status,
    },
    #[error("node at {addr} did not answer {action} within {timeout:.1?}")]
    Timeout {
        addr: String,
        action: String,
        timeout: Duration,
    },
    #[error("node at {addr} sent no result for {action}")]
    Empty { addr: String, action: String },
    #[error("encoding {action}: {source}")]
    Encode {
        action: String,
        source: serde_json::Error,
    },
    #[error("decoding the answer of {addr} to {action}: {source}")]
    Decode {
        addr: String,
        action: String,
        source: serde_json::Error,
    },
}

impl RpcError {
    /// Whether the peer was never reached (as opposed to answering badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Timeout { .. })
    }
}

/// How this node reaches the others when the cluster talks TLS (`[meta] https-enabled`): the
/// internal port's gRPC and the meta HTTP API (`-join`) over TLS, the peers' certificates
/// checked against `ca_pem` (`[meta] https-ca-certificate`), or the system's roots without it.
#[derive(Clone, Default)]
pub struct ClientTls {
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca_pem.as_ref().map(|_| "PEM"))
            .finish()
    }
}

impl ClientTls {
    /// `http` or `https`, for URLs of other nodes.
    pub fn scheme(tls: Option<&Self>) -> &'static str {
        match tls {
            Some(_) => "https",
            None => "http",
        }
    }

    fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        let config = tonic::transport::ClientTlsConfig::new();
        match &self.ca_pem {
            Some(pem) => config.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        }
    }

    /// A reqwest client builder that trusts what this configuration trusts.
    pub fn reqwest(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, String> {
        match &self.ca_pem {
            Some(pem) => {
                let ca = reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?;
                Ok(builder
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(ca))
            }
            None => Ok(builder),
        }
    }
}

/// Flight clients to other nodes, one lazily connected channel per address.
#[derive(Debug, Default)]
pub struct RpcClient {
    channels: Mutex<HashMap<String, Channel>>,
    credential: Option<InternalCredential>,
    tls: Option<ClientTls>,
}

impl RpcClient {
    /// Clients that show `credential` (`[meta] internal-shared-secret`) on every call.
    pub fn new(credential: Option<InternalCredential>) -> Self {
        Self {
            channels: Mutex::default(),
            credential,
            tls: None,
        }
    }

    /// The same clients, over TLS (`None`: clear text).
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        self.tls = tls;
        self
    }

    /// The credential calls carry.
    pub fn credential(&self) -> Option<&InternalCredential> {
        self.credential.as_ref()
    }

    fn channel(&self, addr: &str) -> Result<Channel, RpcError> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let address = |source| RpcError::Address {
            addr: addr.to_string(),
            source,
        };
        let scheme = ClientTls::scheme(self.tls.as_ref());
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(address)?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.tonic()).map_err(address)?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// A Flight client of the node at `addr` (its channel is shared and connects lazily).
    pub fn client(&self, addr: &str) -> Result<InternalClient, RpcError> {
        let value = self
            .credential
            .as_ref()
            .and_then(|c| c.as_str().parse().ok());
        Ok(
            FlightServiceClient::with_interceptor(self.channel(addr)?, AddCredential(value))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    /// Calls `action` on the node at `addr` with `req` as JSON and decodes its one result.
    pub async fn call<Q: Serialize, R: DeserializeOwned>(
        &self,
        addr: &str,
        action: &str,
        req: &Q,
        timeout: Duration,
    ) -> Result<R, RpcError> {
        let body = serde_json::to_vec(req).map_err(|source| RpcError::Encode {
            action: action.to_string(),
            source,
        })?;
        let result = self.call_raw(addr, action, body.into(), timeout).await?;
        serde_json::from_slice(&result).map_err(|source| RpcError::Decode {
            addr: addr.to_string(),
            action: action.to_string(),
            source,
        })
    }

    /// Calls `action` on the node at `addr` with `body` as it is and answers its one result's
    /// body.
    pub async fn call_raw(
        &self,
        addr: &str,
        action: &str,
        body: bytes::Bytes,
        timeout: Duration,
    ) -> Result<bytes::Bytes, RpcError> {
        let mut client = self.client(addr)?;
        let call = async {
            let status = |source: tonic::Status| {
                if source.code() == tonic::Code::Unavailable {
                    RpcError::Unreachable {
                        addr: addr.to_string(),
                        source,
                    }
                } else {
                    RpcError::Status {
                        addr: addr.to_string(),
                        action: action.to_string(),
                        source,
                    }
                }
            };
            let mut stream = client
                .do_action(Action {
                    r#type: action.to_string(),
                    body,
                })
                .await
                .map_err(status)?
                .into_inner();
            match stream.next().await {
                Some(Ok(result)) => Ok(result.body),
                Some(Err(e)) => Err(status(e)),
                None => Err(RpcError::Empty {
                    addr: addr.to_string(),
                    action: action.to_string(),
                }),
            }
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(RpcError::Timeout {
                addr: addr.to_string(),
                action: action.to_string(),
                timeout,
            }),
        }
    }
}

/// Commands travel as themselves; this alias documents the `meta.execute` body.
pub type ExecuteRequest = Command;
