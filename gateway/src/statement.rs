//! One statement, SQL or InfluxQL, answered as a stream of Arrow record batches: what Flight
//! SQL, InfluxDB 3's JSON ticket and `/api/v3/query_sql|query_influxql` share. The edges map
//! [`StatementError`] to a gRPC status or an HTTP answer, each in one place.
//!
//! ```text
//!  SQL      ─▶ querier::sql::session (the database's tables) ─▶ DataFusion logical plan
//!               ─▶ refused unless it only reads ─▶ parameters bound ─▶ record batches (streamed)
//!  InfluxQL ─▶ querier::influxql::parse_query ─▶ parameters bound ─▶ Executor ─▶ series
//!               ─▶ one table led by `iox::measurement` (InfluxDB 3's shape)
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;
use futures::stream::BoxStream;
use querier::{ExecError, Executor};

/// Why a statement got no answer, by who is to blame.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    /// The statement cannot be parsed or planned (a syntax error, an unknown table, a missing
    /// parameter).
    #[error("{0}")]
    Invalid(String),
    /// A statement Fletch does not run here (one that would change data or the catalog).
    #[error("{0}")]
    Unsupported(String),
    /// The statement was valid but running it failed.
    #[error("{0}")]
    Failed(String),
    /// The caller may not run it (a missing privilege), with 1.x's text.
    #[error("{0}")]
    Forbidden(String),
}

/// Who runs a statement: the caller and the rules that say what it may read.
#[derive(Debug, Clone)]
pub struct Access {
    pub auth: Arc<crate::auth::Auth>,
    pub caller: crate::auth::Caller,
}

impl Access {
    /// READ on `database`, when auth is on.
    fn check_read(&self, database: &str, sql: &str) -> Result<(), StatementError> {
        self.auth
            .authorize_read(&self.caller, database, sql)
            .map_err(|e| StatementError::Forbidden(e.to_string()))
    }
}

impl From<ExecError> for StatementError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::DatabaseNotFound(db) => Self::DatabaseNotFound(db),
            ExecError::DatabaseRequired => Self::Invalid(e.to_string()),
            e => Self::Failed(e.to_string()),
        }
    }
}

impl From<datafusion::error::DataFusionError> for StatementError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as D;
        match e.find_root() {
            D::SQL(..) | D::Plan(_) | D::SchemaError(..) => {
                Self::Invalid(e.find_root().to_string())
            }
            D::NotImplemented(_) => Self::Unsupported(e.find_root().to_string()),
            D::External(inner) => match inner.downcast_ref::<ExecError>() {
                Some(ExecError::DatabaseNotFound(db)) => Self::DatabaseNotFound(db.clone()),
                _ => Self::Failed(e.to_string()),
            },
            _ => Self::Failed(e.to_string()),
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for StatementError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Values for a statement's placeholders.
#[derive(Debug, Clone, Default)]
pub enum Params {
    #[default]
    None,
    /// `$1`, `$2`, ... (Flight SQL's prepared statements).
    Positional(Vec<ScalarValue>),
    /// `$name` (InfluxDB 3's `params` object).
    Named(HashMap<String, ScalarValue>),
}

impl Params {
    /// InfluxDB 3's `params`: a JSON object of strings, numbers and booleans.
    pub fn from_json(
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, StatementError> {
        use serde_json::Value;
        let mut out = HashMap::new();
        for (k, v) in params {
            let value = match v {
                Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
                Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
                Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => ScalarValue::Int64(Some(i)),
                    (None, Some(u), _) => ScalarValue::UInt64(Some(u)),
                    (_, _, Some(f)) => ScalarValue::Float64(Some(f)),
                    _ => {
                        return Err(StatementError::Invalid(format!(
                            "parameter {k}: {n} is not a number Fletch can bind"
                        )));
                    }
                },
                Value::Null => ScalarValue::Null,
                other => {
                    return Err(StatementError::Invalid(format!(
                        "parameter {k}: {other} is not a string, number or boolean"
                    )));
                }
            };
            out.insert(k.trim_start_matches('$').to_string(), value);
        }
        Ok(if out.is_empty() {
            Self::None
        } else {
            Self::Named(out)
        })
    }
}

/// An answer: its schema (with the tables' IOx column metadata) and its batches, streamed.
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: BoxStream<'static, Result<RecordBatch, StatementError>>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Answer {
    /// One batch as a whole answer.
    pub fn of(batch: RecordBatch) -> Self {
        Self {
            schema: batch.schema(),
            batches: futures::stream::once(async move { Ok(batch) }).boxed(),
        }
    }
}

/// What Fletch's SQL refuses: it reads; points are written with line protocol.
const READ_ONLY: &str = "Fletch's SQL only reads: write points with line protocol \
     (/write, /api/v2/write, /api/v3/write_lp), manage databases with InfluxQL (/query)";

/// A session for `database`, or every database when the statement names its own catalog.
pub async fn session(
    ex: &Executor,
    access: &Access,
    database: Option<&str>,
    sql: &str,
) -> Result<SessionContext, StatementError> {
    Ok(match database {
        Some(db) => {
            access.check_read(db, sql)?;
            querier::sql::session(ex, db).await?
        }
        None => {
            let readable = access.auth.readable_databases(&access.caller);
            querier::sql::session_of_all(ex, readable.as_deref()).await?
        }
    })
}

/// `sql` planned in `ctx` (a logical plan; nothing runs yet). Only queries are planned:
/// statements that would change data, create tables (DataFusion's `CREATE EXTERNAL TABLE`
/// would read any local file), copy out or set options are refused before planning, and
/// the plan is checked again.
pub async fn logical_plan(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan, StatementError> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let parsed = state.sql_to_statement(sql, &dialect)?;
    if !reads_only(&parsed) {
        return Err(StatementError::Unsupported(READ_ONLY.to_string()));
    }
    let plan = state.statement_to_plan(parsed).await?;
    match &plan {
        LogicalPlan::Dml(_)
        | LogicalPlan::Ddl(_)
        | LogicalPlan::Copy(_)
        | LogicalPlan::Statement(_) => Err(StatementError::Unsupported(READ_ONLY.to_string())),
        _ => Ok(plan),
    }
}

/// Whether `st` only reads: a query, `SHOW TABLES`, `SHOW COLUMNS`, `DESCRIBE`, or an
/// `EXPLAIN` of one (`EXPLAIN ANALYZE` runs what it explains).
fn reads_only(st: &datafusion::sql::parser::Statement) -> bool {
    use datafusion::sql::parser::Statement as Df;
    match st {
        Df::Statement(s) => sql_reads_only(s),
        Df::Explain(e) => reads_only(&e.statement),
        Df::CreateExternalTable(_) | Df::CopyTo(_) | Df::Reset(_) => false,
    }
}

fn sql_reads_only(st: &datafusion::sql::sqlparser::ast::Statement) -> bool {
    use datafusion::sql::sqlparser::ast::Statement as S;
    match st {
        S::Query(_) | S::ShowTables { .. } | S::ShowColumns { .. } | S::ExplainTable { .. } => true,
        S::Explain { statement, .. } => sql_reads_only(statement),
        _ => false,
    }
}

/// `sql` on `database` with `params` bound, planned: its session (keep it while the answer is
/// read: the scans' files stay pinned while it lives) and its frame.
pub async fn plan_sql(
    ex: &Executor,
    access: &Access,
    database: Option<&str>,
    sql: &str,
    params: Params,
) -> Result<(SessionContext, DataFrame), StatementError> {
    let ctx = session(ex, access, database, sql).await?;
    let plan = logical_plan(&ctx, sql).await?;
    let mut df = ctx.execute_logical_plan(plan).await?;
    df = match params {
        Params::None => df,
        Params::Positional(v) => df.with_param_values(ParamValues::from(v))?,
        Params::Named(m) => df.with_param_values(ParamValues::from(m))?,
    };
    Ok((ctx, df))
}

/// `sql`'s answer. Batches carry the tables' schema (their IOx column metadata).
pub async fn run_sql(
    ex: &Executor,
    access: &Access,
    database: Option<&str>,
    sql: &str,
    params: Params,
) -> Result<Answer, StatementError> {
    let (ctx, df) = plan_sql(ex, access, database, sql, params).await?;
    execute(ex, ctx, df, sql, database).await
}

/// A planned statement run: its answer streams while `ctx` (kept with the stream) lives. The
/// statement is one of the node's running queries until its stream ends or is dropped: `SHOW
/// QUERIES` lists it (as `sql` on `database`), `KILL QUERY` ends it with `query interrupted`,
/// `[coordinator] query-timeout` with `query-timeout limit exceeded`, and
/// `max-concurrent-queries` counts it, as for InfluxQL.
pub async fn execute(
    ex: &Executor,
    ctx: SessionContext,
    df: DataFrame,
    sql: &str,
    database: Option<&str>,
) -> Result<Answer, StatementError> {
    let attached = ex
        .queries()
        .attach(sql.to_string(), database.unwrap_or_default().to_string())
        .map_err(|e| StatementError::Failed(e.to_string()))?;
    let deadline = ex.query_timeout().map(|d| tokio::time::Instant::now() + d);
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await?;
    let tagged = Arc::clone(&schema);
    let batches = stream
        .map(move |b| {
            let _session = &ctx;
            let b = b?;
            Ok(RecordBatch::try_new(
                Arc::clone(&tagged),
                b.columns().to_vec(),
            )?)
        })
        .boxed();
    Ok(Answer {
        schema,
        batches: watched(batches, attached, deadline),
    })
}

/// `batches` until they end, the query is killed or its deadline passes (then one error, and
/// the end): a cut answer is never presented as a whole one.
fn watched(
    batches: BoxStream<'static, Result<RecordBatch, StatementError>>,
    attached: querier::queries::Attached,
    deadline: Option<tokio::time::Instant>,
) -> BoxStream<'static, Result<RecordBatch, StatementError>> {
    struct Watch {
        batches: BoxStream<'static, Result<RecordBatch, StatementError>>,
        attached: querier::queries::Attached,
        deadline: Option<tokio::time::Instant>,
        done: bool,
    }
    let state = Watch {
        batches,
        attached,
        deadline,
        done: false,
    };
    futures::stream::unfold(state, |mut w| async move {
        if w.done {
            return None;
        }
        let expired = async {
            match w.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            biased;
            () = w.attached.killed() => Some(Err(StatementError::Failed(ExecError::Interrupted.to_string()))),
            () = expired => Some(Err(StatementError::Failed(ExecError::QueryTimeout.to_string()))),
            b = w.batches.next() => b,
        };
        match next {
            None => None,
            Some(Err(e)) => {
                w.done = true;
                Some((Err(e), w))
            }
            Some(ok) => Some((ok, w)),
        }
    })
    // Readers may poll again after the end (the v3 API peeks at the first item).
    .fuse()
    .boxed()
}

/// An InfluxQL query's answer as InfluxDB 3 gives it ([`influxql_table`]). `params` binds
/// `$name` placeholders as `/query`'s `params` does.
pub async fn run_influxql(
    ex: &Executor,
    access: &Access,
    database: Option<&str>,
    q: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Answer, StatementError> {
    let mut statements = querier::influxql::parse_query(q)
        .map_err(|e| StatementError::Invalid(format!("error parsing query: {e}")))?;
    querier::params::bind(&mut statements, params)
        .map_err(|e| StatementError::Invalid(format!("error parsing query: {e}")))?;
    access
        .auth
        .authorize_query(&access.caller, &statements, database.unwrap_or(""))
        .map_err(|e| StatementError::Forbidden(e.to_string()))?;
    let ctx = querier::QueryContext {
        database: database.map(str::to_string),
        user: access.caller.clone(),
        ..Default::default()
    };
    let results = ex.execute(&statements, &ctx).await;
    if let Some(e) = results.iter().find_map(|r| r.error.clone()) {
        return Err(match e.strip_prefix("database not found: ") {
            Some(db) => StatementError::DatabaseNotFound(db.to_string()),
            None => StatementError::Invalid(e),
        });
    }
    let series: Vec<querier::Series> = results.into_iter().flat_map(|r| r.series).collect();
    Ok(Answer::of(influxql_table(&series)?))
}

/// InfluxQL answers as one Arrow table, as InfluxDB 3 sends them: a leading
/// `iox::measurement` column, then every other column by name in the order they first appear
/// (`time`, the series' tags, the values); a column a series lacks is null there.
pub fn influxql_table(series: &[querier::Series]) -> Result<RecordBatch, StatementError> {
    use datafusion::arrow::array::{ArrayRef, StringArray, new_null_array};
    use datafusion::arrow::datatypes::{DataType, Field};
    let mut fields: Vec<Field> = vec![Field::new("iox::measurement", DataType::Utf8, false)];
    let mut add = |name: &str, ty: &DataType| {
        if !fields.iter().any(|f| f.name() == name) {
            fields.push(Field::new(name, ty.clone(), true));
        }
    };
    for s in series {
        if let Some(i) = s.columns.iter().position(|c| c == "time") {
            add("time", s.batch.column(i).data_type());
        }
        for k in s.tags.iter().flatten().map(|(k, _)| k) {
            add(k, &DataType::Utf8);
        }
        for (c, col) in s.columns.iter().zip(s.batch.columns()) {
            add(c, col.data_type());
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let mut batches = Vec::new();
    for s in series {
        let n = s.batch.num_rows();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let name = f.name().as_str();
            let column: ArrayRef = if name == "iox::measurement" {
                Arc::new(StringArray::from(vec![
                    s.name.clone().unwrap_or_default();
                    n
                ]))
            } else if let Some(v) = s.tags.as_ref().and_then(|t| t.get(name)) {
                Arc::new(StringArray::from(vec![v.clone(); n]))
            } else if let Some(i) = s.columns.iter().position(|c| c == name) {
                let c = s.batch.column(i);
                if c.data_type() == f.data_type() {
                    Arc::clone(c)
                } else {
                    datafusion::arrow::compute::cast(c, f.data_type())?
                }
            } else {
                new_null_array(f.data_type(), n)
            };
            columns.push(column);
        }
        batches.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
    }
    Ok(datafusion::arrow::compute::concat_batches(
        &schema, &batches,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_params_become_scalars() {
        let m = serde_json::json!({"host": "b", "$usage": 0.6, "n": 3, "on": true});
        let Params::Named(p) = Params::from_json(m.as_object().unwrap()).unwrap() else {
            panic!("named parameters")
        };
        assert_eq!(p["host"], ScalarValue::Utf8(Some("b".into())));
        assert_eq!(p["usage"], ScalarValue::Float64(Some(0.6)));
        assert_eq!(p["n"], ScalarValue::Int64(Some(3)));
        assert_eq!(p["on"], ScalarValue::Boolean(Some(true)));
        let bad = serde_json::json!({"x": [1]});
        assert!(matches!(
            Params::from_json(bad.as_object().unwrap()),
            Err(StatementError::Invalid(_))
        ));
    }
}
