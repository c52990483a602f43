//! Rows a query reads from memory — the write buffer, and files read whole because a delete
//! hides some of their rows — as one table whose scans read only the series and times the
//! query's filters can match.
//!
//! ```text
//!  buffered rows (ingester::SortedRows: sorted by series, time; shared until the next write)
//!    └─ their series index (series_index::Runs), made by the first query and kept with them
//!  scan(filters) ─▶ BufferScanExec { predicate: the filters, batches }
//!  execute        ─▶ the conjuncts on tags and time evaluated on the runs and time pages
//!                 ─▶ the rows that can match: slices of the batch (a few ranges) or one
//!                    filtered copy (many) ─▶ the predicate applied to them (the pushdown is
//!                    exact: no FilterExec above holds the query's values)
//! ```
//!
//! Before this, a query of one host over the newest hour filtered every buffered row of
//! every host: with 100 hosts x 12 h buffered, 4.3 ms of a light query's 4.5 ms.
//!
//! The scan node holds its predicate and its batches apart, so that a kept plan
//! ([`crate::plan_cache`]) can keep the node without the batches and bind the next query's
//! values and buffered batches into it, as it binds Parquet scans: a buffered light query is
//! then not planned again (planning was most of `single-groupby-1-1-1` on a buffer holding
//! 100 hosts x 12 h: 1.33 ms, against 0.56 ms on files). The node reports no statistics, so
//! nothing planned above it depends on the batches it had when planned.
//!
//! What it must not do: change what a query answers (a selection is a superset of the rows
//! that match, and the predicate is applied to every row read; any error in selecting reads
//! the whole batch).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, BooleanArray, BooleanBufferBuilder, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, exec_err};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::coop::make_cooperative;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, SchedulingType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use ingester::SortedRows;

use crate::series_index::Runs;

/// Selections of more ranges than this are copied out in one batch rather than sliced (a
/// memory scan sends each slice as its own batch).
const SLICES: usize = 32;

/// Rows of one source in memory, aligned to the table's schema, with their series index when
/// they are sorted by series.
pub struct MemoryBatch {
    batch: RecordBatch,
    runs: Option<Arc<Runs>>,
}

impl MemoryBatch {
    /// Rows that are not sorted by series (read from a file whose rows a delete hides): every
    /// scan reads them all.
    pub fn unindexed(batch: RecordBatch) -> Self {
        Self { batch, runs: None }
    }

    /// Buffered rows, `aligned` to the query's schema: their index is made once and kept with
    /// `rows` (an index that cannot be made leaves the rows to be read whole).
    pub fn buffered(rows: &SortedRows, aligned: RecordBatch) -> Self {
        Self {
            batch: aligned,
            runs: runs_of(rows),
        }
    }
}

/// The series index of buffered rows: made by the first query that reads them, and kept with
/// them until they change (`None` when it cannot be made).
pub fn runs_of(rows: &SortedRows) -> Option<Arc<Runs>> {
    rows.derived(|b| Runs::of_sorted(b).ok())
}

/// The in-memory rows of a measurement that one query reads.
pub struct MemoryRows {
    schema: SchemaRef,
    batches: Arc<Vec<MemoryBatch>>,
}

impl std::fmt::Debug for MemoryRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRows")
            .field("batches", &self.batches.len())
            .finish()
    }
}

impl MemoryRows {
    pub fn new(schema: SchemaRef, batches: Vec<MemoryBatch>) -> Self {
        Self {
            schema,
            batches: Arc::new(batches),
        }
    }

    /// The batches a scan of these rows reads (what a kept plan's scan is given when bound).
    pub fn batches(&self) -> &Arc<Vec<MemoryBatch>> {
        &self.batches
    }
}

/// The rows of `b` that `predicate` can select (on `schema`, the table's), as batches.
fn selected(
    b: &MemoryBatch,
    predicate: Option<&Arc<dyn PhysicalExpr>>,
    schema: &SchemaRef,
    out: &mut Vec<RecordBatch>,
) -> datafusion::error::Result<()> {
    let (Some(runs), Some(predicate)) = (&b.runs, predicate) else {
        out.push(b.batch.clone());
        return Ok(());
    };
    let selected = runs.select(predicate, schema);
    let mut ranges = Vec::new();
    let mut at = 0usize;
    for s in selected.selection.iter() {
        if !s.skip {
            ranges.push(at..at + s.row_count);
        }
        at += s.row_count;
    }
    let rows = b.batch.num_rows();
    let wanted: usize = ranges.iter().map(|r| r.len()).sum();
    if wanted == rows {
        out.push(b.batch.clone());
    } else if ranges.len() <= SLICES {
        out.extend(ranges.into_iter().map(|r| b.batch.slice(r.start, r.len())));
    } else {
        let mut mask = BooleanBufferBuilder::new(rows);
        let mut end = 0;
        for r in ranges {
            mask.append_n(r.start - end, false);
            mask.append_n(r.len(), true);
            end = r.end;
        }
        mask.append_n(rows - end, false);
        let mask = BooleanArray::new(mask.finish(), None);
        out.push(filter_record_batch(&b.batch, &mask)?);
    }
    Ok(())
}

/// Whether `filter` can be evaluated by the scan itself (then the scan applies it exactly).
/// The filter's columns are qualified by the scan's table, which the table does not know.
fn evaluable(filter: &Expr, schema: &DFSchema) -> bool {
    let Ok(unqualified) = filter.clone().transform(|e| match e {
        Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
            Column::new_unqualified(c.name),
        ))),
        other => Ok(Transformed::no(other)),
    }) else {
        return false;
    };
    datafusion::physical_expr::create_physical_expr(
        &unqualified.data,
        schema,
        &datafusion::execution::context::ExecutionProps::new(),
        &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(),
    )
    .is_ok()
}

#[async_trait]
impl TableProvider for MemoryRows {
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
        let schema = DFSchema::try_from(Arc::clone(&self.schema))?;
        Ok(filters
            .iter()
            .map(|f| {
                if evaluable(f, &schema) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        // Every filter the scan was given exactly is applied by it; an inexact one (that it
        // cannot evaluate) stays in a filter above.
        let schema = DFSchema::try_from(Arc::clone(&self.schema))?;
        let exact: Vec<Expr> = filters
            .iter()
            .filter(|f| evaluable(f, &schema))
            .cloned()
            .collect();
        let predicate = match conjunction(exact) {
            Some(e) => Some(state.create_physical_expr(e, &schema)?),
            None => None,
        };
        Ok(Arc::new(BufferScanExec::new(
            Arc::clone(&self.schema),
            projection.cloned(),
            predicate,
            Arc::clone(&self.batches),
        )?))
    }
}

/// A scan of a measurement's rows in memory: the rows its predicate selects, read through the
/// batches' series indexes and filtered exactly (see the module's essay).
pub struct BufferScanExec {
    /// The table's schema, which the predicate and the projection refer to.
    table: SchemaRef,
    projection: Option<Vec<usize>>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    /// Empty in a kept plan: binding gives it the running query's.
    batches: Arc<Vec<MemoryBatch>>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for BufferScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferScanExec")
            .field("projection", &self.projection)
            .field("predicate", &self.predicate)
            .field("batches", &self.batches.len())
            .finish()
    }
}

impl BufferScanExec {
    pub fn new(
        table: SchemaRef,
        projection: Option<Vec<usize>>,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        batches: Arc<Vec<MemoryBatch>>,
    ) -> datafusion::error::Result<Self> {
        let schema = match &projection {
            Some(p) => Arc::new(table.project(p)?),
            None => Arc::clone(&table),
        };
        Ok(Self {
            table,
            projection,
            predicate,
            batches,
            // Its stream takes part in cooperative scheduling itself (no CooperativeExec
            // above it, which a kept plan would not know).
            properties: Arc::new(
                PlanProperties::new(
                    EquivalenceProperties::new(schema),
                    Partitioning::UnknownPartitioning(1),
                    EmissionType::Incremental,
                    Boundedness::Bounded,
                )
                .with_scheduling_type(SchedulingType::Cooperative),
            ),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The predicate it applies (on [`Self::table_schema`]).
    pub fn predicate(&self) -> Option<&Arc<dyn PhysicalExpr>> {
        self.predicate.as_ref()
    }

    /// The schema of the table it scans.
    pub fn table_schema(&self) -> &SchemaRef {
        &self.table
    }

    /// The same scan of other batches with another predicate (of the same columns): the node a
    /// kept plan runs for a query. It keeps this node's properties, so that the nodes planned
    /// above it keep theirs (see [`crate::rescan`]).
    pub fn bound(
        &self,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        batches: Arc<Vec<MemoryBatch>>,
    ) -> Self {
        Self {
            table: Arc::clone(&self.table),
            projection: self.projection.clone(),
            predicate,
            batches,
            properties: Arc::clone(&self.properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The same scan without batches: what a kept plan keeps (it holds no data).
    pub fn without_batches(&self) -> Self {
        self.bound(self.predicate.clone(), Arc::new(Vec::new()))
    }

    /// The rows of `batch` the predicate holds for, projected.
    fn filtered(&self, batch: RecordBatch) -> datafusion::error::Result<RecordBatch> {
        let batch = match &self.predicate {
            Some(p) => {
                let mask = p.evaluate(&batch)?.into_array(batch.num_rows())?;
                if mask.data_type() != &DataType::Boolean {
                    return exec_err!("a filter of buffered rows is not a boolean");
                }
                filter_record_batch(&batch, mask.as_boolean())?
            }
            None => batch,
        };
        match &self.projection {
            Some(p) => Ok(batch.project(p)?),
            None => Ok(batch),
        }
    }
}

impl DisplayAs for BufferScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let schema = self.schema();
        let columns: Vec<&str> = schema.fields().iter().map(|c| c.name().as_str()).collect();
        write!(f, "BufferScanExec: columns=[{}]", columns.join(", "))?;
        if let Some(p) = &self.predicate {
            write!(f, ", predicate={p}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for BufferScanExec {
    fn name(&self) -> &str {
        "BufferScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        match &self.predicate {
            Some(p) => f(p),
            None => Ok(TreeNodeRecursion::Continue),
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return exec_err!("BufferScanExec has no inputs");
        }
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        if partition != 0 {
            return exec_err!("BufferScanExec has one partition, not {partition}");
        }
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let timer = baseline.elapsed_compute().timer();
        let mut read = Vec::new();
        for b in self.batches.iter() {
            selected(b, self.predicate.as_ref(), &self.table, &mut read)?;
        }
        let mut out = Vec::with_capacity(read.len());
        for b in read {
            let b = self.filtered(b)?;
            if b.num_rows() > 0 {
                // Rows and batches (not bytes: measuring a batch's memory was a few percent of a
                // light query).
                baseline.record_output(b.num_rows());
                baseline.output_batches().add(1);
                out.push(Ok(b));
            }
        }
        timer.done();
        baseline.done();
        Ok(make_cooperative(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            futures::stream::iter(out),
        ))))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{SessionContext, col, lit};
    use datafusion::scalar::ScalarValue;
    use ingester::table::TableBuffer;
    use line_protocol::{ParseOptions, parse_body};

    use super::*;

    /// 3 hosts x 1000 rows, one a second, buffered: its sorted runs.
    fn buffered() -> Vec<Arc<SortedRows>> {
        let mut body = String::new();
        for t in 0..1000i64 {
            for h in ["a", "b", "c"] {
                body.push_str(&format!("cpu,host={h},dc=x v={t} {}\n", t * 1_000_000_000));
            }
        }
        let mut t = TableBuffer::default();
        for p in &parse_body(body.as_bytes(), &ParseOptions::default()).points {
            t.push(p);
        }
        t.snapshot().unwrap()
    }

    /// Rows the scan of `rows` answers for `filters`.
    async fn scanned(rows: &MemoryRows, filters: &[Expr]) -> usize {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let plan = rows.scan(&state, None, filters, None).await.unwrap();
        collect(plan, ctx.task_ctx())
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum()
    }

    /// Rows the scan of `rows` reads for `filters` (before applying them).
    fn read(rows: &MemoryRows, filters: &[Expr]) -> usize {
        let state = SessionContext::new().state();
        let schema = DFSchema::try_from(Arc::clone(&rows.schema)).unwrap();
        let predicate = conjunction(filters.iter().cloned())
            .map(|e| state.create_physical_expr(e, &schema).unwrap());
        let mut out = Vec::new();
        for b in rows.batches.iter() {
            selected(b, predicate.as_ref(), &rows.schema, &mut out).unwrap();
        }
        out.iter().map(|b| b.num_rows()).sum()
    }

    #[tokio::test]
    async fn a_scan_reads_only_the_series_and_time_pages_its_filters_can_select() {
        let runs = buffered();
        assert_eq!(runs.len(), 1);
        let schema = runs[0].batch().schema();
        let rows = MemoryRows::new(
            Arc::clone(&schema),
            vec![MemoryBatch::buffered(&runs[0], runs[0].batch().clone())],
        );
        assert_eq!(read(&rows, &[]), 3000, "no filter: every row");
        let host_b = col("host").eq(lit(ScalarValue::Dictionary(
            Box::new(datafusion::arrow::datatypes::DataType::Int32),
            Box::new(ScalarValue::from("b")),
        )));
        assert_eq!(read(&rows, &[host_b.clone()]), 1000, "one host's run");
        let since = col("time").gt_eq(lit(ScalarValue::TimestampNanosecond(
            Some(900_000_000_000),
            None,
        )));
        let n = read(&rows, &[host_b.clone(), since.clone()]);
        // The host's last 100 rows, and at most the rest of the page the first starts in.
        assert!((100..100 + 256).contains(&n), "{n} rows");
        // Many ranges (the newest rows of every host) come as one filtered copy.
        let n = read(&rows, &[since.clone()]);
        assert!((300..300 + 3 * 256).contains(&n), "{n} rows");
        // A filter the index cannot use selects nothing less.
        let over_5 = col("v").gt(lit(5.0));
        assert_eq!(read(&rows, &[over_5.clone()]), 3000);
        // Rows without an index are read whole.
        let plain = MemoryRows::new(
            schema,
            vec![MemoryBatch::unindexed(runs[0].batch().clone())],
        );
        assert_eq!(read(&plain, &[host_b.clone()]), 3000);

        // What the scan answers: exactly the rows its filters hold for (no filter above it).
        assert_eq!(scanned(&rows, &[]).await, 3000);
        assert_eq!(scanned(&rows, &[host_b.clone()]).await, 1000);
        assert_eq!(scanned(&rows, &[host_b.clone(), since.clone()]).await, 100);
        assert_eq!(scanned(&rows, &[since]).await, 300);
        assert_eq!(scanned(&rows, &[over_5.clone()]).await, 3 * 994);
        assert_eq!(scanned(&plain, &[host_b.clone(), over_5]).await, 994);
        let pushdown = rows.supports_filters_pushdown(&[&host_b]).unwrap();
        assert!(matches!(pushdown[..], [TableProviderFilterPushDown::Exact]));
    }

    #[tokio::test]
    async fn a_scan_kept_without_batches_reads_the_batches_it_is_bound_to() {
        let runs = buffered();
        let schema = runs[0].batch().schema();
        let rows = MemoryRows::new(
            Arc::clone(&schema),
            vec![MemoryBatch::buffered(&runs[0], runs[0].batch().clone())],
        );
        let ctx = SessionContext::new();
        let host = |h: &str| {
            col("host").eq(lit(ScalarValue::Dictionary(
                Box::new(datafusion::arrow::datatypes::DataType::Int32),
                Box::new(ScalarValue::from(h)),
            )))
        };
        let plan = rows
            .scan(&ctx.state(), Some(&vec![0]), &[host("a")], None)
            .await
            .unwrap();
        let scan = plan.downcast_ref::<BufferScanExec>().unwrap();
        let kept = scan.without_batches();
        let count = |p: Arc<dyn ExecutionPlan>| {
            let task = ctx.task_ctx();
            async move {
                collect(p, task)
                    .await
                    .unwrap()
                    .iter()
                    .map(|b| b.num_rows())
                    .sum::<usize>()
            }
        };
        assert_eq!(
            count(Arc::new(
                kept.bound(kept.predicate().cloned(), Arc::new(vec![]))
            ))
            .await,
            0
        );
        let bound = kept.bound(kept.predicate().cloned(), Arc::clone(rows.batches()));
        assert!(Arc::ptr_eq(bound.properties(), scan.properties()));
        assert_eq!(bound.schema().fields().len(), 1);
        assert_eq!(count(Arc::new(bound)).await, 1000);
    }
}
