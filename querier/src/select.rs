//! `SELECT`: InfluxQL semantics planned and run on DataFusion.
//!
//! ```text
//!  SelectStatement ─▶ bind params ─▶ split WHERE into time range + the rest
//!     ─▶ per source: measurements (names, regexes) ─▶ scan::Sources (last-value bound) ─▶ frame
//!        (or, for a subquery, its result as a table)
//!     ─▶ DataFrame: filter(time range) ─▶ filter(condition)
//!          raw:       select(time, tags, expressions)
//!          aggregate: aggregate(by time bucket and tags; InfluxQL calls as DataFusion
//!                     aggregates and Fletch's percentile/mode/integral) ─▶ GapFill (fill)
//!          top/bottom/sample: row_number (or the seeded draw) per group, first n kept
//!     ─▶ transformations as window functions per series ─▶ LIMIT/OFFSET per series
//!     ─▶ sort(tags, time, ties) ─▶ rows ─▶ series per tag set ─▶ SLIMIT/SOFFSET over series
//!  INTO: the rows are written back as points through the ingester.
//! ```
//!
//! Every plan piece DataFusion lacks lives in [`crate::plan`] (with its codec); this module
//! only lowers InfluxQL onto them. `docs/influxql-compatibility.md` lists what is covered.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimestampNanosecondType};
use datafusion::common::Column;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::logical_expr::{BinaryExpr, ExprFunctionExt, Operator, SortExpr};
use datafusion::prelude::{DataFrame, Expr as DfExpr, col, lit};
use ingester::{FieldType, TableSchema, now_nanos};
use serde_json::Value;

use crate::executor::{ExecError, Executor, QueryContext};
use crate::frame;
use crate::influxql::{BinaryOp, Dimension, Expr, Fill, SelectStatement, Source, VarType};
use crate::plan::aggregate::{AggregateKind, InfluxAggregate, Output};
use crate::plan::gapfill::{FillValue, GapFill, GapFillParams};
use crate::plan::sample::InfluxSample;
use crate::plan::selector::{InfluxSelector, SelectorKind};
use crate::plan::time_bucket::TimeBucket;
use crate::plan::transform::InfluxTransform;
use crate::plan_cache::{PlanCache, Shape, Template};
use crate::result::Series;
use crate::scan::LazyFrame;
use crate::series_index::SeriesIndexes;

const TIME: &str = "time";

/// The most buckets one series of a `GROUP BY time` query may span (1.x's
/// `max-select-buckets`, which Fletch always applies).
const MAX_SELECT_BUCKETS: i64 = 100_000;

/// A column by its exact name (no splitting on dots, no case folding): InfluxDB names may
/// hold either.
pub(crate) fn ident(name: &str) -> DfExpr {
    DfExpr::Column(Column::new_unqualified(name))
}

fn query_err(msg: impl Into<String>) -> ExecError {
    ExecError::Query(msg.into())
}

/// Runs a `SELECT` against `db` (the `db` parameter, unless the source names one).
pub async fn execute(
    ex: &Executor,
    stmt: &SelectStatement,
    default_db: &str,
    ctx: &QueryContext,
) -> Result<Vec<Series>, ExecError> {
    if let Some(target) = &stmt.into {
        return select_into(ex, stmt, target, default_db, ctx).await;
    }
    let stmt = stmt.clone();
    let now = now_nanos();
    let (range, condition) = split_time_range(stmt.condition.as_ref(), now)?;
    let plan = Plan::new(&stmt, range)?;

    // Load every measurement first: `*` means the columns of all of them together (1.x).
    let session = ex.session();
    let mut loaded = Vec::new();
    // The files the frames read stay on disk until the statement has run.
    let mut pinned = Vec::new();
    let mut union = TableSchema::default();
    for source in &stmt.sources {
        let m = match source {
            Source::Measurement(m) => m,
            Source::Subquery(inner) => {
                for (name, frame, schema) in
                    subquery_frames(ex, inner, plan.range, default_db, ctx, session).await?
                {
                    union.merge(&schema);
                    loaded.push((name, LazyFrame::Built(frame), schema, None));
                }
                continue;
            }
        };
        let db = database_of(m.database.as_deref(), default_db)?;
        let rp = m.retention_policy.as_deref().unwrap_or("");
        for name in ex.measurements_of(db, rp, m.name.as_deref(), m.regex.as_deref())? {
            // Only each series' last values wanted: rows before every series' last ones
            // are neither scanned nor decoded.
            let sources = ex.sources(db, rp, &name, plan.range)?;
            let equalities = tag_equalities(condition.as_ref(), &sources.schema);
            let sources = sources.requiring(equalities);
            let mut scan_range = plan.range;
            if last_values_only(&stmt, plan.range) && tags_only(condition.as_ref(), &sources.schema)
            {
                if let Some(bound) = sources.last_value_bound()? {
                    scan_range.min = scan_range.min.max(bound);
                }
            }
            if let Some(crate::scan::Frame {
                df: mut frame,
                schema,
                stats,
                pinned: pins,
            }) = ex.frame_of(session, &name, sources, scan_range).await?
            {
                pinned.extend(pins);
                let files = stats.files.map(|f| f.join("\n"));
                if scan_range.min > plan.range.min {
                    frame = frame.filter(ident(TIME).gt_eq(lit(
                        ScalarValue::TimestampNanosecond(Some(scan_range.min), None),
                    )))?;
                }
                union.merge(&schema);
                loaded.push((name, frame, schema, files));
            }
        }
    }
    let mut series = Vec::new();
    for (name, frame, schema, files) in loaded {
        let reuse = Reuse {
            plans: files.as_deref().map(|f| (ex.plans(), f)),
            indexes: ex.indexes(),
        };
        series.extend(
            plan.run(
                &name,
                frame,
                &schema,
                &union,
                condition.as_ref(),
                ctx,
                reuse,
            )
            .await?,
        );
    }
    drop(pinned);
    let skip = stmt.soffset.unwrap_or(0) as usize;
    let take = stmt
        .slimit
        .filter(|l| *l > 0)
        .map_or(usize::MAX, |l| l as usize);
    Ok(series.into_iter().skip(skip).take(take).collect())
}

/// Runs a subquery and turns its series into one table per measurement: the series' tags become
/// tag columns, its value columns fields. An unbounded subquery gets the outer time range.
fn subquery_frames<'a>(
    ex: &'a Executor,
    inner: &'a SelectStatement,
    outer: TimeRange,
    default_db: &'a str,
    ctx: &'a QueryContext,
    session: &'a datafusion::prelude::SessionContext,
) -> std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Vec<(String, DataFrame, TableSchema)>, ExecError>>
            + Send
            + 'a,
    >,
> {
    Box::pin(async move {
        let mut inner = inner.clone();
        let (inner_range, _) =
            split_time_range(inner.condition.as_ref(), ctx.now.unwrap_or_else(now_nanos))?;
        if inner_range == TimeRange::ALL && outer != TimeRange::ALL {
            let time = || {
                Box::new(Expr::VarRef {
                    name: TIME.into(),
                    typ: None,
                })
            };
            let mut bounds = Vec::new();
            if outer.min != i64::MIN {
                bounds.push(Expr::Binary {
                    op: BinaryOp::GtEq,
                    lhs: time(),
                    rhs: Box::new(Expr::Integer(outer.min)),
                });
            }
            if outer.max != i64::MAX {
                bounds.push(Expr::Binary {
                    op: BinaryOp::LtEq,
                    lhs: time(),
                    rhs: Box::new(Expr::Integer(outer.max)),
                });
            }
            if let Some(c) = inner.condition.take() {
                bounds.push(Expr::Paren(Box::new(c)));
            }
            inner.condition = bounds.into_iter().reduce(|a, b| Expr::Binary {
                op: BinaryOp::And,
                lhs: Box::new(a),
                rhs: Box::new(b),
            });
        }
        let inner_ctx = QueryContext {
            epoch: Some("ns".into()),
            explain: None,
            ..ctx.clone()
        };
        let series = execute(ex, &inner, default_db, &inner_ctx).await?;
        let mut by_name: BTreeMap<String, Vec<Series>> = BTreeMap::new();
        for s in series {
            by_name
                .entry(s.name.clone().unwrap_or_default())
                .or_default()
                .push(s);
        }
        let mut out = Vec::new();
        for (name, series) in by_name {
            let (batch, schema) = series_to_batch(&series)?;
            out.push((name, session.read_batch(batch)?, schema));
        }
        Ok(out)
    })
}

/// Infers a column's type from its values where the series does not say.
fn infer_type(values: &[&Value]) -> FieldType {
    if values.iter().any(|v| v.is_string()) {
        FieldType::String
    } else if values.iter().any(|v| v.is_boolean()) {
        FieldType::Boolean
    } else if values.iter().any(|v| v.is_f64()) {
        FieldType::Float
    } else {
        FieldType::Integer
    }
}

/// Series of one measurement (times as integers) as one batch with tags as plain strings.
fn series_to_batch(series: &[Series]) -> Result<(RecordBatch, TableSchema), ExecError> {
    use datafusion::arrow::array::{
        BooleanArray, Float64Array, Int64Array, StringBuilder, TimestampNanosecondBuilder,
        UInt64Array,
    };
    use datafusion::arrow::datatypes::{Field, Schema};
    let mut schema = TableSchema::default();
    for s in series {
        schema
            .tags
            .extend(s.tags.iter().flat_map(|t| t.keys().cloned()));
    }
    let mut columns: Vec<(String, FieldType, Vec<Value>)> = Vec::new();
    let mut tag_values: BTreeMap<String, Vec<Option<String>>> = schema
        .tags
        .iter()
        .map(|t| (t.clone(), Vec::new()))
        .collect();
    let mut times = TimestampNanosecondBuilder::new();
    let mut rows = 0usize;
    for s in series {
        for (c, name) in s.columns.iter().enumerate().skip(1) {
            if !columns.iter().any(|(n, _, _)| n == name) {
                let vals: Vec<&Value> = s
                    .values
                    .iter()
                    .filter_map(|r| r.get(c))
                    .filter(|v| !v.is_null())
                    .collect();
                let ty = s
                    .types
                    .get(c - 1)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| infer_type(&vals));
                columns.push((name.clone(), ty, vec![Value::Null; rows]));
            }
        }
        for row in &s.values {
            times.append_value(row.first().and_then(Value::as_i64).unwrap_or(0));
            for (tag, vals) in tag_values.iter_mut() {
                vals.push(s.tags.as_ref().and_then(|t| t.get(tag)).cloned());
            }
            for (name, _, vals) in columns.iter_mut() {
                let idx = s.columns.iter().position(|c| c == name);
                vals.push(idx.and_then(|i| row.get(i)).cloned().unwrap_or(Value::Null));
            }
            rows += 1;
        }
    }
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (tag, vals) in &tag_values {
        fields.push(Field::new(tag, DataType::Utf8, true));
        let mut b = StringBuilder::new();
        for v in vals {
            b.append_option(v.as_deref());
        }
        arrays.push(std::sync::Arc::new(b.finish()));
    }
    for (name, ty, vals) in &columns {
        if schema.tags.contains(name) {
            continue;
        }
        schema.fields.insert(name.clone(), *ty);
        fields.push(Field::new(name, ty.arrow(), true));
        let array: ArrayRef = match ty {
            FieldType::Float => {
                std::sync::Arc::new(vals.iter().map(Value::as_f64).collect::<Float64Array>())
            }
            FieldType::Integer => {
                std::sync::Arc::new(vals.iter().map(Value::as_i64).collect::<Int64Array>())
            }
            FieldType::Unsigned => {
                std::sync::Arc::new(vals.iter().map(Value::as_u64).collect::<UInt64Array>())
            }
            FieldType::Boolean => {
                std::sync::Arc::new(vals.iter().map(Value::as_bool).collect::<BooleanArray>())
            }
            FieldType::String => {
                let mut b = StringBuilder::new();
                for v in vals {
                    b.append_option(v.as_str());
                }
                std::sync::Arc::new(b.finish())
            }
        };
        arrays.push(array);
    }
    fields.push(Field::new(
        TIME,
        DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
        false,
    ));
    arrays.push(std::sync::Arc::new(times.finish()));
    Ok((
        RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), arrays)?,
        schema,
    ))
}

/// `SELECT ... INTO target`: runs the selection and writes its rows as points (GROUP BY tags as
/// tags, columns as fields), answering with the number written.
async fn select_into(
    ex: &Executor,
    stmt: &SelectStatement,
    target: &crate::influxql::Measurement,
    default_db: &str,
    ctx: &QueryContext,
) -> Result<Vec<Series>, ExecError> {
    use line_protocol::{FieldValue, Point};
    use std::borrow::Cow;
    // `:MEASUREMENT`: each series goes to the measurement it came from.
    let name = match (&target.name, target.back_reference) {
        (_, true) => None,
        (Some(n), false) => Some(n.clone()),
        (None, false) => return Err(query_err("INTO needs a measurement name")),
    };
    let db = database_of(target.database.as_deref(), default_db)?;
    let rp = target.retention_policy.as_deref().unwrap_or("");
    let select = SelectStatement {
        into: None,
        ..stmt.clone()
    };
    let inner_ctx = QueryContext {
        epoch: Some("ns".into()),
        explain: None,
        ..ctx.clone()
    };
    let series = Box::pin(execute(ex, &select, default_db, &inner_ctx)).await?;
    let mut points: Vec<Point<'static>> = Vec::new();
    for s in &series {
        let mut tags: Vec<(Cow<'static, str>, Cow<'static, str>)> = s
            .tags
            .iter()
            .flatten()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (Cow::Owned(k.clone()), Cow::Owned(v.clone())))
            .collect();
        tags.sort();
        for row in &s.values {
            let mut fields = Vec::new();
            for (i, col) in s.columns.iter().enumerate().skip(1) {
                let v = &row[i];
                let ty = s
                    .types
                    .get(i - 1)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| infer_type(&[v]));
                let value = match (ty, v) {
                    (_, Value::Null) => continue,
                    (FieldType::Float, v) => v.as_f64().map(FieldValue::Float),
                    (FieldType::Integer, v) => v.as_i64().map(FieldValue::Integer),
                    (FieldType::Unsigned, v) => v.as_u64().map(FieldValue::UInteger),
                    (FieldType::Boolean, v) => v.as_bool().map(FieldValue::Boolean),
                    (FieldType::String, v) => v
                        .as_str()
                        .map(|s| FieldValue::String(Cow::Owned(s.to_string()))),
                };
                if let Some(value) = value {
                    fields.push((Cow::Owned(col.clone()), value));
                }
            }
            if fields.is_empty() {
                continue;
            }
            let time = row.first().and_then(Value::as_i64).unwrap_or(0);
            let Some(measurement) = name.clone().or_else(|| s.name.clone()) else {
                continue;
            };
            points.push(Point {
                measurement: Cow::Owned(measurement),
                tags: tags.clone(),
                fields,
                time,
            });
        }
    }
    let outcome = ex
        .writer()
        .write(db, rp, points, now_nanos())
        .await
        .map_err(|e| query_err(e.to_string()))?;
    if outcome.dropped > 0 {
        return Err(query_err(format!(
            "partial write: {} dropped={}",
            outcome.reason.unwrap_or_default(),
            outcome.dropped
        )));
    }
    Ok(vec![Series {
        name: Some("result".into()),
        columns: vec![TIME.into(), "written".into()],
        values: vec![vec![
            format_time(0, ctx.epoch.as_deref()),
            Value::from(outcome.written),
        ]],
        ..Default::default()
    }])
}

/// Inclusive time bounds in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min: i64,
    pub max: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        min: i64::MIN,
        max: i64::MAX,
    };
}

fn is_time_ref(e: &Expr) -> bool {
    matches!(e, Expr::VarRef { name, .. } if name.eq_ignore_ascii_case(TIME))
}

/// Evaluates a time literal: RFC3339 string, integer nanoseconds, duration, `now()` and
/// arithmetic on them.
fn time_value(e: &Expr, now: i64) -> Result<i64, ExecError> {
    match e {
        Expr::Integer(n) => Ok(*n),
        Expr::Number(n) => Ok(*n as i64),
        Expr::Duration(d) => Ok(*d),
        Expr::String(s) => {
            parse_rfc3339(s).ok_or_else(|| query_err(format!("invalid time: {s:?}")))
        }
        Expr::Call { name, args } if name == "now" && args.is_empty() => Ok(now),
        Expr::Paren(inner) => time_value(inner, now),
        Expr::Binary {
            op: BinaryOp::Add,
            lhs,
            rhs,
        } => Ok(time_value(lhs, now)?.saturating_add(time_value(rhs, now)?)),
        Expr::Binary {
            op: BinaryOp::Sub,
            lhs,
            rhs,
        } => Ok(time_value(lhs, now)?.saturating_sub(time_value(rhs, now)?)),
        other => Err(query_err(format!("invalid time expression: {other}"))),
    }
}

/// Parses RFC3339 (with or without fraction / offset) and plain dates.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return t.and_utc().timestamp_nanos_opt();
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)?
        .and_utc()
        .timestamp_nanos_opt()
}

/// Splits top-level `AND`ed time comparisons off the condition.
pub(crate) fn split_time_range(
    cond: Option<&Expr>,
    now: i64,
) -> Result<(TimeRange, Option<Expr>), ExecError> {
    let mut range = TimeRange::ALL;
    let Some(cond) = cond else {
        return Ok((range, None));
    };
    fn walk(
        e: &Expr,
        now: i64,
        range: &mut TimeRange,
        rest: &mut Vec<Expr>,
    ) -> Result<(), ExecError> {
        match e {
            Expr::Paren(inner) => walk(inner, now, range, rest),
            Expr::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => {
                walk(lhs, now, range, rest)?;
                walk(rhs, now, range, rest)
            }
            Expr::Binary { op, lhs, rhs }
                if op.is_comparison() && (is_time_ref(lhs) || is_time_ref(rhs)) =>
            {
                let (op, other) = if is_time_ref(lhs) {
                    (*op, rhs)
                } else {
                    (flip(*op), lhs)
                };
                let t = time_value(other, now)?;
                match op {
                    BinaryOp::Gt => range.min = range.min.max(t.saturating_add(1)),
                    BinaryOp::GtEq => range.min = range.min.max(t),
                    BinaryOp::Lt => range.max = range.max.min(t.saturating_sub(1)),
                    BinaryOp::LtEq => range.max = range.max.min(t),
                    BinaryOp::Eq => {
                        range.min = range.min.max(t);
                        range.max = range.max.min(t);
                    }
                    _ => return Err(query_err("invalid time comparison operator")),
                }
                Ok(())
            }
            other => {
                let mut has_time = false;
                other.walk(&mut |e| has_time |= is_time_ref(e));
                if has_time {
                    return Err(query_err("time conditions must be combined with AND"));
                }
                rest.push(other.clone());
                Ok(())
            }
        }
    }
    let mut rest = Vec::new();
    walk(cond, now, &mut range, &mut rest)?;
    let rest = rest.into_iter().reduce(|a, b| Expr::Binary {
        op: BinaryOp::And,
        lhs: Box::new(a),
        rhs: Box::new(b),
    });
    Ok((range, rest))
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        o => o,
    }
}

/// The InfluxQL aggregates and selectors this engine runs.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "mean",
    "median",
    "spread",
    "stddev",
    "min",
    "max",
    "first",
    "last",
    "percentile",
    "mode",
    "integral",
    "distinct",
    "top",
    "bottom",
    "sample",
];

/// Which points a multi-row selector keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pick {
    /// `top`: the largest values.
    Largest,
    /// `bottom`: the smallest values.
    Smallest,
    /// `sample`: points drawn at random by a generator seeded with the group, so the same data
    /// always gives the same sample (1.x draws a new one each time).
    Sample,
}

/// A column of a statement whose `sample()` shares rows with other calls: a sample (column
/// name, field, n) or an aggregate (column name, call).
enum Zipped {
    Sample(String, String, usize),
    Aggregate(String, Expr),
}

/// `top(field[, tag...], n)` / `bottom(...)` / `sample(field, n)`: the call's field, tag
/// arguments and number of points.
struct TopCall {
    pick: Pick,
    field: String,
    tags: Vec<String>,
    n: usize,
}

fn top_call(e: &Expr) -> Result<Option<TopCall>, ExecError> {
    let Expr::Call { name, args } = e else {
        return Ok(None);
    };
    if name == "sample" {
        return sample_call(args).map(Some);
    }
    if name != "top" && name != "bottom" {
        return Ok(None);
    }
    if args.len() < 2 {
        return Err(query_err(format!(
            "invalid number of arguments for {name}, expected at least 2, got {}",
            args.len()
        )));
    }
    let field = match &args[0] {
        Expr::VarRef { name, .. } => name.clone(),
        other => {
            return Err(query_err(format!(
                "expected first argument to be a field in {name}(), found {other}"
            )));
        }
    };
    let n = match args.last() {
        Some(Expr::Integer(n)) if *n >= 1 => *n as usize,
        Some(Expr::Integer(n)) => {
            return Err(query_err(format!(
                "limit ({n}) in {name} function must be at least 1"
            )));
        }
        _ => {
            return Err(query_err(format!(
                "expected integer as last argument in {name}(), found {}",
                args[args.len() - 1]
            )));
        }
    };
    let mut tags = Vec::new();
    for a in &args[1..args.len() - 1] {
        match a {
            Expr::VarRef { name, .. } => tags.push(name.clone()),
            other => {
                return Err(query_err(format!(
                    "only fields or tags are allowed in {name}(), found {other}"
                )));
            }
        }
    }
    Ok(Some(TopCall {
        pick: if name == "bottom" {
            Pick::Smallest
        } else {
            Pick::Largest
        },
        field,
        tags,
        n,
    }))
}

/// `sample(field, n)`, checked as 1.x checks it (the count first; any n above 0 works, whatever
/// 1.x's message says).
fn sample_call(args: &[Expr]) -> Result<TopCall, ExecError> {
    if args.len() != 2 {
        return Err(query_err(format!(
            "invalid number of arguments for sample, expected 2, got {}",
            args.len()
        )));
    }
    let n = match &args[1] {
        Expr::Integer(n) if *n > 0 => *n as usize,
        Expr::Integer(n) => {
            return Err(query_err(format!(
                "sample window must be greater than 1, got {n}"
            )));
        }
        _ => return Err(query_err("expected integer argument in sample()")),
    };
    let field = match &args[0] {
        Expr::VarRef { name, .. } => name.clone(),
        other => {
            return Err(query_err(format!(
                "sample() of {other} is not supported by Fletch yet: give one field"
            )));
        }
    };
    Ok(TopCall {
        pick: Pick::Sample,
        field,
        tags: Vec::new(),
        n,
    })
}
const SELECTORS: &[&str] = &["min", "max", "first", "last", "percentile"];
/// Scalar functions, applied to raw values or to aggregates.
const MATH: &[&str] = &[
    "abs", "ceil", "floor", "round", "exp", "ln", "log", "log2", "log10", "pow", "sqrt", "sin",
    "cos", "tan", "asin", "acos", "atan", "atan2",
];
/// Functions over the ordered values of a series (after aggregation, when nested).
const TRANSFORMS: &[&str] = &[
    "derivative",
    "non_negative_derivative",
    "difference",
    "non_negative_difference",
    "cumulative_sum",
    "moving_average",
    "elapsed",
];
/// InfluxQL functions Fletch does not run yet.
const NOT_YET: &[&str] = &[
    "holt_winters",
    "holt_winters_with_fit",
    "chande_momentum_oscillator",
    "exponential_moving_average",
    "double_exponential_moving_average",
    "kaufmans_efficiency_ratio",
    "kaufmans_adaptive_moving_average",
    "triple_exponential_moving_average",
    "triple_exponential_derivative",
    "relative_strength_index",
];

use crate::plan::transform::TransformKind as Transform;

/// What a statement asks for, independent of the measurement it runs on.
struct Plan<'a> {
    stmt: &'a SelectStatement,
    /// The statement's fields with transformations replaced by their argument (named after the
    /// transformation).
    fields: Vec<crate::influxql::Field>,
    transforms: Vec<Option<Transform>>,
    range: TimeRange,
    aggregate: bool,
    interval: Option<(i64, i64)>,
    timezone: Option<chrono_tz::Tz>,
}

fn has_call(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        found |= matches!(x, Expr::Call { name, .. } if AGGREGATES.contains(&name.as_str()))
    });
    found
}

fn duration_arg(args: &[Expr], i: usize, default: i64, func: &str) -> Result<i64, ExecError> {
    match args.get(i) {
        None => Ok(default),
        Some(Expr::Duration(d)) if *d > 0 => Ok(*d),
        Some(other) => Err(query_err(format!(
            "second argument to {func} must be a duration, got {other}"
        ))),
    }
}

/// Splits `derivative(x, 1s)` and friends into their argument and the transformation.
fn split_transform(
    f: &crate::influxql::Field,
) -> Result<(crate::influxql::Field, Option<Transform>), ExecError> {
    let Expr::Call { name, args } = &f.expr else {
        return Ok((f.clone(), None));
    };
    if !TRANSFORMS.contains(&name.as_str()) {
        return Ok((f.clone(), None));
    }
    let Some(inner) = args.first() else {
        return Err(query_err(format!(
            "invalid number of arguments for {name}, expected at least 1, got 0"
        )));
    };
    let t = match name.as_str() {
        "derivative" | "non_negative_derivative" => Transform::Derivative {
            unit: duration_arg(args, 1, 1_000_000_000, name)?,
            non_negative: name.starts_with("non_negative"),
        },
        "difference" | "non_negative_difference" => Transform::Difference {
            non_negative: name.starts_with("non_negative"),
        },
        "cumulative_sum" => Transform::CumulativeSum,
        "elapsed" => Transform::Elapsed(duration_arg(args, 1, 1, name)?),
        _ => match args.get(1) {
            Some(Expr::Integer(n)) if *n > 1 => Transform::MovingAverage(*n as usize),
            _ => return Err(query_err("moving_average window must be greater than 1")),
        },
    };
    if has_call(inner) && !matches!(inner, Expr::Call { .. }) {
        return Err(query_err(format!(
            "{name} takes a field or an aggregate function"
        )));
    }
    Ok((
        crate::influxql::Field {
            expr: inner.clone(),
            alias: Some(f.alias.clone().unwrap_or_else(|| name.clone())),
        },
        Some(t),
    ))
}

/// The column name 1.x gives an expression without an alias.
fn column_name(e: &Expr) -> String {
    match e {
        Expr::VarRef { name, .. } => name.clone(),
        Expr::Call { name, .. } => name.clone(),
        Expr::Paren(inner) => column_name(inner),
        Expr::Binary { lhs, rhs, .. } => {
            let parts: Vec<String> = [column_name(lhs), column_name(rhs)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            parts.join("_")
        }
        _ => String::new(),
    }
}

impl<'a> Plan<'a> {
    fn new(stmt: &'a SelectStatement, range: TimeRange) -> Result<Self, ExecError> {
        let mut fields = Vec::with_capacity(stmt.fields.len());
        let mut transforms = Vec::with_capacity(stmt.fields.len());
        for f in &stmt.fields {
            let (inner, t) = split_transform(f)?;
            fields.push(inner);
            transforms.push(t);
        }
        let with_transform = transforms.iter().filter(|t| t.is_some()).count();
        if with_transform > 0 && with_transform < fields.len() {
            return Err(query_err(
                "mixing aggregate and non-aggregate queries is not supported",
            ));
        }
        for f in &stmt.fields {
            let mut bad = None;
            f.expr.walk(&mut |e| {
                if let Expr::Call { name, .. } = e {
                    let known = name == "now"
                        || AGGREGATES.contains(&name.as_str())
                        || MATH.contains(&name.as_str())
                        || TRANSFORMS.contains(&name.as_str());
                    if !known {
                        bad.get_or_insert(name.clone());
                    }
                }
            });
            if let Some(name) = bad {
                return Err(query_err(if NOT_YET.contains(&name.as_str()) {
                    format!("function {name}() is not supported by Fletch yet")
                } else {
                    format!("undefined function {name}()")
                }));
            }
        }
        let tops = fields
            .iter()
            .filter(
                |f| matches!(&f.expr, Expr::Call { name, .. } if name == "top" || name == "bottom"),
            )
            .count();
        let calls = fields.iter().filter(|f| has_call(&f.expr)).count();
        let samples = fields
            .iter()
            .filter(|f| matches!(&f.expr, Expr::Call { name, .. } if name == "sample"))
            .count();
        if samples > 0
            && calls > samples
            && fields.iter().any(|f| matches!(f.expr, Expr::VarRef { .. }))
        {
            return Err(query_err(
                "sample() with other functions cannot select fields or tags beside them in Fletch yet",
            ));
        }
        if tops > 0 || samples > 0 {
            if tops > 0 && calls > 1 {
                let name = if fields
                    .iter()
                    .any(|f| matches!(&f.expr, Expr::Call { name, .. } if name == "top"))
                {
                    "top"
                } else {
                    "bottom"
                };
                return Err(query_err(format!(
                    "selector function {name}() cannot be combined with other functions"
                )));
            }
        } else if calls > 0 && calls < fields.len() {
            return Err(query_err(
                "mixing aggregate and non-aggregate queries is not supported",
            ));
        }
        let distinct = fields
            .iter()
            .any(|f| matches!(&f.expr, Expr::Call { name, .. } if name == "distinct"));
        if distinct && fields.len() > 1 {
            return Err(query_err(
                "aggregate function distinct() cannot be combined with other functions or fields",
            ));
        }
        let mut interval = None;
        for d in &stmt.dimensions {
            if let Dimension::Time {
                interval: i,
                offset,
            } = d
            {
                if *i <= 0 {
                    return Err(query_err("group by time interval must be positive"));
                }
                if offset == &Some(i64::MIN) {
                    return Err(query_err(
                        "GROUP BY time(..., now()) is not supported by Fletch yet",
                    ));
                }
                interval = Some((*i, offset.unwrap_or(0).rem_euclid(*i)));
            }
        }
        if interval.is_some() && calls == 0 {
            return Err(query_err(
                "GROUP BY requires at least one aggregate function",
            ));
        }
        if calls > 0 && with_transform > 0 && interval.is_none() {
            let name = stmt.fields.iter().find_map(|f| match &f.expr {
                Expr::Call { name, .. } => Some(name.clone()),
                _ => None,
            });
            return Err(query_err(format!(
                "{} aggregate requires a GROUP BY interval",
                name.unwrap_or_default()
            )));
        }
        if matches!(stmt.fill, Some(Fill::Linear)) && interval.is_none() {
            return Err(query_err("fill(linear) requires GROUP BY time"));
        }
        let timezone = match &stmt.timezone {
            Some(name) => Some(
                name.parse::<chrono_tz::Tz>()
                    .map_err(|_| query_err(format!("unable to find time zone {name}")))?,
            ),
            None => None,
        };
        // In a time zone, buckets start at local boundaries: shift the origin by the zone's
        // offset (taken at the start of the range).
        if let (Some(tz), Some((i, off))) = (timezone, interval) {
            use chrono::{Offset, TimeZone};
            let at = if range.min == i64::MIN { 0 } else { range.min };
            let utc = chrono::DateTime::from_timestamp_nanos(at);
            let shift = tz
                .offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc() as i64
                * 1_000_000_000;
            interval = Some((i, (off - shift).rem_euclid(i)));
        }
        // A transformation of GROUP BY time buckets looks back as far as it needs points:
        // 1.x moves the start (the end, in descending order) that many buckets out, so that
        // the first bucket of the range gets a value too.
        let mut range = range;
        if let (true, Some((i, _))) = (calls > 0, interval) {
            let lookback = transforms
                .iter()
                .flatten()
                .map(|t| match t {
                    Transform::Derivative { .. } | Transform::Difference { .. } => 1,
                    Transform::MovingAverage(n) => *n as i64 - 1,
                    Transform::CumulativeSum | Transform::Elapsed(_) => 0,
                })
                .max()
                .unwrap_or(0);
            let by = i.saturating_mul(lookback);
            if stmt.order_desc && range.max != i64::MAX {
                range.max = range.max.saturating_add(by);
            } else if !stmt.order_desc && range.min != i64::MIN {
                range.min = range.min.saturating_sub(by);
            }
        }
        Ok(Self {
            stmt,
            fields,
            transforms,
            range,
            aggregate: calls > 0,
            interval,
            timezone,
        })
    }

    /// The tag keys the result is grouped by, for a measurement with these tags.
    fn group_tags(&self, schema: &TableSchema) -> Result<Vec<String>, ExecError> {
        let mut out = BTreeSet::new();
        for d in &self.stmt.dimensions {
            match d {
                Dimension::Tag(t) => {
                    out.insert(t.clone());
                }
                Dimension::Wildcard => out.extend(schema.tags.iter().cloned()),
                Dimension::Regex(re) => {
                    let re = regex::Regex::new(re).map_err(|e| query_err(e.to_string()))?;
                    out.extend(schema.tags.iter().filter(|t| re.is_match(t)).cloned());
                }
                Dimension::Time { .. } => {}
            }
        }
        Ok(out.into_iter().collect())
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        measurement: &str,
        frame: LazyFrame,
        schema: &TableSchema,
        all_sources: &TableSchema,
        condition: Option<&Expr>,
        qctx: &QueryContext,
        reuse: Reuse<'_>,
    ) -> Result<Vec<Series>, ExecError> {
        let time_col = || ident(TIME);
        let now = qctx.now.unwrap_or_else(now_nanos);
        let filters = self.scan_filters(schema, condition)?;
        let group_tags = self.group_tags(schema)?;
        // A statement of a template already planned runs its kept plan with its own values,
        // without a logical plan. Debug builds then build the logical plan anyway and check
        // that the template derived its shape and shapes the answer as it would.
        let mut templated = Templated::No;
        if let (Some((cache, files)), None, Some(session)) =
            (reuse.plans, qctx.explain, frame.files_session())
        {
            let partitions = session.state_ref().read().config().target_partitions();
            let (key, params) = self.template_key(
                measurement,
                files,
                partitions,
                schema,
                all_sources,
                &filters,
            )?;
            if let Some(t) = cache.template(&key) {
                let ranges = vec![self.gap_range(now); t.gapfills()];
                let shape = Shape::of_template(&t, params.clone(), ranges);
                let task = session.task_ctx();
                if let Some(batches) = run_kept(cache, &shape, reuse.indexes, &task).await? {
                    cache.template_hit();
                    let (rows, types) = collect_typed(batches, t.group_tags.len(), t.ncols())?;
                    let series = self.into_series(
                        measurement,
                        &t.group_tags,
                        t.names.clone(),
                        types,
                        rows,
                        qctx,
                        true,
                    );
                    if !cfg!(debug_assertions) {
                        return Ok(series);
                    }
                    templated = Templated::Verify(Verify {
                        shape,
                        files,
                        partitions,
                        template: t,
                        series,
                    });
                }
            }
            if matches!(templated, Templated::No) {
                templated = Templated::Keep {
                    cache,
                    key,
                    params,
                    now,
                };
            }
        }
        let mut df = frame.build()?;
        for f in &filters {
            df = df.filter(f.clone())?;
        }
        let tag_expr = |t: &String| -> DfExpr {
            if schema.tags.contains(t) {
                ident(t)
            } else {
                lit(ScalarValue::Utf8(None))
            }
        };

        // Output columns (after time): name and DataFusion expression; which of them are fields.
        let mut columns: Vec<(String, DfExpr)> = Vec::new();
        let mut is_field: Vec<bool> = Vec::new();
        // The statement field each column comes from (for its transformation).
        let mut sources: Vec<usize> = Vec::new();
        let mut selector_time: Option<DfExpr> = None;
        for (i, f) in self.fields.iter().enumerate() {
            for (name, e, field) in self.expand_field(f, schema, all_sources, &group_tags)? {
                columns.push((name, e));
                is_field.push(field);
                sources.push(i);
            }
        }
        if columns.is_empty() {
            return Ok(vec![]);
        }
        dedup_names(&mut columns);

        let rows: Vec<(Vec<Option<String>>, i64, Vec<Value>)>;
        let types: Vec<Option<FieldType>>;
        if !self.aggregate {
            let mut select = vec![time_ns().alias("__time")];
            for (i, t) in group_tags.iter().enumerate() {
                select.push(tag_expr(t).alias(format!("__tag{i}")));
            }
            let field_names: Vec<String> = (0..columns.len()).map(|i| format!("__c{i}")).collect();
            for (i, (_, e)) in columns.iter().enumerate() {
                select.push(e.clone().alias(&field_names[i]));
            }
            // Keep the other tags for ordering ties (dropped again below).
            for t in schema.tags.iter().filter(|t| !group_tags.contains(t)) {
                select.push(ident(t).alias(format!("__keep_{t}")));
            }
            df = frame::select(df, select)?;
            // A row whose selected fields are all null is not a point of this selection; a
            // selection of tags alone selects nothing (1.x).
            let any_field = field_names
                .iter()
                .zip(&is_field)
                .filter(|(_, f)| **f)
                .map(|(n, _)| ident(&n).is_not_null())
                .reduce(|a, b| a.or(b));
            match any_field {
                Some(any) => df = df.filter(any)?,
                None => return Ok(vec![]),
            }
            // Points at the same time come in series key order, as 1.x merges series: the
            // remaining tags, in key order, break the tie (hidden columns after the values).
            let tie_breakers: Vec<&String> = schema
                .tags
                .iter()
                .filter(|t| !group_tags.contains(t))
                .collect();
            if !tie_breakers.is_empty() {
                let mut with_ties: Vec<DfExpr> = vec![col("__time")];
                with_ties.extend((0..group_tags.len()).map(|i| col(format!("__tag{i}"))));
                with_ties.extend(field_names.iter().map(|n| col(n.as_str())));
                with_ties.extend(
                    tie_breakers
                        .iter()
                        .enumerate()
                        .map(|(i, t)| ident(&format!("__keep_{t}")).alias(format!("__ord{i}"))),
                );
                df = frame::select(df, with_ties)?;
            }
            let ties: Vec<String> = (0..tie_breakers.len())
                .map(|i| format!("__ord{i}"))
                .collect();
            df = self.transform_and_sort(df, group_tags.len(), &sources, &ties)?;
            if let Some(analyze) = qctx.explain {
                return explain(df, measurement, analyze, reuse).await;
            }
            match self
                .collect_answer(df, reuse, templated, &group_tags, &columns)
                .await?
            {
                Answer::Rows(r, t) => (rows, types) = (r, t),
                Answer::FromTemplate(series) => return Ok(series),
            }
        } else if let Some(columns) = self.zipped_samples(schema)? {
            return self
                .run_zipped(measurement, df, schema, &group_tags, columns, qctx, reuse)
                .await;
        } else if let Some(top) = self
            .fields
            .iter()
            .find_map(|f| top_call(&f.expr).transpose())
            .transpose()?
        {
            return self
                .run_top(measurement, df, schema, &group_tags, top, qctx, reuse)
                .await;
        } else {
            let mut group = Vec::new();
            if let Some((interval, offset)) = self.interval {
                group.push(TimeBucket::call(time_col(), interval, offset).alias("__time"));
            }
            for (i, t) in group_tags.iter().enumerate() {
                group.push(tag_expr(t).alias(format!("__tag{i}")));
            }
            let agg_fields = expand_aggregate_fields(&self.fields, schema)?;
            if agg_fields.is_empty() {
                return Ok(vec![]);
            }
            let time_value = || -> DfExpr {
                lit(if self.range.min == i64::MIN {
                    0
                } else {
                    self.range.min
                })
                .alias("__time")
            };
            let mut ties = Vec::new();
            let distinct_field = match &agg_fields[..] {
                [(_, _, Expr::Call { name, args })] if name == "distinct" => {
                    Some(field_arg(args, schema)?)
                }
                _ => None,
            };
            if let Some(field) = distinct_field {
                // One row per distinct value, in order of first appearance: group by the value.
                if !schema.fields.contains_key(&field) {
                    return Ok(vec![]);
                }
                df = df.filter(ident(&field).is_not_null())?;
                let mut by = group.clone();
                by.push(ident(&field).alias("__c0"));
                df = df.aggregate(by, vec![agg::min(time_ns()).alias("__first")])?;
                let mut select = vec![if self.interval.is_some() {
                    col("__time")
                } else {
                    time_value()
                }];
                select.extend((0..group_tags.len()).map(|i| col(format!("__tag{i}"))));
                select.push(col("__c0"));
                select.push(col("__first"));
                df = frame::select(df, select)?;
                // In order of first appearance, equal times by value (1.x).
                ties.push("__first".to_string());
                ties.push("__c0".to_string());
            } else {
                let mut lowered = Lowered {
                    window: self.interval,
                    ..Default::default()
                };
                let mut outputs: Vec<DfExpr> = Vec::new();
                for (i, (_, _, e)) in agg_fields.iter().enumerate() {
                    outputs.push(lower_aggregate(e, schema, &mut lowered, i, true)?);
                }
                for field in &lowered.neighbours {
                    df = with_neighbours(df, field, &group)?;
                }
                let mut aggs = lowered.aggs;
                // A lone selector reports the time of the point it selected.
                let single_selector = self.interval.is_none()
                    && self.fields.len() == 1
                    && agg_fields.len() == 1
                    && self.transforms[0].is_none()
                    && matches!(&self.fields[0].expr, Expr::Call { name, .. } if SELECTORS.contains(&name.as_str()));
                if single_selector {
                    if let Expr::Call { name, args } = &agg_fields[0].2 {
                        let field = field_arg(args, schema)?;
                        if !schema.fields.contains_key(&field) {
                            return Ok(vec![]);
                        }
                        let time = time_ns();
                        let picked = if name == "percentile" {
                            InfluxAggregate::percentile(percentile_arg(args)?, Output::Time)
                                .udaf()
                                .call(vec![ident(&field), time])
                        } else {
                            selector(name, &field, Output::Time)?
                        };
                        aggs.push(picked.alias("__seltime"));
                        selector_time = Some(col("__seltime"));
                    }
                }
                if aggs.is_empty() {
                    // No argument is a field of this measurement: nothing to aggregate (1.x).
                    return Ok(vec![]);
                }
                // Without GROUP BY time, a group none of whose rows has a value of a field
                // the aggregates read is not in the result (1.x iterates the fields' points).
                let has_values = if self.interval.is_none() {
                    let mut read = BTreeSet::new();
                    for (_, _, e) in &agg_fields {
                        e.walk(&mut |x| {
                            if let Expr::VarRef { name, .. } = x {
                                if schema.fields.contains_key(name) {
                                    read.insert(name.clone());
                                }
                            }
                        });
                    }
                    read.iter()
                        .map(|f| ident(f).is_not_null())
                        .reduce(|a, b| a.or(b))
                } else {
                    None
                };
                if let Some(any) = &has_values {
                    aggs.push(
                        agg::count(lit(1))
                            .filter(any.clone())
                            .build()?
                            .alias("__has"),
                    );
                }
                df = df.aggregate(group.clone(), aggs)?;
                if has_values.is_some() {
                    df = df.filter(col("__has").gt(lit(0i64)))?;
                }
                let mut select = Vec::new();
                select.push(match (&selector_time, self.interval) {
                    (Some(t), _) => t.clone().alias("__time"),
                    (None, Some(_)) => col("__time"),
                    (None, None) => time_value(),
                });
                for i in 0..group_tags.len() {
                    select.push(col(format!("__tag{i}")));
                }
                for (i, e) in outputs.into_iter().enumerate() {
                    select.push(e.alias(format!("__c{i}")));
                }
                df = frame::select(df, select)?;
            }
            if let Some((interval, offset)) = self.interval {
                df = self.gap_fill(
                    df,
                    group_tags.len(),
                    agg_fields.len(),
                    interval,
                    offset,
                    now,
                )?;
            }
            let sources: Vec<usize> = agg_fields.iter().map(|(_, f, _)| *f).collect();
            df = self.transform_and_sort(df, group_tags.len(), &sources, &ties)?;
            if let Some(analyze) = qctx.explain {
                return explain(df, measurement, analyze, reuse).await;
            }
            columns = agg_fields
                .iter()
                .map(|(name, _, _)| (name.clone(), lit(0)))
                .collect();
            dedup_names(&mut columns);
            match self
                .collect_answer(df, reuse, templated, &group_tags, &columns)
                .await?
            {
                Answer::Rows(r, t) => (rows, types) = (r, t),
                Answer::FromTemplate(series) => return Ok(series),
            }
        }

        let mut names = vec![TIME.to_string()];
        names.extend(columns.into_iter().map(|(n, _)| n));
        Ok(self.into_series(measurement, &group_tags, names, types, rows, qctx, true))
    }

    /// Runs a statement's finished `df` (its answer's value columns `columns`, after the
    /// group tags) and keeps its template; or, for a statement that ran from its template
    /// (debug builds), checks the template against `df` and answers as it did.
    async fn collect_answer(
        &self,
        df: DataFrame,
        reuse: Reuse<'_>,
        templated: Templated<'_>,
        group_tags: &[String],
        columns: &[(String, DfExpr)],
    ) -> Result<Answer, ExecError> {
        let ncols = columns.len();
        let names: Vec<String> = std::iter::once(TIME.to_string())
            .chain(columns.iter().map(|(n, _)| n.clone()))
            .collect();
        let keep = match templated {
            Templated::Verify(v) => {
                return Ok(Answer::FromTemplate(v.check(&df, group_tags, &names)?));
            }
            Templated::Keep {
                cache,
                key,
                params,
                now,
            } => Some((cache, key, params, now)),
            Templated::No => None,
        };
        let (batches, shape) = collect_shaped(df, reuse).await?;
        if let (Some((cache, key, params, now)), Some(shape)) = (keep, shape) {
            let t = Template::new(&shape, group_tags.to_vec(), names);
            let ranges = vec![self.gap_range(now); t.gapfills()];
            cache.keep_template(key, t, &shape, &params, &ranges);
        }
        let (rows, types) = collect_typed(batches, group_tags.len(), ncols)?;
        Ok(Answer::Rows(rows, types))
    }

    /// The filters on the scan, in the order they are applied: the time range's bounds, then
    /// the condition. Their literals are what a kept plan binds ([`crate::plan_cache`]).
    fn scan_filters(
        &self,
        schema: &TableSchema,
        condition: Option<&Expr>,
    ) -> Result<Vec<DfExpr>, ExecError> {
        let time = |t: i64| lit(ScalarValue::TimestampNanosecond(Some(t), None));
        let mut filters = Vec::new();
        if self.range.min != i64::MIN {
            filters.push(ident(TIME).gt_eq(time(self.range.min)));
        }
        if self.range.max != i64::MAX {
            filters.push(ident(TIME).lt_eq(time(self.range.max)));
        }
        if let Some(c) = condition {
            filters.push(to_df(c, schema, true)?);
        }
        Ok(filters)
    }

    /// GapFill's first and last time: the query's range, up to `now` when it has no end.
    fn gap_range(&self, now: i64) -> (Option<i64>, i64) {
        let start = (self.range.min != i64::MIN).then_some(self.range.min);
        let end = if self.range.max == i64::MAX {
            now
        } else {
            self.range.max
        };
        (start, end)
    }

    /// The statement's template key, for one measurement read from `files` in a session of
    /// `partitions` partitions, and the values its scan `filters` hold (outermost filter first,
    /// as a shape takes them out). The key holds everything the logical plan is built from
    /// except those values and GapFill's range: the statement without its condition, the plan's
    /// derived interval and open ends, the schemas, and the filters with their literals masked.
    /// The time of a row of an aggregate without `GROUP BY time` is the range's start, a value
    /// outside the filters: it is in the key.
    #[allow(clippy::too_many_arguments)]
    fn template_key(
        &self,
        measurement: &str,
        files: &str,
        partitions: usize,
        schema: &TableSchema,
        all_sources: &TableSchema,
        filters: &[DfExpr],
    ) -> Result<(String, Vec<ScalarValue>), ExecError> {
        use std::fmt::Write;
        let SelectStatement {
            fields,
            into,
            sources,
            condition: _,
            dimensions,
            fill,
            order_desc,
            limit,
            offset,
            slimit,
            soffset,
            timezone,
        } = self.stmt;
        let mut key =
            format!("{partitions}\n{files}\n{measurement}\n{schema:?}\n{all_sources:?}\n");
        let _ = writeln!(
            key,
            "{fields:?} {into:?} {sources:?} {dimensions:?} {fill:?} {order_desc} {limit:?} \
             {offset:?} {slimit:?} {soffset:?} {timezone:?}"
        );
        let row_time = (self.aggregate && self.interval.is_none()).then_some(self.range.min);
        let _ = writeln!(
            key,
            "{:?} {} {} {row_time:?}",
            self.interval,
            self.range.min == i64::MIN,
            self.range.max == i64::MAX
        );
        let mut params = Vec::new();
        for f in filters.iter().rev() {
            let masked = crate::plan_cache::mask(f, &mut params)?;
            let _ = writeln!(key, "{masked}");
        }
        Ok((key, params))
    }

    /// Splits rows into series by their tag values, formats the times, and applies LIMIT and
    /// OFFSET inside each series unless the plan did (`limited`).
    #[allow(clippy::too_many_arguments)]
    fn into_series(
        &self,
        measurement: &str,
        group_tags: &[String],
        columns: Vec<String>,
        types: Vec<Option<FieldType>>,
        rows: Rows,
        qctx: &QueryContext,
        limited: bool,
    ) -> Vec<Series> {
        let mut by_tags: BTreeMap<Vec<Option<String>>, Vec<Vec<Value>>> = BTreeMap::new();
        for (tags, t, vals) in rows {
            let mut row = Vec::with_capacity(vals.len() + 1);
            row.push(match (self.timezone, qctx.epoch.as_deref()) {
                (Some(tz), None) => format_time_in(t, tz),
                _ => format_time(t, qctx.epoch.as_deref()),
            });
            row.extend(vals);
            by_tags.entry(tags).or_default().push(row);
        }
        let (offset, limit) = if limited {
            (0, usize::MAX)
        } else {
            (
                self.stmt.offset.unwrap_or(0) as usize,
                self.stmt
                    .limit
                    .filter(|l| *l > 0)
                    .map_or(usize::MAX, |l| l as usize),
            )
        };
        let grouped = !self
            .stmt
            .dimensions
            .iter()
            .all(|d| matches!(d, Dimension::Time { .. }));
        let mut out = Vec::new();
        // 1.x walks series in descending key order too when time goes backwards.
        let by_tags: Box<dyn Iterator<Item = _>> = if self.stmt.order_desc {
            Box::new(by_tags.into_iter().rev())
        } else {
            Box::new(by_tags.into_iter())
        };
        for (tags, values) in by_tags {
            let values: Vec<Vec<Value>> = values.into_iter().skip(offset).take(limit).collect();
            if values.is_empty() {
                continue;
            }
            let tags = grouped.then(|| {
                group_tags
                    .iter()
                    .cloned()
                    .zip(tags.into_iter().map(|v| v.unwrap_or_default()))
                    .collect()
            });
            out.push(Series {
                name: Some(measurement.to_string()),
                tags,
                columns: columns.clone(),
                values,
                partial: false,
                types: types.clone(),
            });
        }
        out
    }

    /// The columns of a `sample()` that shares its rows with other calls (`sample(*, n)`,
    /// `sample(/re/, n)`, several samples, or samples beside aggregates); `None` for any other
    /// statement.
    fn zipped_samples(&self, schema: &TableSchema) -> Result<Option<Vec<Zipped>>, ExecError> {
        let is_sample = |e: &Expr| matches!(e, Expr::Call { name, .. } if name == "sample");
        let samples = self.fields.iter().filter(|f| is_sample(&f.expr)).count();
        let calls = self.fields.iter().filter(|f| has_call(&f.expr)).count();
        let spread = self.fields.iter().any(|f| {
            matches!(&f.expr, Expr::Call { name, args } if name == "sample"
                && matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))))
        });
        if samples == 0 || (calls == 1 && !spread) {
            return Ok(None);
        }
        let mut out = Vec::new();
        for f in &self.fields {
            let Expr::Call { name, args } = &f.expr else {
                continue;
            };
            if name != "sample" {
                let col = f.alias.clone().unwrap_or_else(|| column_name(&f.expr));
                out.push(Zipped::Aggregate(col, f.expr.clone()));
                continue;
            }
            let (matcher, n) = match (args.first(), args.get(1)) {
                (Some(Expr::Wildcard(_)), Some(Expr::Integer(n))) if *n > 0 => (None, *n as usize),
                (Some(Expr::Regex(r)), Some(Expr::Integer(n))) if *n > 0 => (
                    Some(regex::Regex::new(r).map_err(|e| query_err(e.to_string()))?),
                    *n as usize,
                ),
                _ => {
                    let call = sample_call(args)?;
                    let col = f.alias.clone().unwrap_or_else(|| "sample".to_string());
                    out.push(Zipped::Sample(col, call.field, call.n));
                    continue;
                }
            };
            let prefix = f.alias.clone().unwrap_or_else(|| "sample".to_string());
            for field in schema.fields.keys() {
                if matcher.as_ref().is_none_or(|re| re.is_match(field)) {
                    out.push(Zipped::Sample(
                        format!("{prefix}_{field}"),
                        field.clone(),
                        n,
                    ));
                }
            }
        }
        Ok(Some(out))
    }

    /// Samples and aggregates side by side, as 1.x lines them up: per group (time bucket and
    /// tags), the k-th row holds the k-th point of every sample (each drawn on its own) and
    /// the aggregates in the first row. Planned as one frame per sample and one for the
    /// aggregates, numbered by `row_number()` and joined on the group and that number.
    async fn run_zipped(
        &self,
        measurement: &str,
        df: DataFrame,
        schema: &TableSchema,
        group_tags: &[String],
        columns: Vec<Zipped>,
        qctx: &QueryContext,
        reuse: Reuse<'_>,
    ) -> Result<Vec<Series>, ExecError> {
        use datafusion::common::JoinType;
        use datafusion::functions_window::expr_fn::row_number;
        let as_text = |e: DfExpr| datafusion::logical_expr::cast(e, DataType::Utf8);
        let tag = |t: &String| -> DfExpr {
            if schema.tags.contains(t) {
                as_text(ident(t))
            } else {
                lit(ScalarValue::Utf8(None))
            }
        };
        // The group: the time bucket (or the range's start) and the tags.
        let bucket = match self.interval {
            Some((interval, offset)) => TimeBucket::call(ident(TIME), interval, offset),
            None => lit(if self.range.min == i64::MIN {
                0
            } else {
                self.range.min
            }),
        };
        let mut group = vec![bucket.alias("__g0")];
        group.extend(
            group_tags
                .iter()
                .enumerate()
                .map(|(i, t)| tag(t).alias(format!("__g{}", i + 1))),
        );
        let keys: Vec<String> = (0..group.len()).map(|i| format!("__g{i}")).collect();
        let key_cols = || keys.iter().map(|k| col(k.as_str())).collect::<Vec<_>>();
        // One frame per part, its columns suffixed with the part's number.
        let mut parts: Vec<DataFrame> = Vec::new();
        let mut times = Vec::new();
        let mut values = Vec::new();
        let mut outputs = Vec::new();
        let mut lowered = Lowered::default();
        for (k, c) in columns.iter().enumerate() {
            match c {
                Zipped::Sample(_, field, n) => {
                    if !schema.fields.contains_key(field) {
                        values.push(lit(ScalarValue::Null));
                        continue;
                    }
                    let mut draw_args = vec![ident(field)];
                    draw_args.extend(group_tags.iter().map(tag));
                    let partition: Vec<DfExpr> =
                        group.iter().map(|g| g.clone().unalias()).collect();
                    let drawn = InfluxSample::new(*n)
                        .udwf()
                        .call(draw_args)
                        .partition_by(partition)
                        .order_by(vec![ident(TIME).sort(true, false)])
                        .build()?;
                    let mut select = group.clone();
                    select.push(time_ns().alias("__t"));
                    select.push(ident(field).alias("__v"));
                    let frame = df
                        .clone()
                        .filter(ident(field).is_not_null())?
                        .with_column("__drawn", drawn)?
                        .filter(col("__drawn"))?
                        .select(select)?;
                    let pos = row_number()
                        .partition_by(key_cols())
                        .order_by(vec![col("__t").sort(true, false)])
                        .build()?;
                    let mut named: Vec<DfExpr> = keys
                        .iter()
                        .map(|g| col(g.as_str()).alias(format!("{g}_{k}")))
                        .collect();
                    named.push(col("__t").alias(format!("__t_{k}")));
                    named.push(col("__v").alias(format!("__v_{k}")));
                    named.push(pos.alias(format!("__pos_{k}")));
                    parts.push(frame::select(frame, named)?);
                    times.push(col(format!("__t_{k}").as_str()));
                    values.push(col(format!("__v_{k}").as_str()));
                }
                Zipped::Aggregate(_, e) => {
                    let out = lower_aggregate(e, schema, &mut lowered, k, true)?;
                    outputs.push((k, out));
                    values.push(col(format!("__v_{k}").as_str()));
                }
            }
        }
        let aggs = lowered.aggs;
        if !aggs.is_empty() {
            let a = parts.len();
            let frame = df.clone().aggregate(group.clone(), aggs)?;
            let mut named: Vec<DfExpr> = keys
                .iter()
                .map(|g| col(g.as_str()).alias(format!("{g}_{a}")))
                .collect();
            named.push(lit(1u64).alias(format!("__pos_{a}")));
            for (k, out) in outputs {
                named.push(out.alias(format!("__v_{k}")));
            }
            parts.push(frame::select(frame, named)?);
        }
        let mut parts = parts.into_iter().enumerate();
        let Some((_, mut joined)) = parts.next() else {
            return Ok(vec![]);
        };
        // Keys of the rows so far, carried as the first part's columns.
        for (p, part) in parts {
            let mut on: Vec<DfExpr> = keys
                .iter()
                .map(|g| {
                    DfExpr::BinaryExpr(BinaryExpr::new(
                        Box::new(col(format!("{g}_0").as_str())),
                        Operator::IsNotDistinctFrom,
                        Box::new(col(format!("{g}_{p}").as_str())),
                    ))
                })
                .collect();
            on.push(col("__pos_0").eq(col(format!("__pos_{p}").as_str())));
            joined = joined.join_on(part, JoinType::Full, on)?;
            let names: Vec<String> = joined
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let mut select = Vec::new();
            for name in names {
                let c = col(name.as_str());
                let key = name
                    .strip_suffix("_0")
                    .filter(|base| *base == "__pos" || keys.iter().any(|g| g == base));
                if let Some(base) = key {
                    let other = col(format!("{base}_{p}").as_str());
                    select.push(
                        datafusion::functions::expr_fn::coalesce(vec![c, other]).alias(&name),
                    );
                } else if !name.ends_with(&format!("_{p}"))
                    || name.starts_with("__t_")
                    || name.starts_with("__v_")
                {
                    select.push(c);
                }
            }
            joined = frame::select(joined, select)?;
        }
        let mut select = vec![{
            let mut t = times.clone();
            t.push(col("__g0_0"));
            datafusion::functions::expr_fn::coalesce(t).alias("__time")
        }];
        select.extend(
            (0..group_tags.len())
                .map(|i| col(format!("__g{}_0", i + 1)).alias(format!("__tag{i}"))),
        );
        for (k, v) in values.into_iter().enumerate() {
            select.push(v.alias(format!("__c{k}")));
        }
        select.push(col("__g0_0").alias("__bucket"));
        select.push(col("__pos_0").alias("__pos"));
        let mut sort: Vec<SortExpr> = (0..group_tags.len())
            .map(|i| col(format!("__tag{i}")).sort(true, true))
            .collect();
        sort.push(col("__bucket").sort(true, true));
        sort.push(col("__pos").sort(true, true));
        let df = frame::sort(frame::select(joined, select)?, sort)?;
        if let Some(analyze) = qctx.explain {
            return explain(df, measurement, analyze, reuse).await;
        }
        let (rows, types) = collect_typed(
            collect(df, reuse.unkept()).await?,
            group_tags.len(),
            columns.len(),
        )?;
        let mut names = vec![TIME.to_string()];
        names.extend(columns.iter().map(|c| match c {
            Zipped::Sample(name, _, _) | Zipped::Aggregate(name, _) => name.clone(),
        }));
        Ok(self.into_series(measurement, group_tags, names, types, rows, qctx, false))
    }

    /// `top`/`bottom`: per group (time bucket and tags), the points with the largest (smallest)
    /// values, at most one per combination of the tag arguments, as rows in time order with
    /// their own times; other selected fields and tags come from the same points. Planned as
    /// `row_number()` windows (and `sample` as its seeded draw) filtered to the first n.
    async fn run_top(
        &self,
        measurement: &str,
        mut df: DataFrame,
        schema: &TableSchema,
        group_tags: &[String],
        top: TopCall,
        qctx: &QueryContext,
        reuse: Reuse<'_>,
    ) -> Result<Vec<Series>, ExecError> {
        use datafusion::functions_window::expr_fn::row_number;
        if !schema.fields.contains_key(&top.field) {
            return Ok(vec![]);
        }
        let value_col = |n: &str| -> DfExpr {
            if schema.fields.contains_key(n) || schema.tags.contains(n) {
                ident(n)
            } else {
                lit(ScalarValue::Utf8(None))
            }
        };
        let as_text = |e: DfExpr| datafusion::logical_expr::cast(e, DataType::Utf8);
        df = df.filter(ident(&top.field).is_not_null())?;
        // The groups: the time bucket and the series.
        let mut groups = Vec::new();
        if let Some((interval, offset)) = self.interval {
            groups.push(TimeBucket::call(ident(TIME), interval, offset));
        }
        groups.extend(group_tags.iter().map(|t| value_col(t)));
        let by_value = vec![
            ident(&top.field).sort(top.pick == Pick::Smallest, false),
            ident(TIME).sort(true, false),
        ];
        match top.pick {
            Pick::Largest | Pick::Smallest => {
                if !top.tags.is_empty() {
                    // The best point of each combination of the tag arguments...
                    let mut per_tags = groups.clone();
                    per_tags.extend(top.tags.iter().map(|t| value_col(t)));
                    let best = row_number()
                        .partition_by(per_tags)
                        .order_by(by_value.clone())
                        .build()?;
                    df = df
                        .with_column("__best", best)?
                        .filter(col("__best").eq(lit(1u64)))?;
                }
                // ... and the first n of them.
                let rank = row_number()
                    .partition_by(groups)
                    .order_by(by_value)
                    .build()?;
                df = df
                    .with_column("__rank", rank)?
                    .filter(col("__rank").lt_eq(lit(top.n as u64)))?;
            }
            Pick::Sample => {
                let mut args = vec![ident(&top.field)];
                args.extend(group_tags.iter().map(|t| as_text(value_col(t))));
                let drawn = InfluxSample::new(top.n)
                    .udwf()
                    .call(args)
                    .partition_by(groups)
                    .order_by(vec![ident(TIME).sort(true, false)])
                    .build()?;
                df = df.with_column("__drawn", drawn)?.filter(col("__drawn"))?;
            }
        }
        // Output columns after time: the call, its tag arguments, then the other fields.
        let call_name = self
            .fields
            .iter()
            .find(|f| top_call(&f.expr).ok().flatten().is_some())
            .and_then(|f| f.alias.clone());
        let mut names = vec![call_name.unwrap_or_else(|| {
            match top.pick {
                Pick::Largest => "top",
                Pick::Smallest => "bottom",
                Pick::Sample => "sample",
            }
            .into()
        })];
        let mut extra = top.tags.clone();
        for f in &self.fields {
            if let Expr::VarRef { name, .. } = &f.expr {
                extra.push(name.clone());
            }
        }
        let mut select = vec![time_ns().alias("__time")];
        select.extend(
            group_tags
                .iter()
                .enumerate()
                .map(|(i, t)| as_text(value_col(t)).alias(format!("__tag{i}"))),
        );
        select.push(ident(&top.field).alias("__c0"));
        for (i, e) in extra.iter().enumerate() {
            let c = if schema.tags.contains(e) && !schema.fields.contains_key(e) {
                as_text(value_col(e))
            } else {
                value_col(e)
            };
            select.push(c.alias(format!("__c{}", i + 1)));
            names.push(e.clone());
        }
        // 1.x returns the points in time order whatever ORDER BY says; points at the same
        // time in the selector's order of values, then in series order.
        let mut sort: Vec<SortExpr> = (0..group_tags.len())
            .map(|i| col(format!("__tag{i}")).sort(true, true))
            .collect();
        sort.push(col("__time").sort(true, true));
        if top.pick != Pick::Sample {
            sort.push(col("__c0").sort(top.pick == Pick::Smallest, true));
        }
        for (i, t) in schema.tags.iter().enumerate() {
            select.push(as_text(ident(t)).alias(format!("__key{i}")));
            sort.push(col(format!("__key{i}")).sort(true, true));
        }
        df = frame::sort(frame::select(df, select)?, sort)?;
        if let Some(analyze) = qctx.explain {
            return explain(df, measurement, analyze, reuse).await;
        }
        let (rows, types) = collect_typed(
            collect(df, reuse.unkept()).await?,
            group_tags.len(),
            1 + extra.len(),
        )?;
        let mut columns = vec![TIME.to_string()];
        columns.extend(names);
        Ok(self.into_series(measurement, group_tags, columns, types, rows, qctx, false))
    }

    /// Expands one field of a raw selection into (column name, expression, is a field).
    fn expand_field(
        &self,
        f: &crate::influxql::Field,
        schema: &TableSchema,
        all: &TableSchema,
        group_tags: &[String],
    ) -> Result<Vec<(String, DfExpr, bool)>, ExecError> {
        if let Expr::Wildcard(typ) = &f.expr {
            let mut names: BTreeSet<String> = BTreeSet::new();
            if *typ != Some(VarType::Tag) {
                names.extend(all.fields.keys().cloned());
            }
            if *typ != Some(VarType::Field) && !self.aggregate {
                // Tags the result is grouped by are in the series' tags, not in its columns.
                names.extend(all.tags.iter().filter(|t| !group_tags.contains(t)).cloned());
            }
            return Ok(names
                .into_iter()
                .map(|n| {
                    let e = if schema.fields.contains_key(&n) || schema.tags.contains(&n) {
                        ident(&n)
                    } else {
                        lit(ScalarValue::Null)
                    };
                    let field = all.fields.contains_key(&n);
                    (n, e, field)
                })
                .collect());
        }
        let name = f.alias.clone().unwrap_or_else(|| column_name(&f.expr));
        if self.aggregate {
            return Ok(vec![(name, lit(0), true)]);
        }
        Ok(vec![(
            name,
            to_df(&f.expr, schema, false)?,
            !is_tag_only(&f.expr, schema),
        )])
    }

    /// `fill(...)`: every bucket of every series between the query's bounds, as a
    /// [`GapFill`] node over the aggregate; `fill(none)` keeps the buckets with a value.
    fn gap_fill(
        &self,
        df: DataFrame,
        ntags: usize,
        ncols: usize,
        interval: i64,
        offset: i64,
        now: i64,
    ) -> Result<DataFrame, ExecError> {
        let fill = match self.stmt.fill.clone().unwrap_or(Fill::Null) {
            Fill::None => {
                // Only buckets with a value (an `integral` that has no area has none).
                let any = (0..ncols)
                    .map(|i| col(format!("__c{i}")).is_not_null())
                    .reduce(DfExpr::or);
                return Ok(match any {
                    Some(any) => df.filter(any)?,
                    None => df,
                });
            }
            Fill::Null => FillValue::Null,
            Fill::Previous => FillValue::Previous,
            Fill::Linear => FillValue::Linear,
            Fill::Integer(n) => FillValue::Integer(n),
            Fill::Number(n) => FillValue::float(n),
        };
        let params = GapFillParams {
            time: "__time".into(),
            series: (0..ntags).map(|i| format!("__tag{i}")).collect(),
            values: (0..ncols).map(|i| format!("__c{i}")).collect(),
            interval,
            offset,
            start: self.gap_range(now).0,
            end: self.gap_range(now).1,
            fill,
            max_buckets: MAX_SELECT_BUCKETS,
        };
        let (state, plan) = df.into_parts();
        let node = GapFill::try_new(plan, params)?;
        let plan =
            datafusion::logical_expr::LogicalPlan::Extension(datafusion::logical_expr::Extension {
                node: std::sync::Arc::new(node),
            });
        Ok(DataFrame::new(state, plan))
    }

    /// The transformations (window functions over each series in the query's time order),
    /// then the result's order: series, time, and `ties` for points at the same time.
    fn transform_and_sort(
        &self,
        mut df: DataFrame,
        ntags: usize,
        sources: &[usize],
        ties: &[String],
    ) -> Result<DataFrame, ExecError> {
        let desc = self.stmt.order_desc;
        let tags: Vec<DfExpr> = (0..ntags).map(|i| col(format!("__tag{i}"))).collect();
        if self.transforms.iter().any(Option::is_some) {
            let mut order = vec![col("__time").sort(!desc, true)];
            order.extend(ties.iter().map(|t| col(t.as_str()).sort(true, true)));
            let mut select = vec![col("__time")];
            select.extend(tags.iter().cloned());
            let mut any = None;
            for (i, source) in sources.iter().enumerate() {
                let c = format!("__c{i}");
                match self.transforms.get(*source).copied().flatten() {
                    Some(t) => {
                        let window = InfluxTransform::new(t)
                            .udwf()
                            .call(vec![col(c.as_str()), col("__time")])
                            .partition_by(tags.clone())
                            .order_by(order.clone())
                            .build()?;
                        let present = col(c.as_str()).is_not_null();
                        any = Some(match any {
                            None => present,
                            Some(a) => DfExpr::or(a, present),
                        });
                        select.push(window.alias(&c));
                    }
                    None => select.push(col(c.as_str())),
                }
            }
            select.extend(
                ties.iter()
                    .filter(|t| !t.starts_with("__c"))
                    .map(|t| col(t.as_str())),
            );
            // The projection plans the window functions (one Window node per ordering).
            df = frame::select(df, select)?;
            if let Some(any) = any {
                // A row the transformations have no value for is not in the result.
                df = df.filter(any)?;
            }
        }
        let mut within: Vec<SortExpr> = vec![col("__time").sort(!desc, true)];
        within.extend(ties.iter().map(|t| col(t.as_str()).sort(true, true)));
        let mut sort: Vec<SortExpr> = tags.iter().map(|t| t.clone().sort(true, true)).collect();
        sort.extend(within.iter().cloned());
        // LIMIT and OFFSET count points of each series: a top-k sort for one series, a row
        // number per series for several.
        let offset = self.stmt.offset.unwrap_or(0).max(0) as usize;
        let limit = self.stmt.limit.filter(|l| *l > 0).map(|l| l as usize);
        if offset == 0 && limit.is_none() {
            return Ok(frame::sort(df, sort)?);
        }
        if tags.is_empty() {
            return Ok(frame::sort(df, sort)?.limit(offset, limit)?);
        }
        let n = datafusion::functions_window::expr_fn::row_number()
            .partition_by(tags)
            .order_by(within)
            .build()?;
        let mut keep = col("__n").gt(lit(offset as u64));
        if let Some(limit) = limit {
            keep = keep.and(col("__n").lt_eq(lit(offset.saturating_add(limit) as u64)));
        }
        Ok(frame::sort(df.with_column("__n", n)?.filter(keep)?, sort)?)
    }
}

/// The DataFusion plan of one measurement's part of a query, one line per row.
async fn explain(
    df: DataFrame,
    measurement: &str,
    analyze: bool,
    reuse: Reuse<'_>,
) -> Result<Vec<Series>, ExecError> {
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
    Ok(vec![Series {
        name: Some(measurement.to_string()),
        columns: vec!["plan_type".into(), "plan".into()],
        values,
        ..Default::default()
    }])
}

/// Expands `fn(*)` and `fn(/regex/)` into one call per matching field (named `fn_field`,
/// numeric fields only where the function needs numbers), keeping other fields as they are.
fn expand_aggregate_fields(
    fields: &[crate::influxql::Field],
    schema: &TableSchema,
) -> Result<Vec<(String, usize, Expr)>, ExecError> {
    let mut out = Vec::new();
    for (source, f) in fields.iter().enumerate() {
        match &f.expr {
            Expr::Call { name, args }
                if matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))) =>
            {
                let re = match &args[0] {
                    Expr::Regex(r) => {
                        Some(regex::Regex::new(r).map_err(|e| query_err(e.to_string()))?)
                    }
                    _ => None,
                };
                let numeric_only = !matches!(name.as_str(), "count" | "first" | "last");
                for (field, typ) in &schema.fields {
                    if re.as_ref().is_some_and(|re| !re.is_match(field)) {
                        continue;
                    }
                    if numeric_only
                        && matches!(
                            typ,
                            ingester::FieldType::String | ingester::FieldType::Boolean
                        )
                    {
                        continue;
                    }
                    let call = Expr::Call {
                        name: name.clone(),
                        args: vec![Expr::VarRef {
                            name: field.clone(),
                            typ: None,
                        }],
                    };
                    let col_name = match &f.alias {
                        Some(a) => format!("{a}_{field}"),
                        None => format!("{name}_{field}"),
                    };
                    out.push((col_name, source, call));
                }
            }
            other => out.push((
                f.alias.clone().unwrap_or_else(|| column_name(other)),
                source,
                other.clone(),
            )),
        }
    }
    Ok(out)
}

/// Whether `stmt` asks only for each series' last values: every field is `last(..)`, it groups
/// by tags at most, and its time range has no upper end. With a condition that keeps or drops
/// whole series ([`tags_only`]), no row earlier than every series' last one is in the answer.
fn last_values_only(stmt: &SelectStatement, range: TimeRange) -> bool {
    range.max == i64::MAX
        && stmt.fields.iter().all(
            |f| matches!(&f.expr, Expr::Call { name, args } if name == "last" && args.len() == 1),
        )
        && stmt
            .dimensions
            .iter()
            .all(|d| !matches!(d, Dimension::Time { .. }))
}

/// Whether `condition` names tags only.
fn tags_only(condition: Option<&Expr>, schema: &TableSchema) -> bool {
    let mut only = true;
    if let Some(c) = condition {
        c.walk(&mut |e| {
            if matches!(e, Expr::VarRef { .. }) && !is_tag_only(e, schema) {
                only = false;
            }
        });
    }
    only
}

/// The tag equalities `condition` requires: its conjuncts `tag = 'v'` (non-empty), or `OR`s of
/// them on one tag, as `(tag, number of values)`.
fn tag_equalities(condition: Option<&Expr>, schema: &TableSchema) -> Vec<(String, usize)> {
    fn unparen(e: &Expr) -> &Expr {
        match e {
            Expr::Paren(inner) => unparen(inner),
            other => other,
        }
    }
    /// `(tag, values)` when `e` is an equality of a tag and non-empty strings, or an OR of them.
    fn equality(e: &Expr, schema: &TableSchema) -> Option<(String, usize)> {
        match unparen(e) {
            Expr::Binary {
                op: BinaryOp::Eq,
                lhs,
                rhs,
            } => match (unparen(lhs), unparen(rhs)) {
                (v @ Expr::VarRef { name, .. }, Expr::String(s))
                | (Expr::String(s), v @ Expr::VarRef { name, .. })
                    if !s.is_empty() && is_tag_only(v, schema) =>
                {
                    Some((name.clone(), 1))
                }
                _ => None,
            },
            Expr::Binary {
                op: BinaryOp::Or,
                lhs,
                rhs,
            } => {
                let (a, n) = equality(lhs, schema)?;
                let (b, m) = equality(rhs, schema)?;
                (a == b).then_some((a, n + m))
            }
            _ => None,
        }
    }
    fn walk(e: &Expr, schema: &TableSchema, out: &mut Vec<(String, usize)>) {
        match unparen(e) {
            Expr::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => {
                walk(lhs, schema, out);
                walk(rhs, schema, out);
            }
            other => out.extend(equality(other, schema)),
        }
    }
    let mut out = Vec::new();
    if let Some(c) = condition {
        walk(c, schema, &mut out);
    }
    out
}

fn is_tag_only(e: &Expr, schema: &TableSchema) -> bool {
    match e {
        Expr::VarRef { name, typ } => {
            *typ == Some(VarType::Tag)
                || (typ.is_none()
                    && schema.tags.contains(name)
                    && !schema.fields.contains_key(name))
        }
        _ => false,
    }
}

fn dedup_names(columns: &mut [(String, DfExpr)]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (name, _) in columns.iter_mut() {
        let n = seen.entry(name.clone()).or_insert(0);
        if *n > 0 {
            *name = format!("{name}_{n}");
        }
        *n += 1;
    }
}

/// The single field argument of an aggregate call.
fn field_arg(args: &[Expr], schema: &TableSchema) -> Result<String, ExecError> {
    match args.first() {
        Some(Expr::VarRef { name, .. })
            if schema.fields.contains_key(name) || schema.tags.contains(name) =>
        {
            Ok(name.clone())
        }
        Some(Expr::VarRef { name, .. }) => Ok(name.clone()),
        Some(other) => Err(query_err(format!("expected field argument in {other}"))),
        None => Err(query_err("invalid number of arguments, expected 1, got 0")),
    }
}

/// A math function by its InfluxQL name, with its arguments in DataFusion's order.
fn math_call(name: &str, mut args: Vec<DfExpr>) -> Result<DfExpr, ExecError> {
    use datafusion::functions::math;
    let got = args.len();
    let arity = |n: usize| -> Result<(), ExecError> {
        if got == n {
            Ok(())
        } else {
            Err(query_err(format!(
                "invalid number of arguments for {name}, expected {n}, got {got}"
            )))
        }
    };
    let (udf, n) = match name {
        "abs" => (math::abs(), 1),
        "ceil" => (math::ceil(), 1),
        "floor" => (math::floor(), 1),
        "round" => (math::round(), 1),
        "exp" => (math::exp(), 1),
        "ln" => (math::ln(), 1),
        "log2" => (math::log2(), 1),
        "log10" => (math::log10(), 1),
        "sqrt" => (math::sqrt(), 1),
        "sin" => (math::sin(), 1),
        "cos" => (math::cos(), 1),
        "tan" => (math::tan(), 1),
        "asin" => (math::asin(), 1),
        "acos" => (math::acos(), 1),
        "atan" => (math::atan(), 1),
        "atan2" => (math::atan2(), 2),
        "pow" => (math::power(), 2),
        "log" => {
            arity(2)?;
            // InfluxQL log(x, base); DataFusion log(base, x).
            args.swap(0, 1);
            (math::log(), 2)
        }
        other => return Err(query_err(format!("undefined function {other}()"))),
    };
    arity(n)?;
    let args = args
        .into_iter()
        .map(|a| datafusion::logical_expr::cast(a, DataType::Float64))
        .collect();
    Ok(udf.call(args))
}

/// Adds `__before_<field>` and `__after_<field>`: the `{t, v}` of the series' previous and next
/// points holding the field (window functions over the rows, partitioned like `group`).
fn with_neighbours(df: DataFrame, field: &str, group: &[DfExpr]) -> Result<DataFrame, ExecError> {
    use datafusion::functions_window::expr_fn::{lag, lead};
    use datafusion::logical_expr::expr::NullTreatment;
    let point = datafusion::logical_expr::when(
        ident(field).is_not_null(),
        datafusion::functions::core::named_struct().call(vec![
            lit("t"),
            time_ns(),
            lit("v"),
            datafusion::logical_expr::cast(ident(field), DataType::Float64),
        ]),
    )
    .end()?;
    // The series: the group's tags (the time bucket is not part of it).
    let partition: Vec<DfExpr> = group
        .iter()
        .filter(|g| !matches!(g, DfExpr::Alias(a) if a.name == "__time"))
        .map(|g| match g {
            DfExpr::Alias(a) => (*a.expr).clone(),
            other => other.clone(),
        })
        .collect();
    let order = vec![ident(TIME).sort(true, true)];
    let neighbour = |f: DfExpr| -> Result<DfExpr, ExecError> {
        Ok(f.partition_by(partition.clone())
            .order_by(order.clone())
            .null_treatment(NullTreatment::IgnoreNulls)
            .build()?)
    };
    Ok(df
        .with_column(
            &format!("__before_{field}"),
            neighbour(lag(point.clone(), Some(1), None))?,
        )?
        .with_column(
            &format!("__after_{field}"),
            neighbour(lead(point, Some(1), None))?,
        )?)
}

/// The time column as integer nanoseconds (the argument InfluxQL's functions take).
fn time_ns() -> DfExpr {
    datafusion::logical_expr::cast(ident(TIME), DataType::Int64)
}

/// `percentile(field, p)`'s percentage.
fn percentile_arg(args: &[Expr]) -> Result<f64, ExecError> {
    match args.get(1) {
        Some(Expr::Integer(n)) => Ok(*n as f64),
        Some(Expr::Number(n)) => Ok(*n),
        Some(other) => Err(query_err(format!(
            "expected float argument in percentile(), got {other}"
        ))),
        None => Err(query_err(
            "invalid number of arguments for percentile, expected 2, got 1",
        )),
    }
}

/// DataFusion aggregates of a statement's fields, and what they need computed first.
#[derive(Default)]
struct Lowered {
    aggs: Vec<DfExpr>,
    /// The `GROUP BY time` interval and offset.
    window: Option<(i64, i64)>,
    /// Fields whose neighbouring points (`__before_<field>`, `__after_<field>`) an aggregate
    /// takes (`integral` over time buckets).
    neighbours: BTreeSet<String>,
}

/// Turns an aggregate expression into DataFusion aggregates (pushed to `out.aggs`) and the
/// expression over their results.
fn lower_aggregate(
    e: &Expr,
    schema: &TableSchema,
    out: &mut Lowered,
    field_idx: usize,
    top: bool,
) -> Result<DfExpr, ExecError> {
    match e {
        Expr::Call { name, args } if MATH.contains(&name.as_str()) => {
            let lowered = args
                .iter()
                .map(|a| lower_aggregate(a, schema, out, field_idx, false))
                .collect::<Result<Vec<_>, _>>()?;
            math_call(name, lowered)
        }
        Expr::Call { name, args } => {
            let takes_param = matches!(name.as_str(), "percentile" | "integral");
            let want = if takes_param { 1..=2 } else { 1..=1 };
            if name == "percentile" && args.len() != 2 {
                return Err(query_err(format!(
                    "invalid number of arguments for percentile, expected 2, got {}",
                    args.len()
                )));
            }
            if !want.contains(&args.len()) {
                return Err(query_err(format!(
                    "invalid number of arguments for {name}, expected 1, got {}",
                    args.len()
                )));
            }
            // count(distinct(x))
            if let (
                true,
                Some(Expr::Call {
                    name: inner,
                    args: inner_args,
                }),
            ) = (name == "count", args.first())
            {
                if inner == "distinct" {
                    let field = field_arg(inner_args, schema)?;
                    if !schema.fields.contains_key(&field) {
                        return Ok(lit(ScalarValue::Null));
                    }
                    let alias = format!("__a{}_{field_idx}_count_distinct", out.aggs.len());
                    out.aggs
                        .push(agg::count_distinct(ident(&field)).alias(&alias));
                    return Ok(col(alias.as_str()));
                }
            }
            let field = field_arg(args, schema)?;
            if !schema.fields.contains_key(&field) {
                return Ok(lit(ScalarValue::Null));
            }
            let c = ident(&field);
            let numeric = !matches!(
                schema.fields.get(&field),
                Some(ingester::FieldType::String | ingester::FieldType::Boolean)
            );
            let needs_top = |what: &str| -> Result<(), ExecError> {
                if top {
                    Ok(())
                } else {
                    Err(query_err(format!(
                        "{what}() cannot be nested in an expression"
                    )))
                }
            };
            let f = match name.as_str() {
                "count" => agg::count(c.clone()),
                "sum" if numeric => agg::sum(c.clone()),
                "mean" if numeric => agg::avg(c.clone()),
                "median" if numeric => agg::median(c.clone()),
                "stddev" if numeric => agg::stddev(c.clone()),
                "spread" if numeric => {
                    let (amax, amin) = (
                        format!("__a{}", out.aggs.len()),
                        format!("__a{}", out.aggs.len() + 1),
                    );
                    out.aggs.push(agg::max(c.clone()).alias(&amax));
                    out.aggs.push(agg::min(c.clone()).alias(&amin));
                    return Ok(col(amax.as_str()) - col(amin.as_str()));
                }
                "min" if numeric => agg::min(c.clone()),
                "max" if numeric => agg::max(c.clone()),
                "first" | "last" => selector(name, &field, Output::Value)?,
                "percentile" if numeric => {
                    needs_top(name)?;
                    InfluxAggregate::percentile(percentile_arg(args)?, Output::Value)
                        .udaf()
                        .call(vec![c.clone(), time_ns()])
                }
                "integral" if numeric => {
                    needs_top(name)?;
                    let unit = duration_arg(args, 1, 1_000_000_000, name)?;
                    let kind = AggregateKind::Integral {
                        unit,
                        window: out.window,
                    };
                    let mut args = vec![c.clone(), time_ns()];
                    if out.window.is_some() {
                        // The neighbouring points, added before aggregating.
                        args.push(col(format!("__before_{field}").as_str()));
                        args.push(col(format!("__after_{field}").as_str()));
                        out.neighbours.insert(field.clone());
                    }
                    InfluxAggregate::new(kind, Output::Value).udaf().call(args)
                }
                "mode" => {
                    needs_top(name)?;
                    InfluxAggregate::new(AggregateKind::Mode, Output::Value)
                        .udaf()
                        .call(vec![c.clone(), time_ns()])
                }
                "distinct" => {
                    return Err(query_err(
                        "aggregate function distinct() cannot be combined with other functions or fields",
                    ));
                }
                other => {
                    return Err(query_err(format!(
                        "unsupported {other} type for field {field}"
                    )));
                }
            };
            let alias = format!("__a{}_{field_idx}_{}", out.aggs.len(), name);
            out.aggs.push(f.alias(&alias));
            Ok(col(alias.as_str()))
        }
        Expr::Paren(inner) => lower_aggregate(inner, schema, out, field_idx, false),
        Expr::Binary { op, lhs, rhs } => {
            let mut l = lower_aggregate(lhs, schema, out, field_idx, false)?;
            let mut r = lower_aggregate(rhs, schema, out, field_idx, false)?;
            if *op == BinaryOp::Div {
                l = datafusion::logical_expr::cast(l, DataType::Float64);
                r = datafusion::logical_expr::cast(r, DataType::Float64);
            }
            Ok(DfExpr::BinaryExpr(BinaryExpr::new(
                Box::new(l),
                df_op(*op)?,
                Box::new(r),
            )))
        }
        Expr::Integer(n) => Ok(lit(*n)),
        Expr::Number(n) => Ok(lit(*n)),
        other => Err(query_err(format!(
            "expected an aggregate function, found {other}"
        ))),
    }
}

/// The value (or, with [`Output::Time`], the time) of the point selector `name` picks, with
/// 1.x's tie-breaking ([`crate::plan::selector`]).
fn selector(name: &str, field: &str, output: Output) -> Result<DfExpr, ExecError> {
    let Some(kind) = SelectorKind::parse(name) else {
        return Err(query_err(format!("undefined function {name}()")));
    };
    Ok(InfluxSelector::new(kind, output)
        .udaf()
        .call(vec![ident(field), time_ns()]))
}

/// `tag = 'x'` or `tag =~ /re/` where the empty string cannot match.
fn plain_tag_comparison(op: BinaryOp, lhs: &Expr, rhs: &Expr, schema: &TableSchema) -> bool {
    let (tag, value) = match (lhs, rhs) {
        (Expr::VarRef { name, typ }, v) | (v, Expr::VarRef { name, typ })
            if *typ != Some(VarType::Field) =>
        {
            (name, v)
        }
        _ => return false,
    };
    if !schema.tags.contains(tag) || schema.fields.contains_key(tag) {
        return false;
    }
    match (op, value) {
        (BinaryOp::Eq, Expr::String(s)) => !s.is_empty(),
        (BinaryOp::EqRegex, Expr::Regex(r)) => {
            regex::Regex::new(r).is_ok_and(|re| !re.is_match(""))
        }
        _ => false,
    }
}

fn df_op(op: BinaryOp) -> Result<Operator, ExecError> {
    Ok(match op {
        BinaryOp::Add => Operator::Plus,
        BinaryOp::Sub => Operator::Minus,
        BinaryOp::Mul => Operator::Multiply,
        BinaryOp::Div => Operator::Divide,
        BinaryOp::Mod => Operator::Modulo,
        BinaryOp::BitAnd => Operator::BitwiseAnd,
        BinaryOp::BitOr => Operator::BitwiseOr,
        BinaryOp::BitXor => Operator::BitwiseXor,
        BinaryOp::And => Operator::And,
        BinaryOp::Or => Operator::Or,
        BinaryOp::Eq => Operator::Eq,
        BinaryOp::NotEq => Operator::NotEq,
        BinaryOp::Lt => Operator::Lt,
        BinaryOp::LtEq => Operator::LtEq,
        BinaryOp::Gt => Operator::Gt,
        BinaryOp::GtEq => Operator::GtEq,
        BinaryOp::EqRegex => Operator::RegexMatch,
        BinaryOp::NotEqRegex => Operator::RegexNotMatch,
    })
}

/// An InfluxQL scalar expression as a DataFusion expression. In a condition, a tag that the
/// measurement does not have compares as the empty string (1.x semantics).
pub(crate) fn to_df(e: &Expr, schema: &TableSchema, condition: bool) -> Result<DfExpr, ExecError> {
    Ok(match e {
        Expr::VarRef { name, typ } => {
            let known = schema.fields.contains_key(name) || schema.tags.contains(name);
            match (known, typ) {
                (true, Some(VarType::Tag)) if !schema.tags.contains(name) => lit(ScalarValue::Null),
                (true, Some(VarType::Field)) if !schema.fields.contains_key(name) => {
                    lit(ScalarValue::Null)
                }
                (true, _) if schema.tags.contains(name) && condition => {
                    datafusion::functions::expr_fn::coalesce(vec![ident(name), lit("")])
                }
                (true, _) => ident(name),
                (false, _) if condition => lit(""),
                (false, _) => lit(ScalarValue::Null),
            }
        }
        Expr::Paren(inner) => to_df(inner, schema, condition)?,
        Expr::Integer(n) => lit(*n),
        Expr::Number(n) => lit(*n),
        Expr::String(s) => lit(s.as_str()),
        Expr::Boolean(b) => lit(*b),
        Expr::Duration(d) => lit(*d),
        Expr::Regex(r) => lit(r.as_str()),
        Expr::Binary { op, lhs, rhs }
            if condition && plain_tag_comparison(*op, lhs, rhs, schema) =>
        {
            // `tag = 'x'` (x not empty) cannot match a row without the tag, so the column is
            // compared as it is, which lets Parquet statistics prune by it.
            let (tag, value) = if matches!(lhs.as_ref(), Expr::VarRef { .. }) {
                (lhs, rhs)
            } else {
                (rhs, lhs)
            };
            let Expr::VarRef { name, .. } = tag.as_ref() else {
                return Err(query_err("unreachable"));
            };
            let value = to_df(value, schema, false)?;
            DfExpr::BinaryExpr(BinaryExpr::new(
                Box::new(ident(name)),
                df_op(*op)?,
                Box::new(value),
            ))
        }
        Expr::Binary { op, lhs, rhs } => {
            let (mut l, mut r) = (
                to_df(lhs, schema, condition)?,
                to_df(rhs, schema, condition)?,
            );
            if *op == BinaryOp::Div {
                // InfluxQL divides as floats: 9i / 2 is 4.5.
                l = datafusion::logical_expr::cast(l, DataType::Float64);
                r = datafusion::logical_expr::cast(r, DataType::Float64);
            }
            DfExpr::BinaryExpr(BinaryExpr::new(Box::new(l), df_op(*op)?, Box::new(r)))
        }
        Expr::Call { name, args } if MATH.contains(&name.as_str()) => {
            let lowered = args
                .iter()
                .map(|a| to_df(a, schema, condition))
                .collect::<Result<Vec<_>, _>>()?;
            math_call(name, lowered)?
        }
        Expr::Call { name, .. } => {
            return Err(query_err(format!(
                "invalid function call in condition: {name}()"
            )));
        }
        Expr::Wildcard(_) => return Err(query_err("invalid use of * in an expression")),
        Expr::BoundParam(p) => return Err(query_err(format!("missing parameter: {p}"))),
    })
}

/// What running a statement's plans may reuse: the kept plan of its shape, when its scan reads
/// files only (the cache and those files, [`crate::plan_cache`]), and the files' series indexes
/// ([`crate::series_index`]).
#[derive(Clone, Copy)]
pub(crate) struct Reuse<'a> {
    pub plans: Option<(&'a PlanCache, &'a str)>,
    pub indexes: &'a SeriesIndexes,
}

impl Reuse<'_> {
    /// The same without kept plans.
    fn unkept(self) -> Self {
        Self {
            plans: None,
            ..self
        }
    }
}

/// Runs `df`: from a kept plan of its shape where `reuse` allows, with its Parquet scans
/// reading only the rows their files' series indexes select.
async fn collect(df: DataFrame, reuse: Reuse<'_>) -> Result<Vec<RecordBatch>, ExecError> {
    Ok(collect_shaped(df, reuse).await?.0)
}

/// [`collect`], and the shape `df` was run as (when it may be kept).
async fn collect_shaped(
    df: DataFrame,
    reuse: Reuse<'_>,
) -> Result<(Vec<RecordBatch>, Option<Shape>), ExecError> {
    let (state, logical) = df.into_parts();
    let task = std::sync::Arc::new(datafusion::execution::TaskContext::from(&state));
    let Some((cache, files)) = reuse.plans else {
        let plan = state.create_physical_plan(&logical).await?;
        let (run, _) = reuse.indexes.attach(plan, &task).await?;
        return Ok((datafusion::physical_plan::collect(run, task).await?, None));
    };
    let shape = Shape::of(&logical, files, state.config().target_partitions())?;
    if let Some(batches) = run_kept(cache, &shape, reuse.indexes, &task).await? {
        return Ok((batches, Some(shape)));
    }
    let plan = state.create_physical_plan(&logical).await?;
    let (run, _) = reuse
        .indexes
        .attach(std::sync::Arc::clone(&plan), &task)
        .await?;
    let batches = datafusion::physical_plan::collect(run, task).await?;
    cache.put(shape.clone(), plan);
    Ok((batches, Some(shape)))
}

/// What a statement's template did before its logical plan was built (see [`Plan::run`]).
enum Templated<'a> {
    /// No template applies (no kept plans for this scan, or `EXPLAIN`).
    No,
    /// The first statement of its template: keep the template under `key` once planned, if
    /// `params` (its scan filters' values) and its range at `now` reproduce the planned shape.
    Keep {
        cache: &'a PlanCache,
        key: String,
        params: Vec<ScalarValue>,
        now: i64,
    },
    /// It ran from its template (debug builds): check that against the logical plan.
    Verify(Verify<'a>),
}

/// A statement's answer: its rows and their value types, or (debug builds) the answer its
/// template gave, checked.
enum Answer {
    Rows(Rows, Vec<Option<FieldType>>),
    FromTemplate(Vec<Series>),
}

/// A statement run from its template, checked in debug builds against its logical plan (see
/// [`Plan::run`]).
struct Verify<'a> {
    /// The shape the template derived.
    shape: Shape,
    /// What the scan read: files and partitions.
    files: &'a str,
    partitions: usize,
    template: std::sync::Arc<Template>,
    /// The answer from the template.
    series: Vec<Series>,
}

impl Verify<'_> {
    /// The template's answer, if `df` (the statement's logical plan, built anyway) plans as the
    /// shape the template derived and its answer is shaped as the template shaped it.
    fn check(
        self,
        df: &DataFrame,
        group_tags: &[String],
        names: &[String],
    ) -> Result<Vec<Series>, ExecError> {
        let shape = Shape::of(df.logical_plan(), self.files, self.partitions)?;
        let t = &self.template;
        if shape != self.shape || t.group_tags != group_tags || t.names != names {
            return Err(ExecError::Internal(format!(
                "a statement's template derived {:?} ({t:?}), planned {shape:?} ({group_tags:?}, {names:?})",
                self.shape
            )));
        }
        Ok(self.series)
    }
}

/// Runs the kept plan of `shape` with its values bound, if there is one and the binding is
/// complete (see [`crate::plan_cache`]).
async fn run_kept(
    cache: &PlanCache,
    shape: &Shape,
    indexes: &SeriesIndexes,
    task: &std::sync::Arc<datafusion::execution::TaskContext>,
) -> Result<Option<Vec<RecordBatch>>, ExecError> {
    let Some(kept) = cache.take(shape) else {
        return Ok(None);
    };
    // The kept plan stays without selections (they depend on the values bound into it): a
    // copy is bound and given them, each scan built once.
    if let Err(e) = indexes.load(kept.plan(), task).await {
        cache.put_back(kept, false);
        return Err(e.into());
    }
    let finish = |config: &_, source: &_| indexes.attached(config, source).map(|a| a.0);
    let bound = kept.bind(shape, &finish);
    cache.put_back(kept, matches!(bound, Ok(Some(_))));
    match bound? {
        Some(run) => Ok(Some(
            datafusion::physical_plan::collect(run, std::sync::Arc::clone(task)).await?,
        )),
        None => Ok(None),
    }
}

/// Reads result batches as rows: tag values, time, and the value columns as JSON.
type Rows = Vec<(Vec<Option<String>>, i64, Vec<Value>)>;

/// The InfluxQL type of a result column (the element type for collected lists).
fn column_type(dt: &DataType) -> Option<FieldType> {
    match dt {
        // A tag selected as a column.
        DataType::Dictionary(_, _) => Some(FieldType::String),
        other => FieldType::from_arrow(other),
    }
}

fn collect_typed(
    batches: Vec<RecordBatch>,
    ntags: usize,
    ncols: usize,
) -> Result<(Rows, Vec<Option<FieldType>>), ExecError> {
    let types = match batches.first() {
        Some(b) => (0..ncols)
            .map(|c| column_type(b.schema().field(1 + ntags + c).data_type()))
            .collect(),
        None => vec![None; ncols],
    };
    Ok((collect_rows(batches, ntags, ncols)?, types))
}

fn collect_rows(
    batches: Vec<RecordBatch>,
    ntags: usize,
    ncols: usize,
) -> Result<Vec<(Vec<Option<String>>, i64, Vec<Value>)>, ExecError> {
    let mut out = Vec::new();
    for b in batches {
        let time = cast(b.column(0), &DataType::Int64)?;
        let time = time.as_primitive::<Int64Type>();
        let tags: Vec<ArrayRef> = (0..ntags)
            .map(|i| cast(b.column(1 + i), &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        // Tags selected as columns come as dictionaries: decoded once per batch, not per cell.
        let values: Vec<ArrayRef> = (0..ncols)
            .map(|c| {
                let a = b.column(1 + ntags + c);
                match a.data_type() {
                    DataType::Dictionary(_, _) => cast(a, &DataType::Utf8),
                    _ => Ok(a.clone()),
                }
            })
            .collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            let tag_vals = tags
                .iter()
                .map(|a| (!a.is_null(r)).then(|| a.as_string::<i32>().value(r).to_string()))
                .collect();
            let vals = values.iter().map(|a| json_cell(a, r)).collect();
            out.push((
                tag_vals,
                if time.is_null(r) { 0 } else { time.value(r) },
                vals,
            ));
        }
    }
    Ok(out)
}

/// A float as 1.x prints it: integral values without a fraction.
fn json_number(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn json_cell(a: &ArrayRef, r: usize) -> Value {
    if a.is_null(r) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Float64 => json_number(
            a.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(r),
        ),
        DataType::Int64 => Value::from(a.as_primitive::<Int64Type>().value(r)),
        DataType::UInt64 => Value::from(
            a.as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                .value(r),
        ),
        DataType::Boolean => Value::from(a.as_boolean().value(r)),
        DataType::Utf8 => Value::from(a.as_string::<i32>().value(r)),
        DataType::Timestamp(_, _) => {
            Value::from(a.as_primitive::<TimestampNanosecondType>().value(r))
        }
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(r);
            Value::Array((0..items.len()).map(|i| json_cell(&items, i)).collect())
        }
        DataType::Struct(fields) => {
            let st = a.as_struct();
            Value::Object(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.name().clone(), json_cell(st.column(i), r)))
                    .collect(),
            )
        }
        // Anything else as text, one cell at a time (casting the whole array here would
        // make a result quadratic in its rows).
        _ => match ScalarValue::try_from_array(a, r).and_then(|v| v.cast_to(&DataType::Utf8)) {
            Ok(ScalarValue::Utf8(Some(s))) => Value::from(s),
            _ => Value::Null,
        },
    }
}

/// RFC3339 in a time zone, with the zone's offset (`tz('Europe/Oslo')`).
fn format_time_in(t: i64, tz: chrono_tz::Tz) -> Value {
    use chrono::Offset;
    let dt = chrono::DateTime::from_timestamp_nanos(t).with_timezone(&tz);
    let mut out = rfc3339_local(&dt, t);
    // `+HH:MM` as chrono's `%:z` writes it (a historical offset's seconds rounded to the
    // nearest minute).
    let offset = dt.offset().fix().local_minus_utc();
    out.push(if offset < 0 { '-' } else { '+' });
    let minutes = (offset.unsigned_abs() + 30) / 60;
    push_digits(&mut out, minutes / 60, 2);
    out.push(':');
    push_digits(&mut out, minutes % 60, 2);
    Value::from(out)
}

/// Formats a time as 1.x does: RFC3339 with as many fraction digits as needed, or an integer in
/// the `epoch` unit.
pub fn format_time(t: i64, epoch: Option<&str>) -> Value {
    let div = match epoch {
        Some("ns") | Some("n") => 1,
        Some("u") | Some("µ") | Some("us") => 1_000,
        Some("ms") => 1_000_000,
        Some("s") => 1_000_000_000,
        Some("m") => 60_000_000_000,
        Some("h") => 3_600_000_000_000,
        _ => 0,
    };
    if div > 0 {
        return Value::from(t.div_euclid(div));
    }
    Value::from(rfc3339_utc(t))
}

/// `t` as RFC3339 in UTC with as many fraction digits as needed (none for a whole second), as
/// 1.x prints times. Written digit by digit: a result of raw points formats one per row, and
/// chrono's `format` parses its pattern and allocates on every call (3% of `high-cpu-1`).
/// Every `i64` of nanoseconds falls in the years 1677-2262, so the year has four digits.
fn rfc3339_utc(t: i64) -> String {
    let mut out = rfc3339_local(&chrono::DateTime::from_timestamp_nanos(t), t);
    out.push('Z');
    out
}

/// `dt` (the time `t` in some zone) as `YYYY-MM-DDTHH:MM:SS[.fraction]`, without the zone.
fn rfc3339_local<Tz: chrono::TimeZone>(dt: &chrono::DateTime<Tz>, t: i64) -> String {
    use chrono::{Datelike, Timelike};
    let mut out = String::with_capacity(32);
    push_digits(&mut out, dt.year().unsigned_abs(), 4);
    for (sep, n) in [
        ('-', dt.month()),
        ('-', dt.day()),
        ('T', dt.hour()),
        (':', dt.minute()),
        (':', dt.second()),
    ] {
        out.push(sep);
        push_digits(&mut out, n, 2);
    }
    let (mut frac, mut width) = (t.rem_euclid(1_000_000_000) as u32, 9);
    if frac > 0 {
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        out.push('.');
        push_digits(&mut out, frac, width);
    }
    out
}

/// `n`'s last `width` (at most 9) decimal digits, zero-padded.
fn push_digits(out: &mut String, mut n: u32, width: usize) {
    let mut buf = [b'0'; 9];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend(buf[..width].iter().map(|b| char::from(*b)));
}

/// The database a measurement reference names (`db.rp.m`), or else the query's `db`.
fn database_of<'a>(named: Option<&'a str>, default_db: &'a str) -> Result<&'a str, ExecError> {
    match named.filter(|d| !d.is_empty()).unwrap_or(default_db) {
        "" => Err(ExecError::DatabaseRequired),
        db => Ok(db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_like_1x() {
        assert_eq!(format_time(77, None), "1970-01-01T00:00:00.000000077Z");
        assert_eq!(format_time(60_000_000_000, None), "1970-01-01T00:01:00Z");
        assert_eq!(format_time(1_000, None), "1970-01-01T00:00:00.000001Z");
        // The same text as chrono's own formatting, across the whole range of times.
        let chrono_text = |t: i64| {
            let dt = chrono::DateTime::from_timestamp_nanos(t);
            let nanos = t.rem_euclid(1_000_000_000);
            let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
            if nanos > 0 {
                s.push('.');
                s.push_str(format!("{nanos:09}").trim_end_matches('0'));
            }
            s + "Z"
        };
        let mut t = i64::MIN;
        for step in 0..20_000u64 {
            assert_eq!(rfc3339_utc(t), chrono_text(t), "{t}");
            // Steps of uneven size (about 10^15 ns, plus digits that vary) reach the end.
            t = t.saturating_add(922_337_203_685_477 + (step * 7_919 % 1_000_003) as i64);
        }
        for t in [
            i64::MAX,
            -1,
            0,
            1,
            999_999_999,
            1_000_000_000,
            -1_000_000_001,
            1_451_606_400_120_000_000,
        ] {
            assert_eq!(rfc3339_utc(t), chrono_text(t), "{t}");
        }
        // In a zone: the same text as chrono's `%:z` formatting, historical offsets included.
        for zone in [
            chrono_tz::Europe::Oslo,
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::New_York,
            chrono_tz::Europe::Amsterdam,
        ] {
            for t in [
                i64::MIN,
                -2_208_988_800_000_000_001,
                0,
                1_451_606_400_120_000_000,
                i64::MAX,
            ] {
                let dt = chrono::DateTime::from_timestamp_nanos(t).with_timezone(&zone);
                let mut expected = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
                let nanos = t.rem_euclid(1_000_000_000);
                if nanos > 0 {
                    expected.push('.');
                    expected.push_str(format!("{nanos:09}").trim_end_matches('0'));
                }
                expected.push_str(&dt.format("%:z").to_string());
                assert_eq!(format_time_in(t, zone), expected, "{t} in {zone}");
            }
        }
        assert_eq!(format_time(60_000_000_000, Some("s")), 60);
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(60_000_000_000));
        assert_eq!(parse_rfc3339("2020-01-01"), Some(1_577_836_800_000_000_000));
    }

    #[test]
    fn time_ranges_from_conditions() {
        let q = crate::influxql::parse_query(
            "SELECT v FROM m WHERE time >= 10 AND host = 'a' AND time < now() - 1s",
        )
        .unwrap();
        let crate::influxql::Statement::Select(s) = &q[0] else {
            panic!()
        };
        let (r, rest) = split_time_range(s.condition.as_ref(), 5_000_000_000).unwrap();
        assert_eq!(
            r,
            TimeRange {
                min: 10,
                max: 3_999_999_999
            }
        );
        assert_eq!(rest.unwrap().to_string(), "host = 'a'");
    }
}
