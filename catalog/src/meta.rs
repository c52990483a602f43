//! The meta service: the application API over the Raft group.
//!
//! Changes go through [`MetaService::execute`]: on the leader a Raft proposal, on any other node
//! a `meta.execute` call to the leader, committed before it returns and applied on this node
//! before the caller sees the outcome (so a node reads its own writes). Reads come from the
//! locally applied catalog ([`MetaService::catalog`]) and never wait on Raft, so the write and
//! query paths keep working on the catalog they have while the meta quorum is lost.
//!
//! Every node runs a Raft member: meta nodes vote (up to `[meta] voters` of them; the rest are
//! standbys that a failure promotes), data-only nodes follow the log as non-voting learners so
//! they have their own copy of the catalog. [`membership`] holds what the leader does to grow
//! and shrink the group; [`serve`] answers other nodes' calls.

mod membership;
mod serve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::BasicNode;
use openraft::error::{ClientWriteError, RaftError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{CatalogError, MetaError};
use crate::model::{CatalogState, Command, Nanos, Outcome, RetentionPolicySpec, ShardGroupInfo};
use crate::raft::log_store::LogStore;
use crate::raft::network::Network;
use crate::raft::state_machine::{AppliedCatalog, StateMachine};
use crate::raft::types::Raft;
use crate::rpc::{
    AddMemberReply, AddMemberRequest, ExecuteReply, JoinReply, JoinRequest, Remote, RemoteError,
    RpcClient, RpcError, action,
};

pub use serve::ActionError;

/// How to open the meta service.
#[derive(Debug, Clone)]
pub struct MetaOptions {
    /// `[meta] dir`: the Raft log, snapshots, applied state and the node's identity.
    pub dir: PathBuf,
    /// Advertised Raft / RPC address (`[meta] advertise-address`, else `bind-address`).
    pub tcp_addr: String,
    /// Advertised meta HTTP address; `None` when the node does not have the meta role.
    pub meta_http_addr: Option<String>,
    /// Advertised client HTTP address when this node is also a data node.
    pub data_http_addr: Option<String>,
    /// Meta HTTP addresses (`host:8091`) of cluster members to join; empty for the first node.
    pub join: Vec<String>,
    /// How many meta nodes vote (`[meta] voters`); further meta nodes are standbys.
    pub voters: usize,
    /// Leader heartbeat interval (`[meta] heartbeat-timeout`).
    pub heartbeat: Duration,
    /// Lower bound of the randomized election timeout (`[meta] election-timeout`); the upper
    /// bound is twice that.
    pub election_timeout: Duration,
    /// How long a catalog change may wait for a leader and a commit before it fails with
    /// "no quorum" (`[meta] commit-timeout`).
    pub commit_timeout: Duration,
    /// How long a voter may fail to answer before the leader replaces it by a standby.
    pub promote_after: Duration,
    /// Log entries between catalog snapshots; entries a snapshot covers are then purged.
    pub snapshot_after_entries: u64,
    /// How long joining a cluster, or becoming the leader of a new one, may take.
    pub startup_timeout: Duration,
    /// `[meta] internal-shared-secret`'s credential, shown on every call to another node and
    /// on `-join`; `None`: calls carry none.
    pub internal: Option<crate::rpc::InternalCredential>,
    /// `[meta] https-enabled`: other nodes are called over TLS (`None`: clear text).
    pub tls: Option<crate::rpc::ClientTls>,
}

impl MetaOptions {
    /// A meta node (also a data node) on the default loopback addresses, keeping its state in
    /// `dir`: what tests and embedders want.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            tcp_addr: "127.0.0.1:8088".into(),
            meta_http_addr: Some("127.0.0.1:8091".into()),
            data_http_addr: Some("127.0.0.1:8086".into()),
            join: Vec::new(),
            voters: 3,
            heartbeat: Duration::from_millis(250),
            election_timeout: Duration::from_millis(1000),
            commit_timeout: Duration::from_secs(5),
            promote_after: Duration::from_secs(10),
            snapshot_after_entries: 5000,
            startup_timeout: Duration::from_secs(20),
            internal: None,
            tls: None,
        }
    }
}

/// The node's identity, persisted so that ids are stable across restarts. Meta and data ids come
/// from one id space; the node's Raft id is its meta id, or its data id on a data-only node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    pub meta_id: Option<u64>,
    pub data_id: Option<u64>,
}

impl NodeIdentity {
    pub fn raft_id(&self) -> Option<u64> {
        self.meta_id.or(self.data_id)
    }

    fn path(dir: &Path) -> PathBuf {
        dir.join("node.json")
    }

    fn load(dir: &Path) -> Result<Option<Self>, MetaError> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| MetaError::NodeId {
                    path: path.display().to_string(),
                    source: std::io::Error::other(e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MetaError::NodeId {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn save(&self, dir: &Path) -> Result<(), MetaError> {
        let path = Self::path(dir);
        let err = |source| MetaError::NodeId {
            path: path.display().to_string(),
            source,
        };
        let tmp = dir.join("node.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)
    }
}

pub struct MetaService {
    raft: Raft,
    raft_id: u64,
    catalog: watch::Receiver<AppliedCatalog>,
    identity: Mutex<NodeIdentity>,
    rpc: Arc<RpcClient>,
    opts: MetaOptions,
    /// The leader's address when the node registered through `-join` during this open (so
    /// `start` does not ask twice).
    joined_now: Option<String>,
    stop: watch::Sender<bool>,
    /// Held by the leader around a membership change: Raft takes one at a time, so joins that
    /// arrive together queue here instead of failing.
    membership_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for MetaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaService")
            .field("raft_id", &self.raft_id)
            .field("identity", &self.identity())
            .finish()
    }
}

fn raft_err(e: impl std::fmt::Display) -> MetaError {
    MetaError::Raft(e.to_string())
}

impl MetaService {
    /// Opens the catalog and starts this node's Raft member, ready to use: [`Self::prepare`]
    /// then [`Self::start`]. A server must serve [`Self::handle_action`] on its tcp address in
    /// between when it joins a cluster; a single node needs no network.
    pub async fn open(opts: MetaOptions) -> Result<Arc<Self>, MetaError> {
        let svc = Self::prepare(opts).await?;
        svc.start().await?;
        Ok(svc)
    }

    /// Opens (or creates) the catalog under `opts.dir` and creates the Raft member. A new node
    /// given `join` addresses asks the cluster for its ids here; it becomes a member in
    /// [`Self::start`].
    pub async fn prepare(opts: MetaOptions) -> Result<Arc<Self>, MetaError> {
        let dir = &opts.dir;
        std::fs::create_dir_all(dir).map_err(|source| MetaError::NodeId {
            path: dir.display().to_string(),
            source,
        })?;
        let db_path = dir.join("meta.redb");
        let db = Arc::new(
            redb::Database::create(&db_path).map_err(|e| MetaError::Storage {
                path: db_path.display().to_string(),
                source: e.into(),
            })?,
        );
        let log_store = LogStore::new(db.clone()).map_err(raft_err)?;
        let (state_machine, catalog) = StateMachine::open(db).map_err(raft_err)?;
        let rpc = Arc::new(RpcClient::new(opts.internal.clone()).with_tls(opts.tls.clone()));

        let mut joined_now = None;
        let identity = match NodeIdentity::load(dir)? {
            Some(id) => id,
            None if opts.join.is_empty() => {
                if opts.meta_http_addr.is_none() {
                    return Err(MetaError::Join(
                        "a node without the meta role must join a cluster: start it with -join host:8091".into(),
                    ));
                }
                // The first node of a new cluster.
                NodeIdentity {
                    meta_id: Some(1),
                    data_id: None,
                }
            }
            None => {
                let reply = join_cluster(&opts, &NodeIdentity::default()).await?;
                joined_now = Some(reply.leader_tcp_addr.clone());
                NodeIdentity {
                    meta_id: reply.meta_id,
                    data_id: reply.data_id,
                }
            }
        };
        let raft_id = identity
            .raft_id()
            .ok_or_else(|| MetaError::Join("the cluster gave this node no id".into()))?;
        identity.save(dir)?;

        let config = openraft::Config {
            cluster_name: "fletch".into(),
            heartbeat_interval: opts.heartbeat.as_millis() as u64,
            election_timeout_min: opts.election_timeout.as_millis() as u64,
            election_timeout_max: 2 * opts.election_timeout.as_millis() as u64,
            snapshot_max_chunk_size: 1 << 20,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(opts.snapshot_after_entries),
            max_in_snapshot_log_to_keep: (opts.snapshot_after_entries / 2).min(1000),
            ..Default::default()
        };
        let config = Arc::new(config.validate().map_err(raft_err)?);
        let raft = Raft::new(
            raft_id,
            config,
            Network::new(rpc.clone()),
            log_store,
            state_machine,
        )
        .await
        .map_err(raft_err)?;
        let (stop, _) = watch::channel(false);
        Ok(Arc::new(Self {
            raft,
            raft_id,
            catalog,
            identity: Mutex::new(identity),
            rpc,
            opts,
            joined_now,
            stop,
            membership_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// Makes the node a working member: the first node of a new cluster becomes its leader; a
    /// joining node becomes a learner, then a voter while voters are missing; a restarted node
    /// comes back as itself. Then the node's addresses are made current in the catalog.
    pub async fn start(self: &Arc<Self>) -> Result<(), MetaError> {
        let initialized = self.raft.is_initialized().await.map_err(raft_err)?;
        let deadline = Instant::now() + self.opts.startup_timeout;
        if !initialized && self.opts.join.is_empty() {
            let mut members = BTreeMap::new();
            members.insert(
                self.raft_id,
                BasicNode {
                    addr: self.opts.tcp_addr.clone(),
                },
            );
            self.raft.initialize(members).await.map_err(raft_err)?;
            self.raft
                .wait(Some(self.opts.startup_timeout))
                .current_leader(self.raft_id, "the first meta node leads")
                .await
                .map_err(|e| {
                    MetaError::Unavailable(format!(
                        "no leader after {:?}: {e}",
                        self.opts.startup_timeout
                    ))
                })?;
        } else if !initialized {
            let reply = self.become_member(deadline).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            self.wait_applied(reply.index, left).await.map_err(|_| {
                MetaError::Join(format!(
                    "joined, but the catalog did not arrive within {:?}",
                    self.opts.startup_timeout
                ))
            })?;
            tracing::info!(
                raft_id = self.raft_id,
                voter = reply.voter,
                "joined the cluster"
            );
        } else if let Some(known) = self
            .metrics()
            .membership_config
            .membership()
            .get_node(&self.raft_id)
            .filter(|n| n.addr != self.opts.tcp_addr)
            .map(|n| n.addr.clone())
        {
            if self
                .metrics()
                .membership_config
                .membership()
                .nodes()
                .count()
                > 1
            {
                tracing::warn!(
                    raft_id = self.raft_id,
                    %known,
                    now = %self.opts.tcp_addr,
                    "the other members know this node at its old [meta] bind-address and will not reach it at the new one; keep the address, or drop the node and join it again with an empty [meta] dir"
                );
            }
        } else if !self.opts.join.is_empty() {
            tracing::info!(
                raft_id = self.raft_id,
                "already a member of the cluster; -join is not needed on restart"
            );
        }

        // A data role without a data id (the first node, or a node that gained the role).
        let needs_data_id = self.opts.data_http_addr.is_some() && self.identity().data_id.is_none();
        if needs_data_id || !initialized {
            self.register().await?;
        } else if !self.restart_register().await {
            // A restart: the leader may be elected only once enough members are back, so the
            // address update must not hold up the node.
            let svc = self.clone();
            tokio::spawn(async move {
                let mut backoff = Duration::from_millis(500);
                loop {
                    match svc.register().await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "updating this node's addresses in the catalog; retrying")
                        }
                    }
                    if *svc.stop.borrow() {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            });
        }
        tokio::spawn(membership::monitor(self.clone(), self.stop.subscribe()));
        Ok(())
    }

    /// Asks the leader (found through the `-join` members) to add this node to the Raft group.
    /// This node knows no leader yet: it is not a member.
    async fn become_member(&self, deadline: Instant) -> Result<AddMemberReply, MetaError> {
        let request = AddMemberRequest {
            raft_id: self.raft_id,
            tcp_addr: self.opts.tcp_addr.clone(),
            voter: self.identity().meta_id.is_some(),
        };
        let mut leader = self.joined_now.clone();
        loop {
            let addr = match leader.take() {
                Some(a) => a,
                // Registered before but never became a member, or the leader moved: ask again.
                None => {
                    join_cluster(&self.opts, &self.identity())
                        .await?
                        .leader_tcp_addr
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .rpc
                .call::<_, Remote<AddMemberReply>>(&addr, action::META_ADD_MEMBER, &request, left)
                .await;
            match answer {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(RemoteError::NotLeader)) => {}
                // No quorum yet, or another change in progress: ask again until the deadline.
                Ok(Err(RemoteError::Unavailable(e))) => {
                    tracing::warn!(leader = %addr, error = %e, "the leader cannot add this node yet; retrying")
                }
                Ok(Err(e)) => return Err(MetaError::Join(MetaError::from(e).to_string())),
                Err(e) => {
                    tracing::warn!(leader = %addr, error = %e, "asking the leader to add this node; retrying")
                }
            }
            if Instant::now() >= deadline {
                return Err(MetaError::Join(format!(
                    "the leader did not add this node within {:?}",
                    self.opts.startup_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// On a restart, updates this node's addresses at once if a leader shows up within a few
    /// election timeouts (always so for a single node); false if that did not work.
    async fn restart_register(&self) -> bool {
        let leader = self
            .raft
            .wait(Some(self.opts.election_timeout * 4))
            .metrics(|m| m.current_leader.is_some(), "a leader after restart")
            .await
            .is_ok();
        leader && self.register().await.is_ok()
    }

    /// Makes sure the catalog lists this node with its current addresses.
    async fn register(&self) -> Result<(), MetaError> {
        let state = self.catalog();
        let identity = self.identity();
        let tcp = self.opts.tcp_addr.as_str();
        if let (Some(http), Some(id)) = (&self.opts.meta_http_addr, identity.meta_id) {
            let known = state.meta_nodes.get(&id);
            if known.map(|n| (n.http_addr.as_str(), n.tcp_addr.as_str())) != Some((http, tcp)) {
                self.execute(Command::RegisterMetaNode {
                    id: Some(id),
                    http_addr: http.clone(),
                    tcp_addr: tcp.to_string(),
                })
                .await?;
            }
        }
        if let Some(http) = &self.opts.data_http_addr {
            let known = identity.data_id.and_then(|d| state.data_nodes.get(&d));
            if known.map(|n| (n.http_addr.as_str(), n.tcp_addr.as_str())) != Some((http, tcp)) {
                let out = self
                    .execute(Command::RegisterDataNode {
                        id: identity.data_id,
                        http_addr: http.clone(),
                        tcp_addr: tcp.to_string(),
                    })
                    .await?;
                if let Outcome::NodeId(d) = out {
                    let mut me = self.identity.lock().unwrap_or_else(|e| e.into_inner());
                    me.data_id = Some(d);
                    me.save(&self.opts.dir)?;
                }
            }
        }
        Ok(())
    }

    pub fn identity(&self) -> NodeIdentity {
        self.identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// This node's id in the Raft group.
    pub fn raft_id(&self) -> u64 {
        self.raft_id
    }

    /// The catalog as applied on this node.
    pub fn catalog(&self) -> Arc<CatalogState> {
        self.catalog.borrow().state.clone()
    }

    /// Follows the applied catalog (and its Raft index) as it changes.
    pub fn watch(&self) -> watch::Receiver<AppliedCatalog> {
        self.catalog.clone()
    }

    /// Waits (at most `timeout`) until this node has applied the catalog up to the leader's
    /// commit index, so that a node that was down serves nothing from a catalog older than
    /// the cluster's (a database created meanwhile missing, say). False, with a warning, when
    /// no leader answered or the log did not arrive in time: the node then serves from its own
    /// copy.
    pub async fn catch_up(&self, timeout: Duration) -> bool {
        // A node alone in its Raft group is the catalog: nothing to wait for.
        let alone = {
            let m = self.metrics();
            let members: Vec<u64> = m
                .membership_config
                .membership()
                .nodes()
                .map(|(id, _)| *id)
                .collect();
            members == [self.raft_id]
        };
        if alone {
            return true;
        }
        let started = Instant::now();
        let index = match tokio::time::timeout(timeout, self.cluster_status()).await {
            Ok(Ok(status)) => status.commit_index,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not learn the catalog leader's commit index; serving from this node's copy of the catalog");
                return false;
            }
            Err(_) => {
                tracing::warn!(
                    ?timeout,
                    "no catalog leader answered within [meta] catch-up-timeout; serving from this node's copy of the catalog"
                );
                return false;
            }
        };
        let Some(index) = index else {
            return true;
        };
        let left = timeout.saturating_sub(started.elapsed());
        match self.wait_applied(index, left).await {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!(
                    index,
                    applied = self.applied_index(),
                    ?timeout,
                    "the catalog did not catch up with the leader's within [meta] catch-up-timeout; serving from this node's copy"
                );
                false
            }
        }
    }

    /// The Raft index of the catalog as applied on this node.
    pub fn applied_index(&self) -> u64 {
        self.catalog.borrow().applied_index
    }

    /// The catalog index this node routes writes and shard reads with
    /// ([`CatalogState::data_index`]): the receiver waits to have applied this much, not this
    /// node's whole log, so that it is not held back by commands that change no shard.
    pub fn data_index(&self) -> u64 {
        let applied = self.catalog.borrow();
        applied.state.data_index(applied.applied_index)
    }

    /// Waits until this node has applied the log up to `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), MetaError> {
        let mut rx = self.catalog.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|a| a.applied_index >= index)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(MetaError::Unavailable(format!(
                "this node has not applied catalog index {index} after {timeout:?}"
            ))),
        }
    }

    /// Proposes a change (through the leader) and waits until it is committed, and applied on
    /// this node.
    pub async fn execute(&self, cmd: Command) -> Result<Outcome, MetaError> {
        let deadline = Instant::now() + self.opts.commit_timeout;
        let reply: ExecuteReply = self
            .on_leader_until(action::META_EXECUTE, &cmd, deadline, || {
                self.execute_local(cmd.clone())
            })
            .await?;
        if let Err(e) = self
            .wait_applied(reply.index, self.opts.commit_timeout)
            .await
        {
            // Committed all the same; this node's copy catches up on its own.
            tracing::warn!(error = %e, "catalog change committed but not yet applied here");
        }
        Ok(reply.outcome?)
    }

    /// Runs a command as the leader: [`MetaError::NotLeader`] if this node is not.
    async fn execute_local(&self, cmd: Command) -> Result<ExecuteReply, MetaError> {
        let timeout = self.opts.commit_timeout;
        match tokio::time::timeout(timeout, self.raft.client_write(cmd)).await {
            Ok(Ok(resp)) => Ok(ExecuteReply {
                index: resp.log_id.index,
                outcome: resp.data.0,
            }),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(MetaError::NotLeader)
            }
            Ok(Err(e)) => Err(MetaError::Unavailable(e.to_string())),
            Err(_) => Err(MetaError::Unavailable(format!(
                "no quorum: the change was not committed within {timeout:?} (it may still take effect if the quorum returns)"
            ))),
        }
    }

    /// Whether this node is the Raft leader as far as it knows (a deposed leader may believe
    /// so briefly: what must happen once is decided by a compare-and-set in the log, never by
    /// this alone).
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.raft_id)
    }

    /// The current leader's Raft id and tcp address, as this node knows it.
    fn leader(&self) -> Option<(u64, String)> {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    /// Runs `local` if this node leads, else sends `req` as `action` to the leader; waits for a
    /// leader and follows leadership changes until `deadline`.
    async fn on_leader_until<Q, R, F, Fut>(
        &self,
        action: &str,
        req: &Q,
        deadline: Instant,
        local: F,
    ) -> Result<R, MetaError>
    where
        Q: Serialize + Sync,
        R: DeserializeOwned,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<R, MetaError>>,
    {
        let budget = deadline.saturating_duration_since(Instant::now());
        let mut last_error = String::from("no meta leader is known");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.leader() {
                Some((id, _)) if id == self.raft_id => match local().await {
                    Err(MetaError::NotLeader) => last_error = "leadership moved".into(),
                    other => return other,
                },
                Some((id, addr)) => {
                    match self
                        .rpc
                        .call::<Q, Remote<R>>(
                            &addr,
                            action,
                            req,
                            left.max(Duration::from_millis(100)),
                        )
                        .await
                    {
                        Ok(Ok(r)) => return Ok(r),
                        Ok(Err(RemoteError::NotLeader)) => {
                            last_error = format!("meta node {id} is no longer the leader")
                        }
                        Ok(Err(e)) => return Err(e.into()),
                        // Never delivered: the leader is gone; wait for the next one.
                        Err(e @ RpcError::Unreachable { .. }) => last_error = e.to_string(),
                        // Maybe delivered, so not sent again.
                        Err(e @ RpcError::Timeout { .. }) => {
                            return Err(MetaError::Unavailable(format!(
                                "no quorum: the meta leader did not answer in time ({e}); the change may still take effect"
                            )));
                        }
                        Err(e) => return Err(MetaError::Unavailable(e.to_string())),
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(MetaError::Unavailable(format!(
                    "no quorum: no meta leader answered within {budget:.0?} ({last_error})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn create_database(
        &self,
        name: &str,
        rp: Option<RetentionPolicySpec>,
    ) -> Result<(), MetaError> {
        self.execute(Command::CreateDatabase {
            name: name.to_string(),
            rp,
        })
        .await
        .map(|_| ())
    }

    pub async fn drop_database(&self, name: &str) -> Result<(), MetaError> {
        self.execute(Command::DropDatabase {
            name: name.to_string(),
        })
        .await
        .map(|_| ())
    }

    /// The shard group of `db`.`rp` that covers `t`, created if there is none yet.
    pub async fn shard_group_for(
        &self,
        db: &str,
        rp: &str,
        t: Nanos,
    ) -> Result<ShardGroupInfo, MetaError> {
        {
            let state = self.catalog();
            let dbi = state
                .database(db)
                .ok_or_else(|| CatalogError::DatabaseNotFound(db.to_string()))?;
            let rpi = dbi
                .rp(rp)
                .ok_or_else(|| CatalogError::RetentionPolicyNotFound(rp.to_string()))?;
            if let Some(g) = rpi.shard_group_for(t) {
                return Ok(g.clone());
            }
        }
        match self
            .execute(Command::CreateShardGroup {
                database: db.to_string(),
                rp: rp.to_string(),
                timestamp: t,
            })
            .await?
        {
            Outcome::ShardGroup(g) => Ok(g),
            other => Err(MetaError::Raft(format!(
                "unexpected outcome {other:?} for CreateShardGroup"
            ))),
        }
    }

    /// Raft metrics of this member (leader, term, applied index, membership).
    pub fn metrics(&self) -> openraft::RaftMetrics<u64, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

/// Asks the listed members, in order, to register this node; the first that answers (itself or
/// through its leader) gives the node its ids.
async fn join_cluster(opts: &MetaOptions, known: &NodeIdentity) -> Result<JoinReply, MetaError> {
    let request = JoinRequest {
        meta_id: known.meta_id,
        data_id: known.data_id,
        tcp_addr: opts.tcp_addr.clone(),
        meta_http_addr: opts.meta_http_addr.clone(),
        data_http_addr: opts.data_http_addr.clone(),
    };
    let deadline = Instant::now() + opts.startup_timeout;
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(opts.commit_timeout * 2);
    if let Some(tls) = &opts.tls {
        builder = tls.reqwest(builder).map_err(MetaError::Join)?;
    }
    let client = builder
        .build()
        .map_err(|e| MetaError::Join(e.to_string()))?;
    let scheme = crate::rpc::ClientTls::scheme(opts.tls.as_ref());
    let mut failures = Vec::new();
    loop {
        for addr in &opts.join {
            let url = format!("{scheme}://{addr}/join");
            let mut post = client.post(&url).json(&request);
            if let Some(c) = &opts.internal {
                post = post.header(crate::rpc::INTERNAL_AUTH_HEADER, c.as_str());
            }
            let answer = match post.send().await {
                Ok(resp) => resp.json::<Remote<JoinReply>>().await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(Ok(reply)) => {
                    tracing::info!(via = %addr, ?reply, "registered with the cluster");
                    return Ok(reply);
                }
                Ok(Err(e @ (RemoteError::Catalog(_) | RemoteError::Refused(_)))) => {
                    return Err(MetaError::Join(format!(
                        "{addr} refused: {}",
                        MetaError::from(e)
                    )));
                }
                Ok(Err(e)) => {
                    let e = MetaError::from(e);
                    tracing::warn!(%addr, error = %e, "cannot join through this member; trying the next");
                    failures.push(format!("{addr}: {e}"));
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot join through this member; trying the next");
                    failures.push(format!("{addr}: {e}"));
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(MetaError::Join(format!(
                "no member answered within {:?}: {}",
                opts.startup_timeout,
                failures.join("; ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        failures.clear();
    }
}
