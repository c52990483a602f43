//! Plan fragments: the part of a query plan that runs on a shard's owner.
//!
//! A shard another node owns is read through a [`RemoteScanExec`] (what a
//! [`crate::shard_source::ShardTable`] plans into). Left alone, the owner sends every row the
//! scan selects. When an aggregate sits above such a scan, the [`DistributeAggregates`] rule
//! (the last physical optimizer rule of every Fletch session) splits it as DataFusion splits
//! an aggregate across partitions: a partial aggregate per branch of the union of shard
//! sources, and DataFusion's final aggregate over their states. The partial aggregate of a
//! remote branch, with the filters and projections between it and the scan, becomes a
//! [`FragmentExec`]: the owner runs it and sends back only the aggregate states.
//!
//! ```text
//!  before:  Aggregate(Single) ─ Union ─┬─ Filter ─ Parquet/memory scans (own shards)
//!                                      └─ Filter ─ RemoteScanExec (shards 5, 6 of node 3)
//!
//!  after:   Aggregate(Final) ─ Coalesce ─ Union ─┬─ Aggregate(Partial) ─ Filter ─ own scans
//!                                                └─ FragmentExec (node 3, failover to 4)
//!                                                     ╎ datafusion-proto + FragmentCodec
//!                                                     ▼ on the owner
//!                                         Aggregate(Partial) ─ Filter ─ the owner's scan
//! ```
//!
//! Every aggregate splits this way (DataFusion's accumulators and Fletch's all keep partial
//! states: `mean` as sum and count, selectors as value and time, `percentile`, `mode` and
//! `median` as their values); what needs the whole series (gap filling, transformations,
//! `top`/`bottom`, ordering, limits) stays above the final aggregate, on the querier.
//!
//! A fragment crosses the network as `"FFRAG"`, the format's version (u32 LE; a node refuses
//! a version it does not run), a JSON header (database, shards, the sender's catalog index,
//! which the owner waits for before it checks that it still owns the shards) and the plan as
//! `datafusion-proto` bytes; [`FragmentCodec`] adds the scan leaves and Fletch's own plan
//! pieces. An owner that does not answer, or fails before its first batch, is replaced by the
//! next; when none answers, the query fails naming the shards and their owners
//! ([`ExecError::NoOwnerAnswered`]): a partial answer is never presented as complete.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{AggregateUDF, WindowUDF};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::{InterleaveExec, UnionExec};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, displayable,
};
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::executor::ExecError;
use crate::plan::codec::FletchCodec;
use crate::shard_source::{RemoteShards, ScanRequest, ShardSource, attributed};

/// The version of the fragment format this build sends and runs.
pub const FRAGMENT_VERSION: u32 = 1;

const MAGIC: &[u8] = b"FFRAG";

/// A plan to run on the owner of `shards`: its leaves are [`RemoteScanExec`]s of them.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub database: String,
    pub shards: Vec<u64>,
    pub plan: Arc<dyn ExecutionPlan>,
    /// Once it has run: the plan as the owner ran it, with its metrics (shared by clones).
    pub report: Report,
}

/// How a fragment ran on its owner: its plan with metrics, one line per node.
#[derive(Debug, Clone, Default)]
pub struct Report(Arc<Mutex<Option<String>>>);

impl Report {
    pub fn set(&self, text: String) {
        if let Ok(mut r) = self.0.lock() {
            *r = Some(text);
        }
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|r| r.clone())
    }

    /// `stream`, which reports `plan` with its metrics here once it has ended.
    pub fn when_done(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        stream: SendableRecordBatchStream,
    ) -> SendableRecordBatchStream {
        let report = self.clone();
        let schema = stream.schema();
        let done = futures::stream::once(async move {
            report.set(
                datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
                    plan.as_ref(),
                )
                .indent(false)
                .to_string()
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" <- "),
            );
            None
        })
        .filter_map(futures::future::ready);
        Box::pin(RecordBatchStreamAdapter::new(schema, stream.chain(done)))
    }
}

impl Fragment {
    pub fn new(database: String, shards: Vec<u64>, plan: Arc<dyn ExecutionPlan>) -> Self {
        Self {
            database,
            shards,
            plan,
            report: Report::default(),
        }
    }
}

/// The JSON part of an encoded fragment.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    database: String,
    shards: Vec<u64>,
    /// The sender's catalog (Raft) index when it sent the fragment.
    catalog_index: u64,
}

/// A fragment read off the wire, with the catalog index its owner must have applied first.
#[derive(Debug)]
pub struct Received {
    pub fragment: Fragment,
    pub catalog_index: u64,
}

fn wire(msg: impl fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("plan fragment: {msg}"))
}

impl Fragment {
    /// The fragment as bytes, sent with the sender's `catalog_index`.
    pub fn encode(&self, catalog_index: u64) -> Result<Bytes> {
        let header = Header {
            database: self.database.clone(),
            shards: self.shards.clone(),
            catalog_index,
        };
        let plan = datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(
            Arc::clone(&self.plan),
            &FragmentCodec,
        )?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FRAGMENT_VERSION.to_le_bytes());
        put_part(&mut out, &serde_json::to_vec(&header).map_err(wire)?);
        put_part(&mut out, &plan);
        Ok(out.into())
    }

    /// Whether `bytes` claim to be a fragment (of any version).
    pub fn is_fragment(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    /// A fragment sent by [`Self::encode`], its functions resolved in `ctx`; a fragment of
    /// another format version is refused.
    pub fn decode(bytes: &[u8], ctx: &TaskContext) -> Result<Received> {
        let mut buf = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| wire("not a plan fragment"))?;
        if buf.len() < 4 {
            return Err(wire("cut short"));
        }
        let version = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if version != FRAGMENT_VERSION {
            return Err(wire(format!(
                "format version {version} was sent, this node runs version {FRAGMENT_VERSION}: every node of a cluster must run the same Fletch version"
            )));
        }
        buf = &buf[4..];
        let header: Header = serde_json::from_slice(take_part(&mut buf)?).map_err(wire)?;
        let plan = datafusion_proto::bytes::physical_plan_from_bytes_with_extension_codec(
            take_part(&mut buf)?,
            ctx,
            &FragmentCodec,
        )?;
        Ok(Received {
            fragment: Fragment::new(header.database, header.shards, plan),
            catalog_index: header.catalog_index,
        })
    }

    /// The scan requests of the fragment's leaves, in plan order.
    pub fn scans(&self) -> Vec<ScanRequest> {
        let mut out = Vec::new();
        let _ = self.plan.apply(|n| {
            if let Some(scan) = n.downcast_ref::<RemoteScanExec>() {
                out.push(scan.request.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        });
        out
    }

    /// The plan with its scan leaves replaced, in plan order, by `scans` (the owner's own
    /// scans of those requests, with the same columns).
    pub fn bind(&self, scans: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let mut scans = scans.into_iter();
        let bound = Arc::clone(&self.plan).transform_up(|n| {
            if n.downcast_ref::<RemoteScanExec>().is_none() {
                return Ok(Transformed::no(n));
            }
            let Some(scan) = scans.next() else {
                return exec_err!("a plan fragment has more scans than plans for them");
            };
            Ok(Transformed::yes(scan))
        })?;
        Ok(bound.data)
    }
}

pub(crate) fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u32).to_le_bytes());
    out.extend_from_slice(part);
}

pub(crate) fn take_part<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    if buf.len() < 4 {
        return Err(wire("cut short"));
    }
    let n = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if buf.len() - 4 < n {
        return Err(wire("cut short"));
    }
    let part = &buf[4..4 + n];
    *buf = &buf[4 + n..];
    Ok(part)
}

/// The methods of a plan node without inputs.
macro_rules! leaf_methods {
    ($name:literal) => {
        fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
            vec![]
        }

        fn apply_expressions(
            &self,
            _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
        ) -> Result<TreeNodeRecursion> {
            Ok(TreeNodeRecursion::Continue)
        }

        fn with_new_children(
            self: Arc<Self>,
            children: Vec<Arc<dyn ExecutionPlan>>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            if !children.is_empty() {
                return exec_err!("{} has no inputs", $name);
            }
            Ok(self)
        }
    };
}

/// One partition, unordered, bounded: a leaf fed by one stream.
fn leaf_properties(schema: SchemaRef) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(1),
        EmissionType::Incremental,
        Boundedness::Bounded,
    ))
}

/// The first of `remote`'s owners whose `ask` starts answering: it answered, and its first
/// batch (or its end) came without an error. The others are asked in turn; when none
/// answers, the error names the shards, their owners and what each said.
async fn first_answer<F, Fut>(
    remote: &RemoteShards,
    ask: F,
) -> Result<(u64, SendableRecordBatchStream), ExecError>
where
    F: Fn(Arc<dyn ShardSource>) -> Fut,
    Fut: std::future::Future<Output = Result<SendableRecordBatchStream, ExecError>>,
{
    let mut errors = Vec::new();
    for source in &remote.sources {
        let node = source.node_id();
        match ask(Arc::clone(source)).await {
            Ok(mut stream) => match stream.next().await {
                Some(Err(e)) => errors.push(attributed(node, &user_text(&e))),
                first => {
                    let schema = stream.schema();
                    let head = futures::stream::iter(first);
                    return Ok((
                        node,
                        Box::pin(RecordBatchStreamAdapter::new(schema, head.chain(stream))),
                    ));
                }
            },
            Err(e) => errors.push(attributed(node, &e.to_string())),
        }
        tracing::debug!(node, shards = ?remote.shards, "an owner did not answer; asking the next");
    }
    Err(remote.unanswered(errors))
}

/// An error's text for a user: a peer's error, not DataFusion's wrapping of it.
fn user_text(e: &DataFusionError) -> String {
    match e.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        root => root.to_string(),
    }
}

/// The metrics every remote node of a plan reports: rows, the owner that answered, and how long
/// its answer took to start.
#[derive(Debug, Clone)]
struct RemoteMetrics {
    set: ExecutionPlanMetricsSet,
}

impl RemoteMetrics {
    fn new() -> Self {
        Self {
            set: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The answer of the first of `remote`'s owners that answers `ask` ([`first_answer`]),
    /// counted here.
    fn answer_of<F, Fut>(
        &self,
        remote: RemoteShards,
        ask: F,
    ) -> impl futures::Stream<Item = Result<datafusion::arrow::array::RecordBatch>> + Send + 'static
    where
        F: Fn(Arc<dyn ShardSource>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<SendableRecordBatchStream, ExecError>> + Send,
    {
        let metrics = self.clone();
        futures::stream::once(async move {
            let started = Instant::now();
            let (node, stream) = first_answer(&remote, ask)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Ok::<_, DataFusionError>(metrics.track(node, started, stream))
        })
        .try_flatten()
    }

    /// `stream` counted, once `node` answered after `started`.
    fn track(
        &self,
        node: u64,
        started: Instant,
        stream: SendableRecordBatchStream,
    ) -> SendableRecordBatchStream {
        MetricBuilder::new(&self.set)
            .global_gauge("node")
            .set(node as usize);
        MetricBuilder::new(&self.set)
            .subset_time("time_to_first_answer", 0)
            .add_duration(started.elapsed());
        let rows = MetricBuilder::new(&self.set).output_rows(0);
        let schema = stream.schema();
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.inspect_ok(move |b| rows.add(b.num_rows())),
        ))
    }
}

/// A measurement in shards other nodes own, read as one request to the first owner that
/// answers (see the module's essay). On an owner, inside a received fragment, it stands for
/// that owner's own scan of the request until [`Fragment::bind`] replaces it.
#[derive(Debug)]
pub struct RemoteScanExec {
    /// The owners to ask; `None` in a fragment received from another node.
    remote: Option<RemoteShards>,
    request: ScanRequest,
    properties: Arc<PlanProperties>,
    metrics: RemoteMetrics,
}

impl RemoteScanExec {
    pub fn new(remote: RemoteShards, request: ScanRequest) -> Self {
        Self::of(Some(remote), request)
    }

    fn of(remote: Option<RemoteShards>, request: ScanRequest) -> Self {
        Self {
            properties: leaf_properties(Arc::clone(&request.schema)),
            remote,
            request,
            metrics: RemoteMetrics::new(),
        }
    }

    pub fn request(&self) -> &ScanRequest {
        &self.request
    }
}

impl DisplayAs for RemoteScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let columns: Vec<&str> = self
            .request
            .schema
            .fields()
            .iter()
            .map(|c| c.name().as_str())
            .collect();
        write!(
            f,
            "RemoteScanExec: measurement={}, shards={:?}",
            self.request.measurement, self.request.shards
        )?;
        if let Some(r) = &self.remote {
            write!(f, ", owners={:?}", r.owners)?;
        }
        write!(f, ", columns=[{}]", columns.join(", "))?;
        if !self.request.filters.is_empty() {
            let filters: Vec<String> = self.request.filters.iter().map(|e| e.to_string()).collect();
            write!(f, ", filters=[{}]", filters.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for RemoteScanExec {
    fn name(&self) -> &str {
        "RemoteScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    leaf_methods!("RemoteScanExec");

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return exec_err!("RemoteScanExec has one partition, not {partition}");
        }
        let Some(remote) = self.remote.clone() else {
            return exec_err!(
                "a received plan fragment's scan runs only once bound to this node's shards"
            );
        };
        let schema = Arc::clone(&self.request.schema);
        let request = self.request.clone();
        let aligned = Arc::clone(&schema);
        let batches = self
            .metrics
            .answer_of(remote, move |s| {
                let request = request.clone();
                async move { s.scan(request).await }
            })
            .map(move |b| Ok(ingester::batch::align(&b?, &aligned)?));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.set.clone_inner())
    }
}

/// A plan fragment run by the first owner of its shards that answers; its output is the
/// fragment's (for a split aggregate: the partial aggregate's states).
#[derive(Debug)]
pub struct FragmentExec {
    remote: RemoteShards,
    fragment: Fragment,
    properties: Arc<PlanProperties>,
    metrics: RemoteMetrics,
}

impl FragmentExec {
    pub fn new(remote: RemoteShards, fragment: Fragment) -> Self {
        Self {
            properties: leaf_properties(fragment.plan.schema()),
            remote,
            fragment,
            metrics: RemoteMetrics::new(),
        }
    }

    pub fn fragment(&self) -> &Fragment {
        &self.fragment
    }
}

impl DisplayAs for FragmentExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "FragmentExec: shards={:?}, owners={:?}, fragment=[",
            self.fragment.shards, self.remote.owners
        )?;
        // The fragment's nodes top-down, one line.
        let shown = displayable(self.fragment.plan.as_ref())
            .indent(false)
            .to_string();
        let nodes: Vec<&str> = shown.lines().map(str::trim).collect();
        write!(f, "{}]", nodes.join(" <- "))?;
        // EXPLAIN ANALYZE: how it ran on the owner that answered.
        if let Some(ran) = self.fragment.report.get() {
            write!(f, ", ran=[{ran}]")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for FragmentExec {
    fn name(&self) -> &str {
        "FragmentExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    // No inputs: the fragment runs elsewhere, and no optimizer of this node may change it.
    leaf_methods!("FragmentExec");

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return exec_err!("FragmentExec has one partition, not {partition}");
        }
        let fragment = self.fragment.clone();
        let batches = self.metrics.answer_of(self.remote.clone(), move |s| {
            let fragment = fragment.clone();
            async move { s.fragment(fragment).await }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.set.clone_inner())
    }
}

/// Splits each aggregate over remote shards into partial aggregates on the owners and a final
/// one here (see the module's essay). Runs after DataFusion's own rules.
#[derive(Debug, Default)]
pub struct DistributeAggregates;

impl PhysicalOptimizerRule for DistributeAggregates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(plan
            .transform_down(|node| {
                Ok(match distribute(&node)? {
                    Some(split) => Transformed::new(split, true, TreeNodeRecursion::Jump),
                    None => Transformed::no(node),
                })
            })?
            .data)
    }

    fn name(&self) -> &str {
        "distribute_aggregates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` split, if it is an aggregate (single, or final over partial) with a remote scan among
/// the branches of its input.
fn distribute(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(agg) = node.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let first = match agg.mode() {
        AggregateMode::Single | AggregateMode::SinglePartitioned => agg,
        AggregateMode::Final | AggregateMode::FinalPartitioned => {
            match partial_below(agg.input()) {
                Some(p) => p,
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    // Aggregates that need ordered input, and grouping sets, stay whole.
    if first.aggr_expr().iter().any(|a| !a.order_bys().is_empty())
        || !first.group_expr().is_single()
    {
        return Ok(None);
    }
    let branches = split(first.input())?;
    if !branches.iter().any(|b| remote_leaf(b).is_some()) {
        return Ok(None);
    }
    let mut parts: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(branches.len());
    for branch in branches {
        let partial: Arc<dyn ExecutionPlan> = Arc::new(AggregateExec::try_new(
            AggregateMode::Partial,
            first.group_expr().clone(),
            first.aggr_expr().to_vec(),
            first.filter_expr().to_vec(),
            Arc::clone(&branch),
            first.input_schema(),
        )?);
        parts.push(match remote_leaf(&branch) {
            Some((request, remote)) => {
                let fragment =
                    Fragment::new(request.database.clone(), request.shards.clone(), partial);
                Arc::new(FragmentExec::new(remote.clone(), fragment))
            }
            None => partial,
        });
    }
    let union = UnionExec::try_new(parts)?;
    let merged: Arc<dyn ExecutionPlan> = if union.output_partitioning().partition_count() > 1 {
        Arc::new(CoalescePartitionsExec::new(union))
    } else {
        union
    };
    let last = AggregateExec::try_new(
        AggregateMode::Final,
        first.group_expr().as_final(),
        first.aggr_expr().to_vec(),
        first.filter_expr().to_vec(),
        merged,
        first.input_schema(),
    )?
    .with_limit_options(agg.limit_options());
    if last.schema().fields() != node.schema().fields() {
        tracing::debug!("a split aggregate's schema differs; it stays whole");
        return Ok(None);
    }
    let mut out: Arc<dyn ExecutionPlan> = Arc::new(last);
    // What the plan above was built on: the aggregate's partitioning and order.
    let partitioning = node.output_partitioning().clone();
    if partitioning.partition_count() > 1 {
        out = Arc::new(RepartitionExec::try_new(out, partitioning)?);
    }
    if let Some(ordering) = node.output_ordering()
        && !out
            .equivalence_properties()
            .ordering_satisfy(ordering.clone())?
    {
        out = Arc::new(SortExec::new(ordering.clone(), out).with_preserve_partitioning(true));
    }
    Ok(Some(out))
}

/// The partial aggregate feeding a final one, through repartitioning and coalescing.
fn partial_below(plan: &Arc<dyn ExecutionPlan>) -> Option<&AggregateExec> {
    if let Some(agg) = plan.downcast_ref::<AggregateExec>() {
        return (*agg.mode() == AggregateMode::Partial).then_some(agg);
    }
    let passes = plan.downcast_ref::<RepartitionExec>().is_some()
        || plan.downcast_ref::<CoalescePartitionsExec>().is_some();
    match plan.children().as_slice() {
        [child] if passes => partial_below(child),
        _ => None,
    }
}

/// Whether `plan` works row by row (or only reorders or moves rows between partitions), so that
/// running it on each branch of a union below it gives the same rows as running it above.
fn distributes(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.fetch().is_none()
        && plan.children().len() == 1
        && (plan.downcast_ref::<ProjectionExec>().is_some()
            || plan.downcast_ref::<FilterExec>().is_some()
            || plan.downcast_ref::<RepartitionExec>().is_some()
            || plan.downcast_ref::<CoalescePartitionsExec>().is_some()
            || plan.downcast_ref::<SortExec>().is_some()
            || plan.downcast_ref::<SortPreservingMergeExec>().is_some())
}

/// `plan` as the branches whose rows together are its rows: unions opened, the row-wise nodes
/// above them copied onto each branch.
fn split(plan: &Arc<dyn ExecutionPlan>) -> Result<Vec<Arc<dyn ExecutionPlan>>> {
    if plan.downcast_ref::<UnionExec>().is_some() || plan.downcast_ref::<InterleaveExec>().is_some()
    {
        let mut out = Vec::new();
        for child in plan.children() {
            out.extend(split(child)?);
        }
        return Ok(out);
    }
    if distributes(plan) {
        let inner = split(plan.children()[0])?;
        if inner.len() > 1 {
            return inner
                .into_iter()
                .map(|b| {
                    Arc::clone(plan).replace_children(
                        vec![b],
                        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
                    )
                })
                .collect();
        }
    }
    Ok(vec![Arc::clone(plan)])
}

/// The remote scan a branch reads through row-wise nodes only (so that the branch can run on
/// the scan's owner), if it is one.
fn remote_leaf(plan: &Arc<dyn ExecutionPlan>) -> Option<(&ScanRequest, &RemoteShards)> {
    if let Some(scan) = plan.downcast_ref::<RemoteScanExec>() {
        return scan.remote.as_ref().map(|r| (&scan.request, r));
    }
    if distributes(plan) {
        return remote_leaf(plan.children()[0]);
    }
    None
}

/// The `datafusion-proto` codec of fragments: scan leaves (a [`ScanRequest`]), then Fletch's
/// own plan pieces ([`FletchCodec`]).
#[derive(Debug, Default, Clone)]
pub struct FragmentCodec;

const SCAN: u8 = b'S';
const FLETCH: u8 = b'F';

impl PhysicalExtensionCodec for FragmentCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf.split_first() {
            Some((&SCAN, rest)) => Ok(Arc::new(RemoteScanExec::of(
                None,
                ScanRequest::decode(rest, ctx).map_err(wire)?,
            ))),
            Some((&FLETCH, rest)) => FletchCodec.try_decode(rest, inputs, ctx, proto_converter),
            _ => Err(wire("an unknown plan node")),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<RemoteScanExec>() {
            buf.push(SCAN);
            buf.extend_from_slice(&scan.request.encode().map_err(wire)?);
            return Ok(());
        }
        buf.push(FLETCH);
        FletchCodec.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        PhysicalExtensionCodec::try_decode_udaf(&FletchCodec, name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        PhysicalExtensionCodec::try_encode_udaf(&FletchCodec, node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        PhysicalExtensionCodec::try_decode_udwf(&FletchCodec, name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        PhysicalExtensionCodec::try_encode_udwf(&FletchCodec, node, buf)
    }
}
