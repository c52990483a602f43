//! `EXPLAIN [ANALYZE]`: the plan as a query runs it.

use super::*;

/// The DataFusion plan of one measurement's part of a query, one line per row.
pub(super) async fn explain(
    df: DataFrame,
    measurement: &str,
    analyze: bool,
    reuse: Reuse<'_>,
) -> Result<Series, ExecError> {
    use datafusion::physical_plan::display::DisplayableExecutionPlan;
    // The plan as a query runs it: with the series indexes' row selections attached.
    let (state, logical) = df.into_parts();
    let task = std::sync::Arc::new(datafusion::execution::TaskContext::from(&state));
    let optimized = state.optimize(&logical)?;
    let plan = state
        .query_planner()
        .create_physical_plan(&optimized, &state)
        .await?;
    let (plan, selections) = reuse.indexes.attach(plan, &task).await?;
    let mut values = Vec::new();
    let mut push = |kind: &str, text: String| {
        for line in text.lines() {
            values.push(vec![Value::from(kind), Value::from(line)]);
        }
    };
    if analyze {
        datafusion::physical_plan::collect(std::sync::Arc::clone(&plan), task).await?;
        push(
            "Plan with Metrics",
            DisplayableExecutionPlan::with_metrics(plan.as_ref())
                .indent(true)
                .to_string(),
        );
    } else {
        push("logical_plan", optimized.display_indent().to_string());
        push(
            "physical_plan",
            DisplayableExecutionPlan::new(plan.as_ref())
                .indent(true)
                .to_string(),
        );
    }
    for s in selections {
        push("series_index", s.to_string());
    }
    Series::from_rows(
        Some(measurement.to_string()),
        None,
        vec!["plan_type".into(), "plan".into()],
        values,
    )
}
