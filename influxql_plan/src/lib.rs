//! # influxql_plan: InfluxQL's own pieces of a DataFusion plan, and the session that knows them
//!
//! Its own crate so that a data node can decode and run a plan fragment (its codec, its
//! execution nodes and functions) without the InfluxQL planner.
//!
//! DataFusion plans every query; what InfluxQL needs beyond SQL lives here as ordinary
//! DataFusion extensions, so that a plan can be printed by `EXPLAIN`, optimized, and shipped
//! to another node whole:
//!
//! - [`gapfill`]: the `GapFill` logical node and `GapFillExec`, for `fill(...)`;
//! - [`aggregate`]: `percentile`, `mode`, `integral` and `holt_winters` (computed by
//!   [`holt_winters`]) as aggregate functions;
//! - [`transform`]: `derivative`, `difference`, `cumulative_sum`, `moving_average`,
//!   `elapsed` (and the non-negative ones) and the technical-analysis functions of
//!   [`technical`] as window functions;
//! - [`selector`]: `first`, `last`, `min`, `max` with 1.x's tie-breaking (and the selected
//!   point's time);
//! - [`sample`]: `sample(field, n)`'s seeded draw as a window function (`top` and `bottom`
//!   are DataFusion's own `row_number`);
//! - [`time_bucket`]: `GROUP BY time(...)`'s bucket as a scalar function;
//! - [`codec`]: a `datafusion-proto` extension codec for all of them (logical and physical);
//! - [`QueryPlanner`]: the physical planner of Fletch's sessions, which plans the logical nodes
//!   into their execution nodes; [`session`] builds a session with it and the functions.
//!
//! What it must not touch: InfluxQL's syntax (`querier::select` lowers statements onto these
//! nodes) or the storage (`querier::scan`).

pub mod aggregate;
pub mod codec;
pub mod gapfill;
pub mod holt_winters;
pub mod sample;
pub mod selector;
pub mod technical;
pub mod time_bucket;
pub mod transform;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::execution::context::QueryPlanner as DfQueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

/// A session of `config` that plans InfluxQL's nodes and knows its scalar functions (the
/// aggregate and window functions are built into the plans that use them).
pub fn session(config: datafusion::prelude::SessionConfig) -> datafusion::prelude::SessionContext {
    session_with_rules(config, Vec::new())
}

/// [`session`], with `rules` run after DataFusion's physical optimizer rules.
pub fn session_with_rules(
    config: datafusion::prelude::SessionConfig,
    rules: Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>>,
) -> datafusion::prelude::SessionContext {
    let mut builder = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_query_planner(Arc::new(QueryPlanner));
    for rule in rules {
        builder = builder.with_physical_optimizer_rule(rule);
    }
    let state = builder.build();
    let ctx = datafusion::prelude::SessionContext::new_with_state(state);
    ctx.register_udf(time_bucket::TimeBucket::udf().as_ref().clone());
    ctx
}

/// Plans Fletch's logical nodes into their execution nodes, and everything else as DataFusion
/// does.
#[derive(Debug, Default)]
pub struct QueryPlanner;

#[async_trait]
impl DfQueryPlanner for QueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(NodePlanner)])
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}

struct NodePlanner;

#[async_trait]
impl ExtensionPlanner for NodePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if let Some(fill) = node.as_any().downcast_ref::<gapfill::GapFill>() {
            let [input] = physical_inputs else {
                return datafusion::common::plan_err!("GapFill takes one input");
            };
            return Ok(Some(Arc::new(gapfill::GapFillExec::try_new(
                Arc::clone(input),
                fill.params.clone(),
            )?)));
        }
        Ok(None)
    }
}
