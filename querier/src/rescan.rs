//! A scan rebuilt under a plan that is kept or already planned, standing in for the planned
//! scan with the planned scan's properties.
//!
//! The plan cache binds a new query's values into a kept plan's Parquet scans, and the series
//! indexes give each scan the rows to read; both build a new `DataSourceExec`. DataFusion then
//! rebuilds every node above it, and a node whose child's properties are a different `Arc`
//! computes its own again (equivalences, orderings, projections): on a light query that was a
//! tenth of its CPU. A rebuilt scan reads the same files, in the same groups, with the same
//! projection and ordering; only the values in its predicate and the rows it selects differ, and
//! with them at most the *values* of the constants DataFusion derived from the predicate. The
//! plan above was planned with those columns constant, and it is exact for any values, so the
//! planned properties stay true and the nodes above keep theirs.
//!
//! ```text
//!   AggregateExec (kept)            AggregateExec (same properties: not recomputed)
//!     DataSourceExec (planned)  ─▶    RescanExec { properties: the planned scan's }
//!                                       DataSourceExec (new predicate, row selections)
//! ```
//!
//! [`RescanExec`] delegates its downcast identity (`downcast_ref::<DataSourceExec>()` sees the
//! scan inside), its display, metrics and execution to the scan it holds. What it must not do:
//! stand in for a scan of other files, columns or ordering than the one planned.

use std::fmt;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, Statistics,
};

/// A rebuilt scan with the planned scan's properties (see the module's essay).
#[derive(Debug)]
pub struct RescanExec {
    scan: Arc<dyn ExecutionPlan>,
    planned: Arc<PlanProperties>,
}

impl RescanExec {
    /// `scan` standing in for `planned`, a plan node whose scan it rebuilds (a
    /// `DataSourceExec`, or a `RescanExec` standing in for one).
    pub fn replacing(
        planned: &Arc<dyn ExecutionPlan>,
        scan: DataSourceExec,
    ) -> Arc<dyn ExecutionPlan> {
        Arc::new(Self {
            scan: Arc::new(scan),
            planned: Arc::clone(planned.properties()),
        })
    }
}

impl DisplayAs for RescanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.scan.fmt_as(t, f)
    }
}

impl ExecutionPlan for RescanExec {
    fn name(&self) -> &str {
        self.scan.name()
    }

    fn downcast_delegate(&self) -> Option<&dyn ExecutionPlan> {
        Some(self.scan.as_ref())
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.planned
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self {
            scan: Arc::clone(&self.scan).reset_state()?,
            planned: Arc::clone(&self.planned),
        }))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.scan.apply_expressions(f)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.scan.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.scan.metrics()
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.scan.statistics_from_inputs(input_stats, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
    use datafusion::physical_plan::projection::ProjectionExec;

    fn scan(values: Vec<i64>) -> DataSourceExec {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(values))],
        )
        .unwrap();
        let config = MemorySourceConfig::try_new(&[vec![batch]], schema, None).unwrap();
        DataSourceExec::new(Arc::new(config))
    }

    #[tokio::test]
    async fn a_rebuilt_scan_keeps_the_nodes_above_as_they_were_planned() {
        let planned: Arc<dyn ExecutionPlan> = Arc::new(scan(vec![1, 2]));
        let v = col("v", &planned.schema()).unwrap();
        let above: Arc<dyn ExecutionPlan> = Arc::new(
            ProjectionExec::try_new(vec![(v, "v".to_string())], Arc::clone(&planned)).unwrap(),
        );
        // A plain new scan: the node above computes its properties again.
        let plain =
            replace_children_if_necessary(Arc::clone(&above), vec![Arc::new(scan(vec![3]))])
                .unwrap();
        assert!(!Arc::ptr_eq(plain.properties(), above.properties()));
        // Standing in for the planned one: they are kept.
        let rescan = RescanExec::replacing(&planned, scan(vec![3]));
        assert!(Arc::ptr_eq(rescan.properties(), planned.properties()));
        assert!(rescan.downcast_ref::<DataSourceExec>().is_some());
        let kept = replace_children_if_necessary(Arc::clone(&above), vec![rescan]).unwrap();
        assert!(Arc::ptr_eq(kept.properties(), above.properties()));
        // And it reads what the new scan reads.
        let task = Arc::new(TaskContext::default());
        let out = datafusion::physical_plan::collect(kept, task)
            .await
            .unwrap();
        assert_eq!(out[0].column(0).as_primitive::<Int64Type>().values(), &[3]);
    }
}
