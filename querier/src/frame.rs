//! Projections and sorts of a statement's `DataFrame`, built directly where DataFusion's
//! column normalization has nothing to do.
//!
//! `DataFrame::select` and `DataFrame::sort` normalize every column they name against the
//! plan below, and normalizing an unqualified column walks that whole plan for the columns of
//! `USING` joins (`LogicalPlan::using_columns`), once per column. The statements' plans name
//! columns unqualified (`__time`, `__c0`, a field), so a `SELECT *` of 20 columns spent a sixth
//! of its CPU on building the projection and sort above its scan.
//!
//! ```text
//!  select(df, exprs) / sort(df, sorts)
//!    ├─ every column named is exactly one field of the input (by name), and the expressions
//!    │  hold nothing select plans or rewrites (window or aggregate functions, subqueries):
//!    │     the Projection / Sort node is built over the input as it is
//!    └─ anything else: DataFrame::select / DataFrame::sort
//! ```
//!
//! A column that names one field of the input resolves to that field with or without its
//! qualifier (physical planning looks fields up by name), so the plan reads and computes the
//! same. What it must not do: build a node DataFusion would have built differently; when in
//! doubt it leaves the work to DataFusion.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::Sort as SortExpr;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Sort};
use datafusion::prelude::DataFrame;

/// Whether every column `e` names is exactly one field of `schema`, and `e` holds only
/// expressions that need no planning or rewriting by `select`.
fn direct(e: &Expr, schema: &DFSchema) -> bool {
    let mut ok = true;
    let _ = e.apply(|x| {
        ok &= match x {
            Expr::Column(c) => match &c.relation {
                Some(_) => schema.has_column(c),
                None => schema.qualified_fields_with_unqualified_name(&c.name).len() == 1,
            },
            Expr::Alias(_)
            | Expr::Literal(_, _)
            | Expr::BinaryExpr(_)
            | Expr::Not(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::Negative(_)
            | Expr::Cast(_)
            | Expr::TryCast(_)
            | Expr::Case(_)
            | Expr::ScalarFunction(_) => true,
            _ => false,
        };
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

/// `df` projected to `exprs` (see the module's essay).
pub(crate) fn select(df: DataFrame, exprs: Vec<Expr>) -> Result<DataFrame> {
    if !exprs.iter().all(|e| direct(e, df.schema())) {
        return df.select(exprs);
    }
    let (state, plan) = df.into_parts();
    let plan = LogicalPlanBuilder::from(plan)
        .project_with_validation(exprs.into_iter().map(|e| (e, false)).collect())?
        .build()?;
    Ok(DataFrame::new(state, plan))
}

/// `df` sorted by `sorts` (see the module's essay).
pub(crate) fn sort(df: DataFrame, sorts: Vec<SortExpr>) -> Result<DataFrame> {
    if !sorts
        .iter()
        .all(|s| matches!(s.expr, Expr::Column(_)) && direct(&s.expr, df.schema()))
    {
        return df.sort(sorts);
    }
    let (state, plan) = df.into_parts();
    let plan = LogicalPlan::Sort(Sort {
        expr: sorts,
        input: Arc::new(plan),
        fetch: None,
    });
    Ok(DataFrame::new(state, plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::functions_aggregate::expr_fn::max;
    use datafusion::prelude::{SessionContext, cast, col, lit};

    fn frame() -> DataFrame {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Int64, false),
            Field::new("v", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![3, 1, 2])),
                Arc::new(Float64Array::from(vec![Some(0.5), None, Some(2.0)])),
            ],
        )
        .unwrap();
        SessionContext::new().read_batch(batch).unwrap()
    }

    async fn shown(df: DataFrame) -> Vec<String> {
        let batches = df.collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Both nodes, built directly, answer as DataFusion's own.
    #[tokio::test]
    async fn direct_nodes_answer_as_datafusions() {
        let exprs = || {
            vec![
                col("t").alias("__time"),
                (col("v") * lit(2.0)).alias("__c0"),
                cast(col("t"), DataType::Float64).alias("__c1"),
            ]
        };
        let sorts = || {
            vec![
                col("__c0").sort(false, true),
                col("__time").sort(true, true),
            ]
        };
        let built = sort(select(frame(), exprs()).unwrap(), sorts()).unwrap();
        assert!(matches!(built.logical_plan(), LogicalPlan::Sort(_)));
        let theirs = frame().select(exprs()).unwrap().sort(sorts()).unwrap();
        assert_eq!(shown(built).await, shown(theirs).await);
    }

    /// Aggregates, unknown columns and sorts of expressions are left to DataFusion (and its
    /// errors).
    #[tokio::test]
    async fn what_select_must_plan_is_left_to_it() {
        let df = frame();
        assert!(direct(&col("v"), df.schema()));
        assert!(!direct(&max(col("v")), df.schema()));
        assert!(!direct(&col("nope"), df.schema()));
        let err = select(frame(), vec![col("nope")]).unwrap_err().to_string();
        let theirs = frame().select(vec![col("nope")]).unwrap_err().to_string();
        assert_eq!(err, theirs);
        let by_expr = sort(frame(), vec![(col("t") * lit(-1)).sort(true, true)]).unwrap();
        let rows = shown(by_expr).await;
        assert!(rows[3].contains("| 3 "), "{rows:?}");
    }
}
