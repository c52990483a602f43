//! The other nodes' running queries over the internal port (`query.list`, `query.kill`), for
//! `SHOW QUERIES` and `KILL QUERY <qid> ON "<host>"` across the cluster
//! ([`querier::queries::ClusterQueries`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use catalog::rpc::{RpcClient, RpcError, action};
use querier::queries::{ClusterQueries, RemoteQuery};

#[derive(Debug)]
pub struct RpcQueries {
    rpc: Arc<RpcClient>,
    /// How long one node may take to answer.
    timeout: Duration,
}

impl RpcQueries {
    pub fn new(rpc: Arc<RpcClient>, timeout: Duration) -> Self {
        Self { rpc, timeout }
    }
}

/// The remote node's own message when it refused (`no such query id: 7`), else the whole error.
fn text(e: RpcError) -> String {
    match e {
        RpcError::Status { source, .. } => source.message().to_string(),
        other => other.to_string(),
    }
}

#[async_trait]
impl ClusterQueries for RpcQueries {
    async fn list(&self, tcp_addr: &str) -> Result<Vec<RemoteQuery>, String> {
        self.rpc
            .call(tcp_addr, action::QUERY_LIST, &(), self.timeout)
            .await
            .map_err(text)
    }

    async fn kill(&self, tcp_addr: &str, id: u64) -> Result<(), String> {
        self.rpc
            .call::<_, ()>(tcp_addr, action::QUERY_KILL, &id, self.timeout)
            .await
            .map_err(text)
    }
}
