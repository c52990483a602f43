//! The data nodes of the cluster as the anti-entropy service reaches them
//! ([`replicas::Nodes`]): this node through its executor and ingester, the others over Flight
//! (`DoGet` scans, `data.digest`, `data.write`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use catalog::MetaService;
use catalog::rpc::action;
use coordinator::peer::PeerWriter;
use ingester::Ingester;
use ingester::wal::WalEntry;
use querier::Executor;
use querier::shard_source::{Peers, ShardSource};
use replicas::digest::DigestCache;
use replicas::{Nodes, RepairError, ShardDigest};

use crate::remote_shards::{FlightPeerShards, ShardsRequest};

#[derive(Debug)]
pub struct ClusterNodes {
    pub meta: Arc<MetaService>,
    pub ingester: Option<Arc<Ingester>>,
    pub executor: Executor,
    pub peers: Arc<FlightPeerShards>,
    pub writer: Arc<dyn PeerWriter>,
    /// How long a digest may take (it reads the whole shard).
    pub timeout: Duration,
    /// This node's digests, kept with the files they were read from.
    pub digests: DigestCache,
}

impl ClusterNodes {
    /// This node's digest of `shard` (with when it last wrote to it), read from its files
    /// unless they are unchanged since the last time.
    pub async fn local_digest(
        &self,
        database: &str,
        shard: u64,
    ) -> Result<ShardDigest, querier::ExecError> {
        let cache = self.ingester.as_deref().map(|i| (i, &self.digests));
        let mut d = replicas::digest::of_cached(&self.executor, cache, database, shard).await?;
        d.last_write = self.ingester.as_ref().and_then(|i| i.last_write(shard));
        Ok(d)
    }

    fn node_error(node: u64, e: impl std::fmt::Display) -> RepairError {
        RepairError::Node {
            node,
            message: e.to_string(),
        }
    }
}

#[async_trait]
impl Nodes for ClusterNodes {
    fn here(&self) -> Option<u64> {
        self.ingester.as_ref().map(|i| i.node_id())
    }

    fn source(&self, node: u64) -> Option<Arc<dyn ShardSource>> {
        if self.here() == Some(node) {
            return Some(Arc::new(self.executor.clone()));
        }
        self.peers.source(node)
    }

    async fn digest(
        &self,
        node: u64,
        database: &str,
        shard: u64,
    ) -> Result<ShardDigest, RepairError> {
        if self.here() == Some(node) {
            return Ok(self.local_digest(database, shard).await?);
        }
        let addr = self
            .meta
            .catalog()
            .data_node_tcp_addr(node)
            .ok_or_else(|| Self::node_error(node, "not a data node of the catalog"))?;
        let req = ShardsRequest {
            database: database.to_string(),
            shards: vec![shard],
            measurement: String::new(),
        };
        self.peers
            .rpc()
            .call(&addr, action::DATA_DIGEST, &req, self.timeout)
            .await
            .map_err(|e| Self::node_error(node, e))
    }

    async fn write(&self, node: u64, entry: Bytes) -> Result<(), RepairError> {
        if self.here() == Some(node) {
            let ing = self
                .ingester
                .as_ref()
                .ok_or_else(|| Self::node_error(node, "no data role"))?;
            let e = WalEntry::decode(&entry).map_err(|e| Self::node_error(node, e))?;
            let shards = e
                .shards
                .into_iter()
                .map(|s| (s.shard_id, s.points))
                .collect();
            ing.write_shards(&e.database, &e.rp, shards)
                .await
                .map_err(|e| Self::node_error(node, e))?;
            return Ok(());
        }
        self.writer
            .write(node, self.meta.data_index(), entry)
            .await
            .map(|_| ())
            .map_err(|e| Self::node_error(node, e))
    }
}
