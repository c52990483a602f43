//! Other data nodes' shards over Arrow Flight: the querier's [`ShardSource`] of a peer, and the
//! wire format of its calls, which the internal Flight service (`crate::flight`) serves.
//!
//! ```text
//!  node A: ShardTable scan ─▶ FlightShardSource::scan(ScanRequest)
//!            ─ DoGet(ticket) on node B's [meta] bind-address ─▶
//!  node B: InternalFlight::do_get ─▶ decode_ticket ─▶ Executor::scan (its own shards only)
//!            ◀─ FlightData (record batches of the request's columns) ─
//!  schemas and measurements: DoAction data.schema / data.measurements (JSON)
//! ```
//!
//! A scan ticket is binary: `"FSCAN1"`, then length-prefixed (u32 LE) parts: a JSON header
//! (database, measurement, shards, time range), the Arrow IPC stream of the wanted schema, and
//! each filter as a `datafusion-proto` expression (decoded against the serving node's session,
//! which has the same functions).

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
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_proto::bytes::Serializeable;
use futures::TryStreamExt;
use ingester::TableSchema;
use querier::ExecError;
use querier::select::TimeRange;
use querier::shard_source::{Peers, ScanRequest, ShardSource};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"FSCAN1";

/// The JSON part of a scan ticket.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    database: String,
    measurement: String,
    shards: Vec<u64>,
    min: i64,
    max: i64,
}

/// The body of `data.measurements` and `data.schema`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardsRequest {
    pub database: String,
    pub shards: Vec<u64>,
    /// For `data.schema`.
    #[serde(default)]
    pub measurement: String,
}

fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u32).to_le_bytes());
    out.extend_from_slice(part);
}

fn take_part<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], String> {
    if buf.len() < 4 {
        return Err("scan ticket cut short".into());
    }
    let n = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if buf.len() - 4 < n {
        return Err("scan ticket cut short".into());
    }
    let part = &buf[4..4 + n];
    *buf = &buf[4 + n..];
    Ok(part)
}

fn schema_ipc(schema: &Schema) -> Result<Vec<u8>, String> {
    let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema)
        .map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    w.into_inner().map_err(|e| e.to_string())
}

fn schema_of_ipc(bytes: &[u8]) -> Result<SchemaRef, String> {
    let r =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| e.to_string())?;
    Ok(r.schema())
}

/// A scan request as a Flight ticket.
pub fn encode_ticket(r: &ScanRequest) -> Result<Bytes, String> {
    let header = Header {
        database: r.database.clone(),
        measurement: r.measurement.clone(),
        shards: r.shards.clone(),
        min: r.range.min,
        max: r.range.max,
    };
    let mut out = MAGIC.to_vec();
    put_part(
        &mut out,
        &serde_json::to_vec(&header).map_err(|e| e.to_string())?,
    );
    put_part(&mut out, &schema_ipc(&r.schema)?);
    out.extend_from_slice(&(r.filters.len() as u32).to_le_bytes());
    for f in &r.filters {
        put_part(&mut out, &f.to_bytes().map_err(|e| e.to_string())?);
    }
    Ok(out.into())
}

/// A Flight ticket as a scan request, its filters' functions resolved in `ctx`.
pub fn decode_ticket(ticket: &[u8], ctx: &TaskContext) -> Result<ScanRequest, String> {
    let mut buf = ticket
        .strip_prefix(MAGIC)
        .ok_or("not a scan ticket of this version")?;
    let header: Header = serde_json::from_slice(take_part(&mut buf)?).map_err(|e| e.to_string())?;
    let schema = schema_of_ipc(take_part(&mut buf)?)?;
    if buf.len() < 4 {
        return Err("scan ticket cut short".into());
    }
    let n = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    buf = &buf[4..];
    let mut filters = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let part = take_part(&mut buf)?;
        filters.push(Expr::from_bytes_with_ctx(part, ctx).map_err(|e| e.to_string())?);
    }
    Ok(ScanRequest {
        database: header.database,
        measurement: header.measurement,
        shards: header.shards,
        range: TimeRange {
            min: header.min,
            max: header.max,
        },
        schema,
        filters,
    })
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
        let ticket = encode_ticket(&request).map_err(|e| self.remote(e))?;
        let mut client = self.rpc.client(&self.addr).map_err(|e| self.remote(e))?;
        let call = client.do_get(Ticket { ticket });
        let response = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| self.remote(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| self.remote(e.message()))?;
        let node = self.node;
        let batches = FlightRecordBatchStream::new_from_flight_data(
            response
                .into_inner()
                .map_err(|s| FlightError::Tonic(Box::new(s))),
        )
        .map_err(move |e| {
            datafusion::error::DataFusionError::External(Box::new(ExecError::Remote {
                node,
                message: e.to_string(),
            }))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            request.schema,
            batches,
        )))
    }
}

/// The data nodes of the catalog, each read over Flight at its `tcp_addr`.
#[derive(Debug)]
pub struct FlightPeerShards {
    meta: Arc<MetaService>,
    rpc: Arc<RpcClient>,
    /// How long a call may take to start answering.
    timeout: Duration,
}

impl FlightPeerShards {
    /// Calls through `rpc`'s channels; a call must start answering within `timeout`.
    pub fn new(meta: Arc<MetaService>, rpc: Arc<RpcClient>, timeout: Duration) -> Self {
        Self { meta, rpc, timeout }
    }

    /// The RPC client its calls go through.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }
}

impl Peers for FlightPeerShards {
    fn source(&self, node: u64) -> Option<Arc<dyn ShardSource>> {
        let addr = self.meta.catalog().data_node_tcp_addr(node)?;
        Some(Arc::new(FlightShardSource {
            node,
            addr,
            rpc: Arc::clone(&self.rpc),
            timeout: self.timeout,
        }))
    }
}
