//! The meta service: the application API over the Raft group.
//!
//! Changes go through [`MetaService::execute`] (a Raft proposal, committed before it returns);
//! reads come from the locally applied catalog ([`MetaService::catalog`]) and never wait on
//! Raft, so the write and query paths keep working on the catalog they have.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{ClientWriteError, RaftError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{CatalogError, MetaError};
use crate::model::{CatalogState, Command, Nanos, Outcome, RetentionPolicySpec, ShardGroupInfo};
use crate::raft::log_store::LogStore;
use crate::raft::network::Network;
use crate::raft::state_machine::{AppliedCatalog, StateMachine};
use crate::raft::types::Raft;

/// How to open the meta service.
#[derive(Debug, Clone)]
pub struct MetaOptions {
    /// `[meta] dir`: the Raft log, snapshots, applied state and the node's identity.
    pub dir: PathBuf,
    /// Advertised Raft / RPC address (`[meta] bind-address`).
    pub tcp_addr: String,
    /// Advertised meta HTTP address (`[meta] http-bind-address`).
    pub meta_http_addr: String,
    /// Advertised client HTTP address when this node is also a data node.
    pub data_http_addr: Option<String>,
    /// How long to wait for this node to lead its single-node group at start.
    pub startup_timeout: Duration,
}

impl MetaOptions {
    /// A meta node (also a data node) on the default loopback addresses, keeping its state in
    /// `dir`: what tests and embedders want.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            tcp_addr: "127.0.0.1:8088".into(),
            meta_http_addr: "127.0.0.1:8091".into(),
            data_http_addr: Some("127.0.0.1:8086".into()),
            startup_timeout: Duration::from_secs(20),
        }
    }
}

/// The node's identity, persisted so that ids are stable across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    pub meta_id: u64,
    pub data_id: Option<u64>,
}

impl NodeIdentity {
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
        std::fs::rename(&tmp, &path).map_err(err)
    }
}

pub struct MetaService {
    raft: Raft,
    catalog: watch::Receiver<AppliedCatalog>,
    identity: NodeIdentity,
}

impl std::fmt::Debug for MetaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaService")
            .field("identity", &self.identity)
            .finish()
    }
}

impl MetaService {
    /// Opens (or creates) the catalog under `opts.dir` and starts this node's Raft member. A
    /// new node forms a single-member group and registers itself.
    pub async fn open(opts: MetaOptions) -> Result<Arc<Self>, MetaError> {
        let dir = &opts.dir;
        std::fs::create_dir_all(dir).map_err(|source| MetaError::NodeId {
            path: dir.display().to_string(),
            source,
        })?;
        let db_path = dir.join("meta.redb");
        let storage_err = |source: redb::Error| MetaError::Storage {
            path: db_path.display().to_string(),
            source,
        };
        let db = Arc::new(redb::Database::create(&db_path).map_err(|e| storage_err(e.into()))?);
        let log_store = LogStore::new(db.clone()).map_err(|e| MetaError::Raft(e.to_string()))?;
        let (state_machine, catalog) =
            StateMachine::open(db).map_err(|e| MetaError::Raft(e.to_string()))?;

        let identity = NodeIdentity::load(dir)?.unwrap_or(NodeIdentity {
            meta_id: 1,
            data_id: None,
        });
        identity.save(dir)?;

        let config = openraft::Config {
            cluster_name: "fletch".into(),
            heartbeat_interval: 250,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            ..Default::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| MetaError::Raft(e.to_string()))?,
        );
        let raft = Raft::new(identity.meta_id, config, Network, log_store, state_machine)
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?;

        if !raft
            .is_initialized()
            .await
            .map_err(|e| MetaError::Raft(e.to_string()))?
        {
            let mut members = BTreeMap::new();
            members.insert(
                identity.meta_id,
                BasicNode {
                    addr: opts.tcp_addr.clone(),
                },
            );
            raft.initialize(members)
                .await
                .map_err(|e| MetaError::Raft(e.to_string()))?;
        }
        raft.wait(Some(opts.startup_timeout))
            .current_leader(identity.meta_id, "single meta node leads")
            .await
            .map_err(|e| {
                MetaError::Unavailable(format!("no leader after {:?}: {e}", opts.startup_timeout))
            })?;

        let mut svc = Self {
            raft,
            catalog,
            identity,
        };
        svc.register(&opts).await?;
        svc.identity.save(dir)?;
        Ok(Arc::new(svc))
    }

    /// Makes sure the catalog lists this node with its current addresses.
    async fn register(&mut self, opts: &MetaOptions) -> Result<(), MetaError> {
        let state = self.catalog();
        let id = self.identity.meta_id;
        let want = (opts.meta_http_addr.as_str(), opts.tcp_addr.as_str());
        if state
            .meta_nodes
            .get(&id)
            .map(|n| (n.http_addr.as_str(), n.tcp_addr.as_str()))
            != Some(want)
        {
            self.execute(Command::RegisterMetaNode {
                id,
                http_addr: opts.meta_http_addr.clone(),
                tcp_addr: opts.tcp_addr.clone(),
            })
            .await?;
        }
        if let Some(http) = &opts.data_http_addr {
            let known = self.identity.data_id.and_then(|d| state.data_nodes.get(&d));
            if known.map(|n| (n.http_addr.as_str(), n.tcp_addr.as_str()))
                != Some((http.as_str(), want.1))
            {
                let out = self
                    .execute(Command::RegisterDataNode {
                        id: self.identity.data_id,
                        http_addr: http.clone(),
                        tcp_addr: opts.tcp_addr.clone(),
                    })
                    .await?;
                if let Outcome::NodeId(d) = out {
                    self.identity.data_id = Some(d);
                }
            }
        }
        Ok(())
    }

    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// The catalog as applied on this node.
    pub fn catalog(&self) -> Arc<CatalogState> {
        self.catalog.borrow().state.clone()
    }

    /// Follows the applied catalog (and its Raft index) as it changes.
    pub fn watch(&self) -> watch::Receiver<AppliedCatalog> {
        self.catalog.clone()
    }

    /// Proposes a change and waits until it is committed and applied.
    pub async fn execute(&self, cmd: Command) -> Result<Outcome, MetaError> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => Ok(resp.data.0?),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(MetaError::Unavailable(format!(
                    "this node is not the meta leader (leader: {:?})",
                    f.leader_id
                )))
            }
            Err(e) => Err(MetaError::Unavailable(e.to_string())),
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
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}
