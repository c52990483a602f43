//! SQL over the same data: a database's measurements as DataFusion tables, as InfluxDB 3 /
//! IOx shows them.
//!
//! ```text
//!  database db (the Flight SQL call's `database` header, or the catalog in `db.iox.cpu`)
//!    catalog  db
//!      schema iox          ─ the default retention policy's measurements, one table each
//!      schema <rp>         ─ every other retention policy's
//!      information_schema  ─ tables, columns (DataFusion's)
//!  table cpu: tags Dictionary(Int32, Utf8), time Timestamp(ns) not null, fields in their types;
//!    each column's `iox::column::type` metadata (iox::column_type::tag, ::timestamp,
//!    ::field::float, ...)
//!  a scan ─▶ Executor::measurement_frame over the shards of the whole cluster (its own read
//!    from disk, the others through their owners), time bounds of the filters as its range
//! ```
//!
//! Queries run in a session made from the executor's, so its functions, its physical optimizer
//! rules (aggregates over other nodes' shards run there as fragments) and its object stores
//! are those of InfluxQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    BinaryExpr, Distinct, Expr, LogicalPlan, Operator, TableProviderFilterPushDown,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::{SessionContext, cast, lit};
use ingester::{FieldType, TableSchema};

use crate::executor::{ExecError, Executor};
use crate::select::TimeRange;

/// The schema the default retention policy's measurements are in.
pub const DEFAULT_SCHEMA: &str = "iox";

/// The metadata key InfluxDB 3 clients read a column's role from.
pub const COLUMN_TYPE: &str = "iox::column::type";

/// A session for SQL over `database`: its catalog (named after it) is the default one, and
/// `iox` the default schema, so `cpu`, `iox.cpu` and `db.iox.cpu` all name a measurement.
/// Keep it until the query's answer has been read: the files its scans read stay on disk
/// while it lives.
pub async fn session(ex: &Executor, database: &str) -> Result<SessionContext, ExecError> {
    let catalog = DatabaseCatalog::load(ex, database).await?;
    let mut state = fresh_state(ex);
    {
        let opts = state.config_mut().options_mut();
        opts.catalog.default_catalog = database.to_string();
        opts.catalog.default_schema = DEFAULT_SCHEMA.to_string();
    }
    let ctx = SessionContext::new_with_state(state);
    ctx.register_catalog(database, Arc::new(catalog));
    Ok(ctx)
}

/// The executor's session state (functions, optimizer rules, object stores) with a catalog
/// list of its own (the executor's is shared by every InfluxQL query) and
/// `information_schema` on.
fn fresh_state(ex: &Executor) -> datafusion::execution::SessionState {
    let base = ex.session().state();
    // LatestRows first: DataFusion's own rules turn DISTINCT ON into an aggregate.
    let mut rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = vec![Arc::new(LatestRows)];
    rules.extend(base.optimizers().iter().cloned());
    let runtime = ex.query_runtime();
    let mut state = datafusion::execution::SessionStateBuilder::new_from_existing(base)
        .with_catalog_list(Arc::new(
            datafusion::catalog::MemoryCatalogProviderList::new(),
        ))
        .with_optimizer_rules(rules)
        .with_runtime_env(Arc::clone(&runtime))
        .build();
    state.config_mut().options_mut().catalog.information_schema = true;
    crate::memory::fit_to_budget(state.config_mut().options_mut(), &runtime);
    state
}

/// The column of an IOx table for a tag, a field of `ty`, or the time.
fn column(name: &str, role: &str, ty: DataType, nullable: bool) -> Field {
    Field::new(name, ty, nullable)
        .with_metadata([(COLUMN_TYPE.to_string(), format!("iox::column_type::{role}"))].into())
}

/// A measurement's schema as an IOx table: columns in name order.
pub fn iox_schema(schema: &TableSchema) -> SchemaRef {
    let mut cols: Vec<Field> = Vec::new();
    for t in &schema.tags {
        cols.push(column(
            t,
            "tag",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ));
    }
    for (f, ty) in &schema.fields {
        let role = match ty {
            FieldType::Float => "field::float",
            FieldType::Integer => "field::integer",
            FieldType::Unsigned => "field::uinteger",
            FieldType::String => "field::string",
            FieldType::Boolean => "field::boolean",
        };
        cols.push(column(f, role, ty.arrow(), true));
    }
    cols.push(column(
        "time",
        "timestamp",
        ingester::schema::time_type(),
        false,
    ));
    cols.sort_by(|a, b| a.name().cmp(b.name()));
    Arc::new(Schema::new(cols))
}

/// One database: a schema per retention policy.
#[derive(Debug)]
struct DatabaseCatalog {
    schemas: BTreeMap<String, Arc<dyn SchemaProvider>>,
}

impl DatabaseCatalog {
    async fn load(ex: &Executor, database: &str) -> Result<Self, ExecError> {
        let (default_rp, rps) = {
            let cat = ex.meta().catalog();
            let dbi = cat
                .database(database)
                .ok_or_else(|| ExecError::DatabaseNotFound(database.to_string()))?;
            (
                dbi.default_rp.clone(),
                dbi.retention_policies.keys().cloned().collect::<Vec<_>>(),
            )
        };
        let mut schemas: BTreeMap<String, Arc<dyn SchemaProvider>> = BTreeMap::new();
        for rp in rps {
            let tables = ex.measurements_of(database, &rp, None, Some("")).await?;
            let name = if default_rp.as_deref() == Some(rp.as_str()) {
                DEFAULT_SCHEMA.to_string()
            } else {
                rp.clone()
            };
            schemas.insert(
                name,
                Arc::new(PolicySchema {
                    ex: ex.clone(),
                    database: database.to_string(),
                    rp,
                    tables,
                }),
            );
        }
        Ok(Self { schemas })
    }
}

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.schemas.keys().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.schemas.get(name).cloned()
    }
}

/// One retention policy's measurements.
#[derive(Debug)]
struct PolicySchema {
    ex: Executor,
    database: String,
    rp: String,
    tables: Vec<String>,
}

#[async_trait]
impl SchemaProvider for PolicySchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.clone()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if !self.table_exist(name) {
            return Ok(None);
        }
        let schema = self
            .ex
            .load_schema(&self.database, name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .unwrap_or_default();
        Ok(Some(Arc::new(MeasurementTable {
            ex: self.ex.clone(),
            database: self.database.clone(),
            rp: self.rp.clone(),
            name: name.to_string(),
            schema: iox_schema(&schema),
            latest_rows: false,
            pinned: Default::default(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t == name)
    }
}

/// A measurement of one retention policy, read from the shards of the whole cluster.
#[derive(Debug)]
struct MeasurementTable {
    ex: Executor,
    database: String,
    rp: String,
    name: String,
    schema: SchemaRef,
    /// Only each group's newest row is wanted ([`LatestRows`]): rows before every series'
    /// last ones are neither scanned nor decoded, as for InfluxQL's `last()`.
    latest_rows: bool,
    /// The files its scans read stay on disk while the session that planned them lives.
    pinned: std::sync::Mutex<Vec<Arc<ingester::pins::Pinned>>>,
}

/// The time bounds `filters` put on `time` (inclusive nanoseconds).
fn time_range(filters: &[Expr]) -> TimeRange {
    let mut range = TimeRange::ALL;
    for f in filters {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = f else {
            continue;
        };
        let (op, t) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) if c.name == "time" => (*op, v),
            (Expr::Literal(v, _), Expr::Column(c)) if c.name == "time" => match op.swap() {
                Some(op) => (op, v),
                None => continue,
            },
            _ => continue,
        };
        let t = match t {
            ScalarValue::TimestampNanosecond(Some(t), _) => *t,
            ScalarValue::TimestampMicrosecond(Some(t), _) => t.saturating_mul(1_000),
            ScalarValue::TimestampMillisecond(Some(t), _) => t.saturating_mul(1_000_000),
            ScalarValue::TimestampSecond(Some(t), _) => t.saturating_mul(1_000_000_000),
            _ => continue,
        };
        match op {
            Operator::Gt => range.min = range.min.max(t.saturating_add(1)),
            Operator::GtEq => range.min = range.min.max(t),
            Operator::Lt => range.max = range.max.min(t.saturating_sub(1)),
            Operator::LtEq => range.max = range.max.min(t),
            Operator::Eq => {
                range.min = range.min.max(t);
                range.max = range.max.min(t);
            }
            _ => {}
        }
    }
    range
}

#[async_trait]
impl TableProvider for MeasurementTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let external = |e: ExecError| DataFusionError::External(Box::new(e));
        let range = time_range(filters);
        let mut sources = self
            .ex
            .sources(&self.database, &self.rp, &self.name, range)
            .await
            .map_err(external)?;
        // Each group's newest row only (no filter, no limit: nothing can hide a newer row):
        // every series' last row is at or after its shard's bound (crate::scan).
        if self.latest_rows && filters.is_empty() && limit.is_none() {
            sources = sources.for_last_values();
        }
        let frame = self
            .ex
            .frame_of(self.ex.session(), &self.name, sources, range)
            .await
            .map_err(external)?;
        let Some(frame) = frame else {
            return Ok(Arc::new(EmptyExec::new(projected)));
        };
        self.pinned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(frame.pinned);
        let mut df = frame.df.build().map_err(external)?;
        // The table's columns in its types (a column the shards read lack comes as nulls).
        let have = df.schema().clone();
        let columns: Vec<Expr> = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                let name = f.name().as_str();
                let e = match have.field_with_unqualified_name(name) {
                    Ok(h) if h.data_type() == f.data_type() => crate::select::ident(name),
                    Ok(_) => cast(crate::select::ident(name), f.data_type().clone()),
                    Err(_) => lit(ScalarValue::try_from(f.data_type())?),
                };
                // With the IOx metadata, which the plan's schema carries throughout.
                let metadata =
                    datafusion::common::metadata::FieldMetadata::from(f.metadata().clone());
                Ok(e.alias_with_metadata(name, Some(metadata)))
            })
            .collect::<Result<_>>()?;
        df = df.select(columns)?;
        for f in filters {
            df = df.filter(f.clone())?;
        }
        if let Some(p) = projection {
            let names: Vec<Expr> = p
                .iter()
                .map(|i| crate::select::ident(self.schema.field(*i).name()))
                .collect();
            df = df.select(names)?;
        }
        if let Some(n) = limit {
            df = df.limit(0, Some(n))?;
        }
        let plan = df.create_physical_plan().await?;
        // Each file's rows picked by its series index, as InfluxQL's scans are.
        let (plan, _) = self
            .ex
            .indexes()
            .attach(plan, &self.ex.session().task_ctx())
            .await?;
        Ok(plan)
    }
}

/// Marks the measurement scanned by `SELECT DISTINCT ON (tags) ... ORDER BY tags, time DESC`
/// (the newest row of each group, TSBS's SQL `lastpoint`) so that it reads only rows at or
/// after every series' last one ([`MeasurementTable::latest_rows`]). Only when nothing between
/// the `DISTINCT ON` and the scan filters, limits or renames rows: plain-column projections at
/// most, no filter on the scan, and the `ON` expressions tags of the table.
#[derive(Debug)]
struct LatestRows;

impl LatestRows {
    /// `plan`'s table, if it is a plain-column path down to a scan of a measurement with no
    /// filter and no limit.
    fn table_under(plan: &LogicalPlan) -> Option<Arc<dyn TableProvider>> {
        match plan {
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                Self::table_under(&p.input)
            }
            LogicalPlan::TableScan(t) if t.filters.is_empty() && t.fetch.is_none() => {
                let provider = datafusion::datasource::source_as_provider(&t.source).ok()?;
                provider
                    .downcast_ref::<MeasurementTable>()
                    .is_some()
                    .then_some(provider)
            }
            _ => None,
        }
    }
}

impl OptimizerRule for LatestRows {
    fn name(&self) -> &str {
        "fletch_latest_rows"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Distinct(Distinct::On(on)) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let Some(provider) = Self::table_under(&on.input) else {
            return Ok(Transformed::no(plan));
        };
        let Some(table) = provider.downcast_ref::<MeasurementTable>() else {
            return Ok(Transformed::no(plan));
        };
        if table.latest_rows {
            return Ok(Transformed::no(plan));
        }
        let is_tag = |e: &Expr| match e {
            Expr::Column(c) => table.schema.field_with_name(&c.name).is_ok_and(|f| {
                f.metadata().get(COLUMN_TYPE).map(String::as_str) == Some("iox::column_type::tag")
            }),
            _ => false,
        };
        let newest_first = on.sort_expr.as_ref().is_some_and(|sorts| {
            sorts.len() == on.on_expr.len() + 1
                && sorts[..on.on_expr.len()]
                    .iter()
                    .zip(&on.on_expr)
                    .all(|(s, e)| &s.expr == e)
                && matches!(&sorts[on.on_expr.len()], s if !s.asc
                    && matches!(&s.expr, Expr::Column(c) if c.name == "time"))
        });
        if !newest_first || !on.on_expr.iter().all(is_tag) {
            return Ok(Transformed::no(plan));
        }
        let marked = Arc::new(MeasurementTable {
            ex: table.ex.clone(),
            database: table.database.clone(),
            rp: table.rp.clone(),
            name: table.name.clone(),
            schema: Arc::clone(&table.schema),
            latest_rows: true,
            pinned: Default::default(),
        });
        let input = Arc::unwrap_or_clone(Arc::clone(&on.input))
            .transform_up(|p| match p {
                LogicalPlan::TableScan(mut t) => {
                    t.source = datafusion::datasource::provider_as_source(marked.clone());
                    Ok(Transformed::yes(LogicalPlan::TableScan(t)))
                }
                p => Ok(Transformed::no(p)),
            })?
            .data;
        let mut on = on.clone();
        on.input = Arc::new(input);
        Ok(Transformed::yes(LogicalPlan::Distinct(Distinct::On(on))))
    }
}

/// A session with every database's catalog (those in `only`, when given: the ones the caller
/// may read), for a query that names its catalog (`SELECT ... FROM db.iox.cpu`) without a
/// database header.
pub async fn session_of_all(
    ex: &Executor,
    only: Option<&[String]>,
) -> Result<SessionContext, ExecError> {
    let names: Vec<String> = ex
        .meta()
        .catalog()
        .databases_in_order()
        .into_iter()
        .map(|d| d.name.clone())
        .filter(|d| only.is_none_or(|o| o.contains(d)))
        .collect();
    let ctx = SessionContext::new_with_state(fresh_state(ex));
    for db in names {
        let catalog = DatabaseCatalog::load(ex, &db).await?;
        ctx.register_catalog(&db, Arc::new(catalog));
    }
    Ok(ctx)
}
