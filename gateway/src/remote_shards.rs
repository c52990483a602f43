//! Other data nodes' shards over Arrow Flight: the querier's [`ShardSource`] of a peer, and the
//! wire format of its calls, which the internal Flight service (`crate::flight`) serves.
//!
//! ```text
//!  node A: ShardTable scan ─▶ FlightShardSource::scan(ScanRequest)
//!            ─ DoGet(ticket) on node B's [meta] bind-address ─▶
//!  node B: InternalFlight::do_get ─▶ decode_ticket ─▶ Executor::scan (its own shards only)
//!                                                    or Executor::fragment (a plan over them)
//!            ◀─ FlightData (record batches of the request's columns) ─
//!  schemas and measurements: DoAction data.schema / data.measurements (JSON)
//! ```
//!
//! A scan ticket is binary: `"FSCAN2"`, the sender's catalog index (u64 LE), then the request as [`ScanRequest::encode`] writes it
//! (a JSON header, the wanted schema as Arrow IPC, each filter as a `datafusion-proto`
//! expression, decoded against the serving node's session, which has the same functions). A
//! fragment ticket is a [`Fragment`] as `querier::fragment` encodes it: a partial aggregate,
//! say, which the owner runs over its own scans and answers with the aggregate's states.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::Ticket;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use async_trait::async_trait;
use bytes::Bytes;
use catalog::MetaService;
use catalog::rpc::{RpcClient, action};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::TryStreamExt;
use ingester::TableSchema;
use querier::ExecError;
use querier::fragment::{Fragment, Received};
use querier::shard_source::{Peers, ScanRequest, ShardSource};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"FSCAN2";

/// The body of `data.measurements` and `data.schema`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardsRequest {
    pub database: String,
    pub shards: Vec<u64>,
    /// For `data.schema`.
    #[serde(default)]
    pub measurement: String,
}

/// A scan request as a Flight ticket, sent with the sender's catalog index.
pub fn encode_ticket(r: &ScanRequest, catalog_index: u64) -> Result<Bytes, String> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&catalog_index.to_le_bytes());
    out.extend_from_slice(&r.encode()?);
    Ok(out.into())
}

/// What a Flight ticket asks for: rows of a scan, or the output of a plan fragment.
pub enum Ask {
    /// A scan, with the sender's catalog index.
    Scan(u64, ScanRequest),
    Fragment(Received),
}

/// A Flight ticket as what it asks for, its functions resolved in `ctx`.
pub fn decode_ticket(ticket: &[u8], ctx: &TaskContext) -> Result<Ask, String> {
    if Fragment::is_fragment(ticket) {
        return Fragment::decode(ticket, ctx)
            .map(Ask::Fragment)
            .map_err(|e| e.to_string());
    }
    let buf = ticket
        .strip_prefix(MAGIC)
        .ok_or("not a scan ticket of this version")?;
    if buf.len() < 8 {
        return Err("scan ticket cut short".into());
    }
    let (index, rest) = buf.split_at(8);
    let index = u64::from_le_bytes(index.try_into().map_err(|_| "scan ticket cut short")?);
    ScanRequest::decode(rest, ctx).map(|r| Ask::Scan(index, r))
}

/// The answer of a scan as Flight data (dictionaries kept as dictionaries).
pub fn encode_stream(
    stream: SendableRecordBatchStream,
) -> impl futures::Stream<Item = Result<arrow_flight::FlightData, FlightError>> + Send {
    FlightDataEncoderBuilder::new()
        .with_dictionary_handling(DictionaryHandling::Resend)
        .build(stream.map_err(|e| FlightError::ExternalError(Box::new(e))))
}

/// One data node's shards, read over Flight.
#[derive(Debug)]
pub struct FlightShardSource {
    node: u64,
    /// Bounds this node's reads running on that node at once (`None`: no bound).
    reads: Option<Arc<tokio::sync::Semaphore>>,
    /// Its data index (`MetaService::data_index`) goes with each ticket: the owner catches up
    /// to it first.
    meta: Arc<MetaService>,
    addr: String,
    rpc: Arc<RpcClient>,
    timeout: Duration,
}

impl FlightShardSource {
    /// Calls `kind` (a JSON [`ShardsRequest`]) on the node.
    async fn ask<R: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        database: &str,
        shards: &[u64],
        measurement: &str,
    ) -> Result<R, ExecError> {
        let req = ShardsRequest {
            database: database.to_string(),
            shards: shards.to_vec(),
            measurement: measurement.to_string(),
        };
        self.rpc
            .call(&self.addr, kind, &req, self.timeout)
            .await
            .map_err(|e| self.remote(e))
    }

    fn remote(&self, e: impl std::fmt::Display) -> ExecError {
        ExecError::Remote {
            node: self.node,
            message: e.to_string(),
        }
    }
}

#[async_trait]
impl ShardSource for FlightShardSource {
    fn node_id(&self) -> u64 {
        self.node
    }

    async fn measurements(
        &self,
        database: &str,
        shards: &[u64],
    ) -> Result<BTreeSet<String>, ExecError> {
        self.ask(action::DATA_MEASUREMENTS, database, shards, "")
            .await
    }

    async fn schema(
        &self,
        database: &str,
        shards: &[u64],
        m: &str,
    ) -> Result<Option<TableSchema>, ExecError> {
        self.ask(action::DATA_SCHEMA, database, shards, m).await
    }

    async fn scan(&self, request: ScanRequest) -> Result<SendableRecordBatchStream, ExecError> {
        let ticket = encode_ticket(&request, self.meta.data_index()).map_err(|e| self.remote(e))?;
        self.get(ticket, request.schema, None).await
    }

    async fn fragment(&self, fragment: Fragment) -> Result<SendableRecordBatchStream, ExecError> {
        let ticket = fragment
            .encode(self.meta.data_index())
            .map_err(|e| self.remote(e))?;
        self.get(ticket, fragment.plan.schema(), Some(fragment.report))
            .await
    }
}

impl FlightShardSource {
    /// `DoGet` of `ticket`: its answer, batches of `schema`, as they come; a last message of
    /// metadata alone (how a fragment ran) goes to `report`.
    async fn get(
        &self,
        ticket: Bytes,
        schema: SchemaRef,
        report: Option<querier::fragment::Report>,
    ) -> Result<SendableRecordBatchStream, ExecError> {
        // Held until the owner has started answering: a bound on the reads being set up there
        // at once. (Not until the answer has been read: one query may need several answers of
        // one node at a time, and would wait on itself.)
        let permit = match &self.reads {
            Some(s) => Some(
                Arc::clone(s)
                    .acquire_owned()
                    .await
                    .map_err(|e| self.remote(e))?,
            ),
            None => None,
        };
        let mut client = self.rpc.client(&self.addr).map_err(|e| self.remote(e))?;
        let call = client.do_get(Ticket { ticket });
        let response = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| self.remote(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| self.remote(e.message()))?;
        drop(permit);
        let node = self.node;
        // A message with only metadata (no IPC header) is how a fragment ran: taken out
        // before the IPC decoder sees it.
        let data = response.into_inner().try_filter(move |d| {
            let report_only = d.data_header.is_empty() && !d.app_metadata.is_empty();
            if report_only && let Some(r) = &report {
                r.set(String::from_utf8_lossy(&d.app_metadata).into_owned());
            }
            futures::future::ready(!report_only)
        });
        let batches = FlightRecordBatchStream::new_from_flight_data(
            data.map_err(|s| FlightError::Tonic(Box::new(s))),
        )
        .map_err(move |e| {
            datafusion::error::DataFusionError::External(Box::new(ExecError::Remote {
                node,
                message: e.to_string(),
            }))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// The data nodes of the catalog, each read over Flight at its `tcp_addr`.
#[derive(Debug)]
pub struct FlightPeerShards {
    meta: Arc<MetaService>,
    /// Per data node: how many reads may run there at once (`[coordinator]
    /// max-remote-reads-per-node`; 0 = no bound).
    reads_per_node: usize,
    reads: std::sync::Mutex<std::collections::HashMap<u64, Arc<tokio::sync::Semaphore>>>,
    rpc: Arc<RpcClient>,
    /// How long a call may take to start answering.
    timeout: Duration,
}

impl FlightPeerShards {
    /// Calls through `rpc`'s channels; a call must start answering within `timeout`.
    pub fn new(meta: Arc<MetaService>, rpc: Arc<RpcClient>, timeout: Duration) -> Self {
        Self {
            meta,
            reads_per_node: 0,
            reads: Default::default(),
            rpc,
            timeout,
        }
    }

    /// At most `n` reads running on any one data node at once (0: no bound).
    pub fn with_reads_per_node(mut self, n: usize) -> Self {
        self.reads_per_node = n;
        self
    }

    /// The RPC client its calls go through.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }
}

impl Peers for FlightPeerShards {
    fn source(&self, node: u64) -> Option<Arc<dyn ShardSource>> {
        let addr = self.meta.catalog().data_node_tcp_addr(node)?;
        let reads = (self.reads_per_node > 0).then(|| {
            let mut all = self.reads.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                all.entry(node)
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.reads_per_node))),
            )
        });
        Some(Arc::new(FlightShardSource {
            node,
            reads,
            meta: Arc::clone(&self.meta),
            addr,
            rpc: Arc::clone(&self.rpc),
            timeout: self.timeout,
        }))
    }
}
