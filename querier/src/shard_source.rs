//! Where a query's shards are read: the [`ShardSource`] seam.
//!
//! A statement reads "measurement M of shards S, these columns, this predicate". That is one
//! [`ScanRequest`], and [`ShardSource`] is what answers it: the measurements the shards hold,
//! M's schema in them, and M's rows as a stream of Arrow record batches with the request's
//! columns, the predicate applied as far as the source can (the querier applies it again).
//!
//! ```text
//!  catalog: shards of db.rp overlapping the range ─▶ ShardSet::resolve
//!     ├─ owned here ─────────────▶ LocalShards: snapshots (files, tombstones, buffers)
//!     │                               ─▶ crate::scan: Parquet scans with series indexes,
//!     │                                  kept plans, windows of time
//!     ├─ owned by peers ─────────▶ Peers::source(owner) for each owner: ShardSources asked in
//!     │                               order until one answers
//!     │                               ─▶ ShardTable (a DataFusion table): ScanRequest with
//!     │                                  the columns and filters DataFusion pushes into it
//!     └─ neither ────────────────▶ ExecError::ShardNotLocal { shard, owners }
//! ```
//!
//! Every [`crate::Executor`] is itself a [`ShardSource`] for the shards its node owns: a scan
//! request runs as a local scan (the left branch above) with the request's columns and
//! filters on top. A peer's source in another process (over Arrow Flight) is the
//! distributed-query work; [`Peers`] is where it plugs in. No shard is skipped silently: a shard
//! that neither this node nor a known peer reads fails the statement, naming the shard and its
//! owners, instead of answering as if it were empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use catalog::DatabaseInfo;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::Serializeable;
use ingester::{Ingester, TableSchema, TableSnapshot};
use serde::{Deserialize, Serialize};

use crate::executor::ExecError;
use crate::fragment::{Fragment, RemoteScanExec, put_part, take_part};
use crate::select::TimeRange;

/// What a statement reads of one measurement in some shards of one database.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub database: String,
    pub measurement: String,
    pub shards: Vec<u64>,
    /// Rows outside it may be left out (the querier filters on time again).
    pub range: TimeRange,
    /// The columns wanted, in this order and with these types (tags as dictionaries): a column
    /// the shards lack comes as nulls.
    pub schema: SchemaRef,
    /// Conditions on the measurement's columns; a source applies those it can (all their
    /// columns known to it) and may leave out the rest, which the querier applies again.
    pub filters: Vec<Expr>,
    /// Only each series' last values are wanted (and `filters` keep or drop whole series):
    /// the source may leave out rows before every series' last ones.
    pub last_values: bool,
}

/// The JSON part of an encoded [`ScanRequest`].
#[derive(Debug, Serialize, Deserialize)]
struct ScanHeader {
    database: String,
    measurement: String,
    shards: Vec<u64>,
    min: i64,
    max: i64,
    #[serde(default)]
    last_values: bool,
}

impl ScanRequest {
    /// The request as bytes: length-prefixed (u32 LE) parts, a JSON header (database,
    /// measurement, shards, time range), the Arrow IPC stream of the wanted schema, then the
    /// number of filters (u32 LE) and each as a `datafusion-proto` expression.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let header = ScanHeader {
            database: self.database.clone(),
            measurement: self.measurement.clone(),
            shards: self.shards.clone(),
            min: self.range.min,
            max: self.range.max,
            last_values: self.last_values,
        };
        let mut out = Vec::new();
        put_part(
            &mut out,
            &serde_json::to_vec(&header).map_err(|e| e.to_string())?,
        );
        put_part(&mut out, &schema_ipc(&self.schema)?);
        out.extend_from_slice(&(self.filters.len() as u32).to_le_bytes());
        for f in &self.filters {
            put_part(&mut out, &f.to_bytes().map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    /// A request [`Self::encode`] wrote, its filters' functions resolved in `ctx`.
    pub fn decode(mut buf: &[u8], ctx: &TaskContext) -> Result<Self, String> {
        let part = |buf: &mut &[u8]| {
            take_part(buf)
                .map(<[u8]>::to_vec)
                .map_err(|e| e.to_string())
        };
        let header: ScanHeader =
            serde_json::from_slice(&part(&mut buf)?).map_err(|e| e.to_string())?;
        let schema = schema_of_ipc(&part(&mut buf)?)?;
        if buf.len() < 4 {
            return Err("scan request cut short".into());
        }
        let n = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        buf = &buf[4..];
        let mut filters = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let bytes = part(&mut buf)?;
            filters.push(Expr::from_bytes_with_ctx(&bytes, ctx).map_err(|e| e.to_string())?);
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
            last_values: header.last_values,
        })
    }
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

/// Whose turn it is to be asked first among a remote shard's owners.
static NEXT_OWNER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The data of some shards, as queries read it (see the module's essay).
#[async_trait]
pub trait ShardSource: Send + Sync + std::fmt::Debug {
    /// The data node whose shards these are.
    fn node_id(&self) -> u64;

    /// The measurements with data (persisted or buffered) in any of `shards` of `database`.
    async fn measurements(
        &self,
        database: &str,
        shards: &[u64],
    ) -> Result<BTreeSet<String>, ExecError>;

    /// Measurement `m`'s schema merged over `shards`, if any of them has it.
    async fn schema(
        &self,
        database: &str,
        shards: &[u64],
        m: &str,
    ) -> Result<Option<TableSchema>, ExecError>;

    /// The rows `request` asks for, as a stream of batches of `request.schema`.
    async fn scan(&self, request: ScanRequest) -> Result<SendableRecordBatchStream, ExecError>;

    /// The output of `fragment` run on this source's node, over its own scans of the
    /// fragment's shards ([`crate::fragment`]).
    async fn fragment(&self, fragment: Fragment) -> Result<SendableRecordBatchStream, ExecError>;
}

/// The sources of other data nodes' shards, by node id.
pub trait Peers: Send + Sync + std::fmt::Debug {
    /// The source of node `node`'s shards, if it can be reached from here.
    fn source(&self, node: u64) -> Option<Arc<dyn ShardSource>>;
}

/// This node's own shards, read from its ingester directly: the snapshots (files pinned while
/// a query reads them, tombstones, buffered batches) that the local scan needs for its series
/// indexes, kept plans and windows.
#[derive(Debug, Clone)]
pub struct LocalShards(pub Arc<Ingester>);

impl LocalShards {
    pub fn node_id(&self) -> u64 {
        self.0.node_id()
    }

    /// The measurements with data (persisted or buffered) in any of `shards`.
    pub fn measurements(&self, shards: &[u64]) -> BTreeSet<String> {
        self.0.measurements(shards)
    }

    /// Measurement `m`'s schema merged over `shards`, if any of them has it.
    pub fn schema(&self, shards: &[u64], m: &str) -> Option<TableSchema> {
        let mut schema: Option<TableSchema> = None;
        for &shard in shards {
            if let Some(t) = self.0.table_schema(shard, m) {
                schema.get_or_insert_with(TableSchema::default).merge(&t);
            }
        }
        schema
    }

    /// What a query reads of measurement `m` in `shard`: its files (pinned until the snapshot
    /// is dropped), tombstones and buffered batches; `None` when the shard lacks `m`.
    pub fn snapshot(&self, shard: u64, m: &str) -> Result<Option<TableSnapshot>, ExecError> {
        Ok(self.0.table_snapshot(shard, m)?)
    }

    /// This node's storage engine, where the snapshots' files are read.
    pub fn ingester(&self) -> &Arc<Ingester> {
        &self.0
    }
}

/// Shards that peers read for a statement: shards with the same other owners, each of which
/// can read them all; they are asked in order until one answers.
#[derive(Debug, Clone)]
pub struct RemoteShards {
    pub sources: Vec<Arc<dyn ShardSource>>,
    pub shards: Vec<u64>,
    /// The shards' owners in the catalog (for errors: some may have no source).
    pub owners: Vec<u64>,
}

impl RemoteShards {
    /// The first answer of `ask` from these sources in order; when none answers, an error
    /// naming the shards, their owners and what each said.
    pub async fn first<'s, T, F, Fut>(&'s self, mut ask: F) -> Result<T, ExecError>
    where
        F: FnMut(&'s Arc<dyn ShardSource>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ExecError>>,
    {
        let mut errors = Vec::new();
        for source in &self.sources {
            match ask(source).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::debug!(node = source.node_id(), error = %e, "a peer did not answer; asking the next owner");
                    errors.push(attributed(source.node_id(), &e.to_string()));
                }
            }
        }
        Err(self.unanswered(errors))
    }

    /// The error of a read of these shards that no owner answered.
    pub fn unanswered(&self, errors: Vec<String>) -> ExecError {
        let mut owners = self.owners.clone();
        owners.sort_unstable();
        ExecError::NoOwnerAnswered {
            shards: self.shards.clone(),
            owners,
            errors: errors.join("; "),
        }
    }
}

/// `message` as said by data node `node` (once: a peer's errors name their node already).
pub(crate) fn attributed(node: u64, message: &str) -> String {
    let by = format!("data node {node}: ");
    if message.starts_with(&by) {
        message.to_string()
    } else {
        format!("{by}{message}")
    }
}

/// The shards a statement reads: this node's own, and the others grouped by the peer that
/// reads them.
pub struct ShardSet<'a> {
    pub local: Option<&'a LocalShards>,
    /// This node's shards.
    pub shards: Vec<u64>,
    pub remote: Vec<RemoteShards>,
}

impl<'a> ShardSet<'a> {
    /// The shards of `rp` (every policy when empty) whose groups overlap `range`: each read
    /// here when this node owns it, else by its owners that a peer source reaches, asked in
    /// turn (the first one rotates from statement to statement, spreading the load) until
    /// one answers; a shard neither reads fails with its owners.
    pub fn resolve(
        local: Option<&'a LocalShards>,
        peers: Option<&Arc<dyn Peers>>,
        dbi: &DatabaseInfo,
        rp: &str,
        range: TimeRange,
    ) -> Result<Self, ExecError> {
        let here = local.map(|s| s.node_id());
        let turn = NEXT_OWNER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut shards = Vec::new();
        // Shards owned elsewhere, grouped by their other owners (in the catalog's order).
        let mut remote: Vec<(Vec<u64>, RemoteShards)> = Vec::new();
        for shard in dbi
            .retention_policies
            .values()
            .filter(|p| rp.is_empty() || p.name == rp)
            .flat_map(|p| p.live_shard_groups())
            .filter(|g| g.overlaps(range.min, range.max))
            .flat_map(|g| g.shards.iter())
        {
            if here.is_some_and(|id| shard.owners.contains(&id)) {
                shards.push(shard.id);
                continue;
            }
            if let Some((_, r)) = remote.iter_mut().find(|(o, _)| *o == shard.owners) {
                r.shards.push(shard.id);
                continue;
            }
            let mut sources: Vec<Arc<dyn ShardSource>> = match peers {
                Some(p) => shard.owners.iter().filter_map(|&o| p.source(o)).collect(),
                None => Vec::new(),
            };
            // Statements take turns at which owner they ask first, spreading the reads.
            if !sources.is_empty() {
                let turn = turn % sources.len();
                sources.rotate_left(turn);
            }
            if sources.is_empty() {
                return Err(ExecError::ShardNotLocal {
                    shard: shard.id,
                    owners: shard.owners.clone(),
                });
            }
            remote.push((
                shard.owners.clone(),
                RemoteShards {
                    sources,
                    shards: vec![shard.id],
                    owners: shard.owners.clone(),
                },
            ));
        }
        let remote = remote.into_iter().map(|(_, r)| r).collect();
        Ok(Self {
            local,
            shards,
            remote,
        })
    }
}

/// A measurement in shards a peer reads, as a DataFusion table: a scan of it sends one
/// [`ScanRequest`] with the columns and filters DataFusion pushes down (filters as `Inexact`:
/// the plan applies them again), and streams the peer's batches, aligned to the columns asked
/// for.
#[derive(Debug)]
pub struct ShardTable {
    pub remote: RemoteShards,
    pub database: String,
    pub measurement: String,
    pub range: TimeRange,
    /// The measurement's columns over every shard the statement reads (tags as dictionaries).
    pub schema: SchemaRef,
    /// Only each series' last values are wanted ([`ScanRequest::last_values`]).
    pub last_values: bool,
}

#[async_trait]
impl TableProvider for ShardTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let request = ScanRequest {
            database: self.database.clone(),
            measurement: self.measurement.clone(),
            shards: self.remote.shards.clone(),
            range: self.range,
            schema: Arc::clone(&schema),
            filters: filters.to_vec(),
            last_values: self.last_values,
        };
        Ok(Arc::new(RemoteScanExec::new(self.remote.clone(), request)))
    }
}

/// The columns `e` names.
pub(crate) fn columns_of(e: &Expr) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let _ = e.apply(|x| {
        if let Expr::Column(c) = x {
            out.insert(c.name.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}
