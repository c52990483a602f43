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
//!
//! By phase: this file analyses a statement into a [`Plan`] (its fields, calls,
//! transformations, interval) and lowers the raw and aggregate kinds; [`time_range`] derives
//! the time range from `WHERE`; `lower` turns expressions and calls into DataFusion's, and
//! fills and orders the answer; `top` lowers `top`, `bottom` and `sample`; `subquery` and
//! `into` run subqueries and `INTO`; `kept` runs statements from kept plans and templates;
//! `answer` turns the rows into 1.x series; `explain` prints plans.

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
use crate::memory_rows::MemoryBatch;
use crate::plan::aggregate::{AggregateKind, InfluxAggregate, Output};
use crate::plan::gapfill::{FillValue, GapFill, GapFillParams};
use crate::plan::sample::InfluxSample;
use crate::plan::selector::{InfluxSelector, SelectorKind};
use crate::plan::time_bucket::TimeBucket;
use crate::plan::transform::InfluxTransform;
use crate::plan_cache::{PlanCache, Shape, Template};
use crate::result::{Series, SeriesSink};
use crate::scan::LazyFrame;
use crate::series_index::SeriesIndexes;

mod answer;
mod explain;
mod functions;
mod into;
mod kept;
mod lower;
mod nesting;
mod subquery;
mod time_range;
mod top;
mod types;

use explain::*;
use into::*;
use kept::*;
pub(crate) use lower::condition_to_df;
use lower::*;
use subquery::*;
pub use time_range::{TimeRange, parse_rfc3339};
pub(crate) use time_range::{split_time_range, time_under_or};
use top::*;

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

/// 1.x's `max-select-series` and `max-select-point` for one measurement of a statement: the
/// series its time range and the tag conditions of its `WHERE` select, and their rows (points),
/// counted in one aggregate over the tags before the statement reads any field. Only runs when
/// a limit is set. Where 1.x counts per shard, and points only once a second while the query
/// runs (so a fast query may pass its limit there), Fletch counts over the whole statement,
/// before it runs.
async fn check_select_limits(
    ex: &Executor,
    db: &str,
    rp: &str,
    name: &str,
    condition: Option<&Expr>,
    range: TimeRange,
) -> Result<(), ExecError> {
    let (max_points, max_series) = ex.max_select();
    if max_points == 0 && max_series == 0 {
        return Ok(());
    }
    let Some(crate::scan::Frame {
        df, schema, pinned, ..
    }) = ex
        .measurement_frame(ex.session(), db, rp, name, range)
        .await?
    else {
        return Ok(());
    };
    let mut df = df.build()?;
    let ts = |t: i64| lit(ScalarValue::TimestampNanosecond(Some(t), None));
    if range.min != i64::MIN {
        df = df.filter(ident(TIME).gt_eq(ts(range.min)))?;
    }
    if range.max != i64::MAX {
        df = df.filter(ident(TIME).lt_eq(ts(range.max)))?;
    }
    // The conjuncts on tags alone choose series (1.x's index does the same); the rest is
    // evaluated on points later and narrows nothing here.
    fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
        match e {
            Expr::Paren(inner) => conjuncts(inner, out),
            Expr::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => {
                conjuncts(lhs, out);
                conjuncts(rhs, out);
            }
            other => out.push(other),
        }
    }
    let mut parts = Vec::new();
    if let Some(c) = condition {
        conjuncts(c, &mut parts);
    }
    for part in parts {
        if tags_only(Some(part), &schema) {
            df = df.filter(condition_to_df(part, &schema)?)?;
        }
    }
    let tags: Vec<DfExpr> = schema.tags.iter().map(|t| ident(t)).collect();
    let counted = df.aggregate(tags, vec![agg::count(lit(1)).alias("n")])?;
    let mut series = 0u64;
    let mut points = 0u64;
    for b in counted.collect().await? {
        series += b.num_rows() as u64;
        let n = b.column(b.num_columns() - 1);
        let n = cast(n, &DataType::Int64)?;
        points += n
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .map(|v| v.max(0) as u64)
            .sum::<u64>();
    }
    drop(pinned);
    if max_series > 0 && series > max_series {
        // 1.x counts series one at a time and stops at the first past the limit: its text
        // always names limit + 1.
        return Err(query_err(format!(
            "max-select-series limit exceeded: ({}/{max_series})",
            max_series + 1
        )));
    }
    if max_points > 0 && points > max_points {
        // 1.x's text, its spelling included.
        return Err(query_err(format!(
            "max-select-point limit exceeed: ({points}/{max_points})"
        )));
    }
    Ok(())
}

/// 1.x's `max-select-buckets`: a `GROUP BY time` statement with a lower time bound may span
/// at most `limit` buckets, from the one holding the start to the one holding the end (now when
/// unbounded), counted as 1.x counts them (the end taken one nanosecond early). 0: no limit.
fn check_buckets(
    interval: Option<(i64, i64)>,
    range: TimeRange,
    now: i64,
    limit: u64,
) -> Result<(), ExecError> {
    let Some((every, offset)) = interval else {
        return Ok(());
    };
    if limit == 0 || range.min == i64::MIN {
        return Ok(());
    }
    let window = |t: i64| t as i128 - (t as i128 - offset as i128).rem_euclid(every as i128);
    let end = if range.max == i64::MAX {
        now
    } else {
        range.max
    };
    let (first, last) = (window(range.min), window(end.saturating_sub(1)));
    let n = (last - first) / every as i128 + 1;
    if n > limit as i128 {
        return Err(query_err(format!(
            "max-select-buckets limit exceeded: ({n}/{limit})"
        )));
    }
    Ok(())
}

/// Runs a `SELECT` against `db` (the `db` parameter, unless the source names one).
pub(crate) async fn execute(
    ex: &Executor,
    stmt: &SelectStatement,
    default_db: &str,
    ctx: &QueryContext,
    out: &mut SeriesSink,
) -> Result<(), ExecError> {
    if let Some(target) = &stmt.into {
        let written = select_into(ex, stmt, target, default_db, ctx).await?;
        out.send(written).await?;
        return Ok(());
    }
    let mut stmt = stmt.clone();
    let now = now_nanos();
    resolve_now_offset(&mut stmt, now);
    if time_range::time_under_or(stmt.condition.as_ref()) {
        // 1.x answers a time condition joined with OR with no series (the statement is
        // checked all the same).
        match nesting::as_subquery(&stmt, TimeRange::ALL)? {
            Some(nested) => Plan::new(&nested, TimeRange::ALL)?,
            None => Plan::new(&stmt, TimeRange::ALL)?,
        };
        return Ok(());
    }
    let (range, condition) = split_time_range(stmt.condition.as_ref(), now)?;
    if let Some(nested) = nesting::as_subquery(&stmt, range)? {
        return Box::pin(execute(ex, &nested, default_db, ctx, out)).await;
    }
    let plan = Plan::new(&stmt, range)?;
    if plan.reads_nothing && !plan.aggregates_beside_transforms() {
        return Ok(());
    }
    check_buckets(plan.interval, range, now, ex.max_select_buckets())?;

    // Load every measurement first: `*` means the columns of all of them together (1.x).
    let session = ex.session();
    let mut loaded = Vec::new();
    // The files the frames read stay on disk until the statement has run.
    let mut pinned = Vec::new();
    let mut union = TableSchema::default();
    let windowed = plan.by_time_alone(ctx);
    for source in &stmt.sources {
        let m = match source {
            Source::Measurement(m) => m,
            Source::Subquery(inner) => {
                for (name, frame, schema) in
                    subquery_frames(ex, inner, plan.range, default_db, ctx, session).await?
                {
                    union.merge(&schema);
                    loaded.push(Loaded::Frame(name, LazyFrame::Built(frame), schema, None));
                }
                continue;
            }
        };
        let db = database_of(m.database.as_deref(), default_db)?;
        let rp = m.retention_policy.as_deref().unwrap_or("");
        for name in ex
            .measurements_in(db, rp, m.name.as_deref(), m.regex.as_deref(), plan.range)
            .await?
        {
            check_select_limits(ex, db, rp, &name, condition.as_ref(), plan.range).await?;
            let sources = ex.sources(db, rp, &name, plan.range).await?;
            let equalities = tag_equalities(condition.as_ref(), &sources.schema);
            let sources = sources.requiring(equalities);
            // Only where the answer is the rows read: a condition on fields selects an unknown
            // share of them, and each window decodes the pages of every series it reaches
            // (files are sorted by series first), so a small answer is cheaper in one sort.
            if windowed && tags_only(condition.as_ref(), &sources.schema) {
                let windows = ex.windows(&sources, plan.range, ex.window_rows());
                if windows.len() > 1 {
                    union.merge(&sources.schema);
                    loaded.push(Loaded::Windows {
                        db: db.to_string(),
                        rp: rp.to_string(),
                        name,
                        schema: sources.schema.clone(),
                        windows,
                    });
                    continue;
                }
            }
            // Only each series' last values wanted: rows before every series' last ones
            // are neither scanned nor decoded (crate::scan, shard by shard).
            let mut sources = sources;
            if last_values_only(&stmt, plan.range) && tags_only(condition.as_ref(), &sources.schema)
            {
                sources = sources.for_last_values();
            }
            if let Some(crate::scan::Frame {
                df: frame,
                schema,
                stats,
                pinned: pins,
            }) = ex.frame_of(session, &name, sources, plan.range).await?
            {
                pinned.extend(pins);
                let files = stats.files.map(|f| f.join("\n"));
                union.merge(&schema);
                loaded.push(Loaded::Frame(name, frame, schema, files));
            }
        }
    }
    types::check_types(&stmt, &union)?;
    // Series come measurement by measurement in name order (descending under ORDER BY time
    // DESC), whatever order FROM names them in (1.x).
    loaded.sort_by(|a, b| {
        let by_name = a.name().cmp(b.name());
        if stmt.order_desc {
            by_name.reverse()
        } else {
            by_name
        }
    });
    out.limit_series(
        stmt.soffset.unwrap_or(0) as usize,
        stmt.slimit
            .filter(|l| *l > 0)
            .map_or(usize::MAX, |l| l as usize),
    );
    for entry in loaded {
        let more = match entry {
            Loaded::Frame(name, frame, schema, files) => {
                let buffered = frame.buffered();
                let reuse = Reuse::of(ex, files.as_deref(), buffered.as_ref());
                let at = (name.as_str(), &schema, &union);
                plan.run(at, frame, condition.as_ref(), ctx, reuse, out)
                    .await?
            }
            Loaded::Windows {
                db,
                rp,
                name,
                schema,
                mut windows,
            } => {
                if stmt.order_desc {
                    windows.reverse();
                }
                let mut more = true;
                let start = out.rows_sent();
                for window in windows {
                    // LIMIT counts the rows of the whole series, over its windows.
                    let sent = out.rows_sent() - start;
                    let limit = match stmt.limit.filter(|l| *l > 0) {
                        Some(l) if sent >= l => break,
                        Some(l) => Some(l - sent),
                        None => None,
                    };
                    let part = SelectStatement {
                        limit,
                        ..stmt.clone()
                    };
                    let plan = Plan::new(&part, window)?;
                    let sources = ex.sources(&db, &rp, &name, window).await?;
                    let equalities = tag_equalities(condition.as_ref(), &sources.schema);
                    let sources = sources.requiring(equalities);
                    let Some(crate::scan::Frame {
                        df: frame,
                        stats,
                        pinned: pins,
                        ..
                    }) = ex.frame_of(session, &name, sources, window).await?
                    else {
                        continue;
                    };
                    let files = stats.files.map(|f| f.join("\n"));
                    let buffered = frame.buffered();
                    let reuse = Reuse::of(ex, files.as_deref(), buffered.as_ref());
                    let at = (name.as_str(), &schema, &union);
                    more = plan
                        .run(at, frame, condition.as_ref(), ctx, reuse, out)
                        .await?;
                    drop(pins);
                    if !more {
                        break;
                    }
                }
                more
            }
        };
        if !more {
            break;
        }
    }
    drop(pinned);
    Ok(())
}

/// A measurement of a statement, ready to run: one frame, or (a selection ordered by time
/// alone, too large for one sort) windows of time run one after another.
enum Loaded {
    Frame(String, LazyFrame, TableSchema, Option<String>),
    Windows {
        db: String,
        rp: String,
        name: String,
        schema: TableSchema,
        windows: Vec<TimeRange>,
    },
}

impl Loaded {
    fn name(&self) -> &str {
        match self {
            Loaded::Frame(name, ..) | Loaded::Windows { name, .. } => name,
        }
    }
}

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

use crate::plan::technical::TaFunc;
use crate::plan::transform::TransformKind as Transform;

/// What a statement asks for, independent of the measurement it runs on.
struct Plan<'a> {
    stmt: &'a SelectStatement,
    /// The statement's fields with transformations replaced by their argument (named after the
    /// transformation).
    fields: Vec<crate::influxql::Field>,
    transforms: Vec<Option<Transform>>,
    /// `holt_winters(...)` fields (their argument, the aggregate, is in `fields`).
    holt_winters: Vec<Option<HoltWintersCall>>,
    /// An expression around a field's transformation (of [`TRANSFORMED`]), computed after it.
    post: Vec<Option<Expr>>,
    range: TimeRange,
    /// A transformation of buckets without a start time: 1.x answers no series.
    reads_nothing: bool,
    /// The range as the statement gave it, where a transformation's look-back widened
    /// `range`: aggregates beside the transformation answer within it.
    asked: TimeRange,
    projection: Projection,
    interval: Option<(i64, i64)>,
    timezone: Option<chrono_tz::Tz>,
}

/// The lowering a statement takes, decided once from its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Projection {
    /// Points as they are: fields, tags and expressions of them.
    Raw,
    /// Aggregates per group and time bucket (selectors and `distinct` among them).
    Aggregate,
    /// `top`, `bottom` or `sample` alone, with fields and tags of the points they pick.
    Top,
    /// Samples beside other calls, or of several fields (`sample(*, n)`): zipped by position.
    Zipped,
}

fn has_call(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| found |= matches!(x, Expr::Call { name, .. } if functions::is_aggregate(name)));
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

/// `GROUP BY time(d, now())`: the offset of `now` into its interval, as 1.x computes it once
/// per statement (the parser marks the offset `i64::MIN`).
fn resolve_now_offset(stmt: &mut SelectStatement, now: i64) {
    for d in &mut stmt.dimensions {
        if let Dimension::Time {
            interval,
            offset: Some(offset),
        } = d
            && *offset == i64::MIN
            && *interval > 0
        {
            *offset = now.rem_euclid(*interval);
        }
    }
}

/// `holt_winters(aggregate, n, s)`'s forecast length, season and whether the fit comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HoltWintersCall {
    h: u32,
    m: u32,
    with_fit: bool,
}

/// Splits `holt_winters(mean(f), n, s)` into its aggregate (named after the function) and the
/// forecast, with 1.x's checks and texts in its order.
fn split_holt_winters(
    f: &crate::influxql::Field,
    stmt: &SelectStatement,
) -> Result<Option<(crate::influxql::Field, HoltWintersCall)>, ExecError> {
    let Expr::Call { name, args } = &f.expr else {
        return Ok(None);
    };
    if name != "holt_winters" && name != "holt_winters_with_fit" {
        return Ok(None);
    }
    if args.len() != 3 {
        return Err(query_err(format!(
            "invalid number of arguments for {name}, expected 3, got {}",
            args.len()
        )));
    }
    // 1.x checks the second argument (type, then value) before the third.
    let integer = |i: usize, ordinal: &str| match &args[i] {
        Expr::Integer(n) => Ok(*n),
        _ => Err(query_err(format!(
            "expected integer argument as {ordinal} arg in {name}"
        ))),
    };
    let too_large = |n: i64| query_err(format!("argument to {name} is too large, got {n}"));
    let h = integer(1, "second")?;
    if h <= 0 {
        return Err(query_err(format!(
            "second arg to {name} must be greater than 0, got {h}"
        )));
    }
    if h > MAX_SELECT_BUCKETS {
        // Each forecast point is a bucket: bounded as the buckets of the range are.
        return Err(query_err(format!(
            "max-select-buckets limit exceeded: ({h}/{MAX_SELECT_BUCKETS})"
        )));
    }
    let m = integer(2, "third")?;
    if m < 0 {
        return Err(query_err(format!(
            "third arg to {name} cannot be negative, got {m}"
        )));
    }
    let (h, m) = (
        u32::try_from(h).map_err(|_| too_large(h))?,
        u32::try_from(m).map_err(|_| too_large(m))?,
    );
    if !matches!(&args[0], Expr::Call { .. }) {
        return Err(query_err(format!(
            "must use aggregate function with {name}"
        )));
    }
    let grouped_by_time = stmt
        .dimensions
        .iter()
        .any(|d| matches!(d, Dimension::Time { interval, .. } if *interval != 0));
    if !grouped_by_time {
        return Err(query_err(format!(
            "{name} aggregate requires a GROUP BY interval"
        )));
    }
    Ok(Some((
        crate::influxql::Field {
            expr: args[0].clone(),
            alias: Some(f.alias.clone().unwrap_or_else(|| name.clone())),
        },
        HoltWintersCall {
            h,
            m,
            with_fit: name == "holt_winters_with_fit",
        },
    )))
}

/// The name a transformation's value has inside the expression around it (`post`).
pub(super) const TRANSFORMED: &str = "__transformed";

/// The one transformation inside an expression of it and literals (`moving_average(f, 2) * 2`,
/// `abs(derivative(f))`), and the expression with the call replaced by [`TRANSFORMED`].
fn transform_in_expression(e: &Expr) -> Option<(Expr, Expr)> {
    fn walk(e: &Expr, found: &mut Option<Expr>) -> Option<Expr> {
        match e {
            Expr::Call { name, .. } if functions::is_transform(name) => {
                if found.is_some() {
                    return None;
                }
                *found = Some(e.clone());
                Some(Expr::VarRef {
                    name: TRANSFORMED.into(),
                    typ: None,
                })
            }
            Expr::Call { name, args } if functions::is_math(name) => Some(Expr::Call {
                name: name.clone(),
                args: args
                    .iter()
                    .map(|a| walk(a, found))
                    .collect::<Option<Vec<_>>>()?,
            }),
            Expr::Paren(inner) => Some(Expr::Paren(Box::new(walk(inner, found)?))),
            Expr::Binary { op, lhs, rhs } if types::is_arithmetic(*op) => Some(Expr::Binary {
                op: *op,
                lhs: Box::new(walk(lhs, found)?),
                rhs: Box::new(walk(rhs, found)?),
            }),
            Expr::Integer(_) | Expr::Number(_) => Some(e.clone()),
            _ => None,
        }
    }
    if matches!(e, Expr::Call { name, .. } if functions::is_transform(name)) {
        return None;
    }
    let mut found = None;
    let post = walk(e, &mut found)?;
    Some((found?, post))
}

/// A field of several transformations or forecasts is planned as a subquery
/// ([`nesting::as_subquery`]) before it gets here; one that did not is refused rather than
/// planned as one call.
fn check_nesting(f: &crate::influxql::Field) -> Result<(), ExecError> {
    if nesting::needs_nesting(f) {
        return Err(ExecError::Internal(format!(
            "{} was not run as a subquery",
            f.expr
        )));
    }
    Ok(())
}

/// Splits `derivative(x, 1s)` and friends into their argument and the transformation, and an
/// expression around the transformation into the expression (of [`TRANSFORMED`]).
fn split_transform_field(
    f: &crate::influxql::Field,
) -> Result<(crate::influxql::Field, Option<Transform>, Option<Expr>), ExecError> {
    if let Some((call, post)) = transform_in_expression(&f.expr) {
        let alias = f.alias.clone().unwrap_or_else(|| column_name(&f.expr));
        let (inner, t) = split_transform(&crate::influxql::Field {
            expr: call,
            alias: Some(alias),
        })?;
        return Ok((inner, t, Some(post)));
    }
    let (inner, t) = split_transform(f)?;
    Ok((inner, t, None))
}

/// Splits `derivative(x, 1s)` and friends into their argument and the transformation.
fn split_transform(
    f: &crate::influxql::Field,
) -> Result<(crate::influxql::Field, Option<Transform>), ExecError> {
    let Expr::Call { name, args } = &f.expr else {
        return Ok((f.clone(), None));
    };
    if !functions::is_transform(name) {
        return Ok((f.clone(), None));
    }
    let Some(inner) = args.first() else {
        return Err(query_err(format!(
            "invalid number of arguments for {name}, expected at least 1, got 0"
        )));
    };
    let t = match name.as_str() {
        "derivative" | "non_negative_derivative" => Transform::Derivative {
            // 0: no unit given (per second, or per GROUP BY interval; see `Plan::new`).
            unit: duration_arg(args, 1, 0, name)?,
            non_negative: name.starts_with("non_negative"),
        },
        "difference" | "non_negative_difference" => Transform::Difference {
            non_negative: name.starts_with("non_negative"),
        },
        "cumulative_sum" => Transform::CumulativeSum,
        "elapsed" => Transform::Elapsed(duration_arg(args, 1, 1, name)?),
        _ if TaFunc::from_name(name).is_some() => Transform::Technical(technical(name, args)?),
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

/// The arguments of a technical-analysis call, checked as 1.x checks them (its texts, in its
/// order): `fn(value, period[, hold period[, warmup type]])`, without a warmup type for
/// Kaufman's functions.
fn technical(name: &str, args: &[Expr]) -> Result<crate::plan::technical::Technical, ExecError> {
    use crate::plan::technical::{Technical, Warmup};
    let func =
        TaFunc::from_name(name).ok_or_else(|| query_err(format!("undefined function {name}()")))?;
    let kaufman = matches!(func, TaFunc::Ker | TaFunc::Kama);
    let max = if kaufman { 3 } else { 4 };
    if args.len() < 2 || args.len() > max {
        return Err(query_err(format!(
            "invalid number of arguments for {name}, expected at least 2 but no more than {max}, got {}",
            args.len()
        )));
    }
    let period = match &args[1] {
        Expr::Integer(n) if *n < 1 => {
            return Err(query_err(format!(
                "{name} period must be greater than or equal to 1"
            )));
        }
        Expr::Integer(n) => {
            u32::try_from(*n).map_err(|_| query_err(format!("{name} period is too large")))?
        }
        _ => return Err(query_err(format!("{name} period must be an integer"))),
    };
    let hold = match args.get(2) {
        None | Some(Expr::Integer(-1)) => None,
        Some(Expr::Integer(h)) if func == TaFunc::Trix && *h < 1 => {
            return Err(query_err(format!(
                "{name} hold period must be greater than or equal to 1"
            )));
        }
        Some(Expr::Integer(h)) if *h < 0 => {
            return Err(query_err(format!(
                "{name} hold period must be greater than or equal to 0"
            )));
        }
        Some(Expr::Integer(h)) => Some(
            u32::try_from(*h).map_err(|_| query_err(format!("{name} hold period is too large")))?,
        ),
        _ => return Err(query_err(format!("{name} hold period must be an integer"))),
    };
    let cmo = func == TaFunc::Cmo;
    let warmup = match args.get(3) {
        None if cmo => Warmup::None,
        None => Warmup::Exponential,
        Some(Expr::String(w)) => match w.as_str() {
            "exponential" => Warmup::Exponential,
            "simple" => Warmup::Simple,
            "none" if cmo => Warmup::None,
            _ if cmo => {
                return Err(query_err(format!(
                    "{name} warmup type must be one of: 'none' 'exponential' 'simple'"
                )));
            }
            _ => {
                return Err(query_err(format!(
                    "{name} warmup type must be one of: 'exponential' 'simple'"
                )));
            }
        },
        Some(_) => return Err(query_err(format!("{name} warmup type must be a string"))),
    };
    if cmo && warmup == Warmup::None && period < 2 {
        // 1.x fails on it (an index out of range in its oscillator's window).
        return Err(query_err(format!(
            "{name} period must be greater than or equal to 2 without a warmup type"
        )));
    }
    Ok(Technical {
        func,
        period,
        hold,
        warmup,
    })
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
    /// Whether aggregates stand beside transformations (`derivative(mean(f)), count(f)`).
    fn aggregates_beside_transforms(&self) -> bool {
        self.transforms.iter().any(Option::is_some) && self.transforms.iter().any(Option::is_none)
    }

    fn new(stmt: &'a SelectStatement, range: TimeRange) -> Result<Self, ExecError> {
        let mut fields = Vec::with_capacity(stmt.fields.len());
        let mut transforms = Vec::with_capacity(stmt.fields.len());
        let mut holt_winters = Vec::with_capacity(stmt.fields.len());
        let mut post = Vec::with_capacity(stmt.fields.len());
        for f in &stmt.fields {
            check_nesting(f)?;
            if let Some((inner, hw)) = split_holt_winters(f, stmt)? {
                fields.push(inner);
                transforms.push(None);
                holt_winters.push(Some(hw));
                post.push(None);
                continue;
            }
            let (inner, t, around) = split_transform_field(f)?;
            fields.push(inner);
            transforms.push(t);
            holt_winters.push(None);
            post.push(around);
        }
        let with_transform = transforms.iter().filter(|t| t.is_some()).count();
        // Transformations of buckets may have aggregates beside them (1.x lines their points
        // up by time); raw values or tags may not.
        let grouped_by_time = stmt
            .dimensions
            .iter()
            .any(|d| matches!(d, Dimension::Time { interval, .. } if *interval != 0));
        let beside_aggregates = grouped_by_time
            && (0..fields.len()).all(|i| {
                transforms[i].is_some() || (holt_winters[i].is_none() && has_call(&fields[i].expr))
            });
        if with_transform > 0 && with_transform < fields.len() && !beside_aggregates {
            return Err(query_err(
                "mixing aggregate and non-aggregate queries is not supported",
            ));
        }
        for f in &stmt.fields {
            let mut bad = None;
            f.expr.walk(&mut |e| {
                if let Expr::Call { name, .. } = e {
                    let known = name == "now"
                        || functions::is_aggregate(name)
                        || functions::is_math(name)
                        || functions::is_transform(name)
                        || functions::is_forecast(name);
                    if !known {
                        bad.get_or_insert(name.clone());
                    }
                }
            });
            if let Some(name) = bad {
                return Err(query_err(format!("undefined function {name}()")));
            }
        }
        types::check_fields(stmt)?;
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
        // Fields or tags beside several calls one of which is a sample: 1.x's rules for
        // auxiliary fields (only selectors of named fields may have them, and only one).
        let auxiliary = fields
            .iter()
            .any(|f| matches!(f.expr, Expr::VarRef { .. } | Expr::Wildcard(_)));
        let spread_sample = fields.iter().any(|f| {
            matches!(&f.expr, Expr::Call { name, args } if name == "sample"
                && matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))))
        });
        if samples > 0 && auxiliary && (calls > 1 || spread_sample) {
            let called = aggregate_calls(fields.iter().map(|f| &f.expr));
            let only_selectors = called.iter().all(|(n, args)| {
                (functions::is_selector(n) || n == "sample")
                    && !matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_)))
            });
            return Err(query_err(if only_selectors {
                "mixing multiple selector functions with tags or fields is not supported"
            } else {
                "mixing aggregate and non-aggregate queries is not supported"
            }));
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
            // A lone selector may bring other fields and tags of the point it selects.
            let called = aggregate_calls(fields.iter().map(|f| &f.expr));
            let selectors = called
                .iter()
                .filter(|(n, _)| functions::is_selector(n))
                .count();
            if selectors != called.len() || with_transform > 0 {
                return Err(query_err(
                    "mixing aggregate and non-aggregate queries is not supported",
                ));
            }
            if selectors > 1 {
                return Err(query_err(
                    "mixing multiple selector functions with tags or fields is not supported",
                ));
            }
        }
        let distinct = fields
            .iter()
            .any(|f| matches!(&f.expr, Expr::Call { name, .. } if name == "distinct"));
        if distinct && fields.len() > 1 {
            return Err(query_err(
                "aggregate function distinct() cannot be combined with other functions or fields",
            ));
        }
        let spread = fields.iter().any(|f| {
            matches!(&f.expr, Expr::Call { name, args } if name == "sample"
                && matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))))
        });
        let projection = if calls == 0 {
            Projection::Raw
        } else if samples > 0 && (calls > 1 || spread) {
            Projection::Zipped
        } else if tops > 0 || samples > 0 {
            Projection::Top
        } else {
            Projection::Aggregate
        };
        let mut interval = None;
        for d in &stmt.dimensions {
            if let Dimension::Time {
                interval: i,
                offset,
            } = d
            {
                if *i == 0 {
                    // 1.x: `time(0s)` is no interval at all.
                    continue;
                }
                if *i < 0 {
                    return Err(query_err("group by time interval must be positive"));
                }
                if offset == &Some(i64::MIN) {
                    // Resolved by `execute` before planning; a statement planned elsewhere
                    // (a continuous query's check) has no now yet.
                    return Err(query_err(
                        "time dimension offset now() is resolved when the statement runs",
                    ));
                }
                interval = Some((*i, offset.unwrap_or(0).rem_euclid(*i)));
            }
        }
        if interval.is_some() && calls == 0 {
            // A transformation of raw values (`derivative(f)`) under GROUP BY time: 1.x names
            // what it misses inside the call.
            if let Some(name) = stmt.fields.iter().find_map(|f| match &f.expr {
                Expr::Call { name, args }
                    if functions::is_transform(name)
                        && matches!(args.first(), Some(Expr::VarRef { .. })) =>
                {
                    Some(name.clone())
                }
                _ => None,
            }) {
                return Err(query_err(format!(
                    "aggregate function required inside the call to {name}"
                )));
            }
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
        // A derivative without its own unit is per second, or per interval of buckets (1.x's
        // `DerivativeInterval`).
        let mut transforms = transforms;
        for t in transforms.iter_mut().flatten() {
            if let Transform::Derivative { unit, .. } = t
                && *unit == 0
            {
                *unit = interval.map_or(1_000_000_000, |(i, _)| i);
            }
        }
        // A transformation of GROUP BY time buckets looks back one bucket, as 1.x does: it
        // moves the start (the end, in descending order) of what it reads one interval out,
        // whatever the transformation needs (a `moving_average(.., 3)` answers from the
        // range's second bucket on), and emits what the transformation makes of that bucket
        // (a hold period of 0 answers it). `cumulative_sum` does not look back.
        let asked = range;
        let mut range = range;
        let mut reads_nothing = false;
        if let (true, Some((i, _))) = (calls > 0, interval) {
            let lookback = transforms
                .iter()
                .flatten()
                .map(|t| match t {
                    Transform::CumulativeSum => 0,
                    _ => 1,
                })
                .max()
                .unwrap_or(0);
            let by = i.saturating_mul(lookback);
            // 1.x moves an open start out of its time range and reads nothing.
            reads_nothing = lookback > 0 && !stmt.order_desc && range.min == i64::MIN;
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
            holt_winters,
            post,
            range,
            reads_nothing,
            asked,
            projection,
            interval,
            timezone,
        })
    }

    /// Whether the answer is one series per measurement ordered by time alone, so that it can
    /// run window by window of time: raw points without `GROUP BY` or OFFSET, no
    /// transformation (its window functions would see each window alone), no subquery, not
    /// `EXPLAIN`.
    fn by_time_alone(&self, ctx: &QueryContext) -> bool {
        self.projection == Projection::Raw
            && self.stmt.dimensions.is_empty()
            && self.transforms.iter().all(Option::is_none)
            && self.holt_winters.iter().all(Option::is_none)
            && self.stmt.offset.unwrap_or(0) == 0
            && self
                .stmt
                .sources
                .iter()
                .all(|s| matches!(s, Source::Measurement(_)))
            && ctx.explain.is_none()
    }

    /// The tag keys the result is grouped by, for measurements with these tags.
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
        (measurement, schema, all_sources): (&str, &TableSchema, &TableSchema),
        frame: LazyFrame,
        condition: Option<&Expr>,
        qctx: &QueryContext,
        reuse: Reuse<'_>,
        out: &mut SeriesSink,
    ) -> Result<bool, ExecError> {
        let time_col = || ident(TIME);
        let now = qctx.now.unwrap_or_else(now_nanos);
        let filters = self.scan_filters(schema, condition)?;
        // `GROUP BY *` groups by the tags of every measurement of the statement (1.x: a
        // measurement without one of them has it as "").
        let group_tags = self.group_tags(all_sources)?;
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
                if let Some(batches) = run_kept(cache, &shape, reuse, &task).await? {
                    cache.template_hit();
                    if !cfg!(debug_assertions) {
                        return self
                            .emit(measurement, &t.group_tags, &t.names, batches, true, out)
                            .await;
                    }
                    let batches = datafusion::physical_plan::common::collect(batches).await?;
                    templated = Templated::Verify(Verify {
                        shape,
                        files,
                        partitions,
                        template: t,
                        batches,
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
            let transformed = self.transforms.get(i).is_some_and(Option::is_some);
            for (name, e, field) in
                self.expand_field(f, transformed, schema, all_sources, &group_tags)?
            {
                columns.push((name, e));
                is_field.push(field);
                sources.push(i);
            }
        }
        if columns.is_empty() {
            return Ok(true);
        }
        dedup_names(&mut columns);

        let answer: Answer;
        match self.projection {
            Projection::Raw => {
                // A point of this selection is a row where any field the columns read has a
                // value, whatever the columns then compute (`f % 0` is a null, not no row); a
                // selection of tags alone selects nothing (1.x).
                let mut read = BTreeSet::new();
                for f in &self.fields {
                    f.expr.walk(&mut |e| match e {
                        Expr::VarRef { name, typ } if *typ != Some(VarType::Tag) => {
                            // A cast the field's type cannot take reads nothing (1.x).
                            if let Some(have) = schema.fields.get(name)
                                && typ.is_none_or(|t| cast_reads(*have, t))
                            {
                                read.insert(name.clone());
                            }
                        }
                        Expr::Wildcard(typ) if *typ != Some(VarType::Tag) => {
                            read.extend(schema.fields.keys().cloned());
                        }
                        // `derivative(/re/)`: the fields the regex names (a bad regex was
                        // refused when the columns were expanded).
                        Expr::Regex(_) => {
                            read.extend(
                                spread_fields(schema, e, false)
                                    .unwrap_or_default()
                                    .into_iter()
                                    .cloned(),
                            );
                        }
                        _ => {}
                    });
                }
                if read.is_empty() {
                    return Ok(true);
                }
                // A row is answered when a field read has a value. Every stored row has a
                // value of some field (a point has at least one, and deletes remove whole
                // rows), so reading every field needs no filter: decoding all of them for
                // every row before filtering was most of `SELECT * ... LIMIT 1`'s scan. (A
                // field whose type differs between shards reads as null where the first
                // shard's type cannot take its values; such a row, left out before, now shows
                // its nulls: both differ from 1.x, which answers each shard's values.)
                if schema.fields.keys().any(|f| !read.contains(f)) {
                    if let Some(any) = read
                        .iter()
                        .map(|f| ident(f).is_not_null())
                        .reduce(DfExpr::or)
                    {
                        df = df.filter(any)?;
                    }
                }
                let mut select = vec![time_ns().alias("__time")];
                for (i, t) in group_tags.iter().enumerate() {
                    select.push(tag_expr(t).alias(format!("__tag{i}")));
                }
                let field_names: Vec<String> =
                    (0..columns.len()).map(|i| format!("__c{i}")).collect();
                for (i, (_, e)) in columns.iter().enumerate() {
                    select.push(e.clone().alias(&field_names[i]));
                }
                // Points at the same time come in series key order (descending under ORDER BY
                // time DESC), as 1.x merges series: the remaining tags, in key order, break
                // the tie. A tag the columns already hold
                // as it is (`SELECT *`) breaks it from its column; the others are hidden
                // columns after the values (dropped again below). Transformations rewrite
                // their columns, so beside them every tie is hidden.
                let plain_columns = self.transforms.iter().all(Option::is_none)
                    && self.holt_winters.iter().all(Option::is_none);
                let mut ties: Vec<String> = Vec::new();
                let mut hidden: Vec<DfExpr> = Vec::new();
                for t in schema.tags.iter().filter(|t| !group_tags.contains(t)) {
                    let shown = columns
                        .iter()
                        .position(|(_, e)| plain_columns && *e == ident(t));
                    match shown {
                        Some(i) => ties.push(field_names[i].clone()),
                        None => {
                            let name = format!("__ord{}", hidden.len());
                            hidden.push(ident(t).alias(&name));
                            ties.push(name);
                        }
                    }
                }
                select.extend(hidden);
                df = frame::select(df, select)?;
                let ties = Ties {
                    columns: ties,
                    follow_time: true,
                };
                df = self.transform_and_sort(df, group_tags.len(), &sources, &ties)?;
                if let Some(analyze) = qctx.explain {
                    return out
                        .send(explain(df, measurement, analyze, reuse).await?)
                        .await;
                }
                answer = self
                    .collect_answer(df, reuse, templated, &group_tags, &columns)
                    .await?;
            }
            Projection::Zipped => {
                let Some(columns) = self.zipped_samples(schema)? else {
                    return Err(ExecError::Internal("zipped samples without samples".into()));
                };
                return self
                    .run_zipped(
                        measurement,
                        df,
                        schema,
                        &group_tags,
                        columns,
                        qctx,
                        reuse,
                        out,
                    )
                    .await;
            }
            Projection::Top => {
                let Some(top) = self
                    .fields
                    .iter()
                    .find_map(|f| top_call(&f.expr).transpose())
                    .transpose()?
                else {
                    return Err(ExecError::Internal("top without its call".into()));
                };
                return self
                    .run_top(measurement, df, schema, &group_tags, top, qctx, reuse, out)
                    .await;
            }
            Projection::Aggregate => {
                let mut group = Vec::new();
                if let Some((interval, offset)) = self.interval {
                    group.push(TimeBucket::call(time_col(), interval, offset).alias("__time"));
                }
                for (i, t) in group_tags.iter().enumerate() {
                    group.push(tag_expr(t).alias(format!("__tag{i}")));
                }
                let agg_fields = expand_aggregate_fields(&self.fields, all_sources, &group_tags)?;
                if agg_fields.is_empty() {
                    return Ok(true);
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
                let mut empty_buckets: Vec<EmptyBucket> = Vec::new();
                let distinct_field = match &agg_fields[..] {
                    [(_, _, Expr::Call { name, args })] if name == "distinct" => {
                        Some(field_arg(name, args, schema)?)
                    }
                    _ => None,
                };
                if let Some(field) = distinct_field {
                    // One row per distinct value, in order of first appearance: group by the value.
                    if !schema.fields.contains_key(&field) {
                        return Ok(true);
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
                    let lone = LoneSelector::of(&agg_fields, schema)?;
                    let mut lowered = Lowered {
                        window: self.interval,
                        aux: lone.clone().filter(|s| s.beside),
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
                    // A lone selector reports the time of the point it selected: alone as a
                    // statement's only field, or beside fields and tags.
                    let alone = self.fields.len() == 1
                        && self.transforms[0].is_none()
                        && matches!(&self.fields[0].expr, Expr::Call { name, .. } if functions::is_selector(name));
                    if let (Some(sel), None) = (&lone, self.interval) {
                        if sel.beside || alone {
                            if !schema.fields.contains_key(sel.field()) {
                                return Ok(true);
                            }
                            aggs.push(sel.call(Output::Time, None)?.alias("__seltime"));
                            selector_time = Some(col("__seltime"));
                        }
                    }
                    if aggs.is_empty() {
                        // No argument is a field of this measurement: nothing to aggregate (1.x).
                        return Ok(true);
                    }
                    // Without GROUP BY time, a group none of whose rows has a value of a field
                    // the aggregates read is not in the result (1.x iterates the fields' points).
                    let has_values = if self.interval.is_none() {
                        let mut read = BTreeSet::new();
                        if let Some(sel) = &lowered.aux {
                            // Only the selector's points are candidates.
                            read.insert(sel.field().to_string());
                        }
                        for (_, _, e) in agg_fields.iter().filter(|_| lowered.aux.is_none()) {
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
                    empty_buckets = outputs
                        .iter()
                        .map(|e| EmptyBucket::of(e, &lowered.counts))
                        .collect();
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
                    df = self.fill_counts(df, group_tags.len(), &empty_buckets, &ties)?;
                }
                let sources: Vec<usize> = agg_fields.iter().map(|(_, f, _)| *f).collect();
                let ties = Ties {
                    columns: ties,
                    follow_time: false,
                };
                df = self.transform_and_sort(df, group_tags.len(), &sources, &ties)?;
                if let Some(analyze) = qctx.explain {
                    return out
                        .send(explain(df, measurement, analyze, reuse).await?)
                        .await;
                }
                columns = agg_fields
                    .iter()
                    .map(|(name, _, _)| (name.clone(), lit(0)))
                    .collect();
                dedup_names(&mut columns);
                answer = self
                    .collect_answer(df, reuse, templated, &group_tags, &columns)
                    .await?;
            }
        }

        let mut names = vec![TIME.to_string()];
        names.extend(columns.into_iter().map(|(n, _)| n));
        match answer {
            Answer::Stream(batches) => {
                self.emit(measurement, &group_tags, &names, batches, true, out)
                    .await
            }
            Answer::FromTemplate(batches) => {
                let batches = futures::stream::iter(batches.into_iter().map(Ok));
                self.emit(measurement, &group_tags, &names, batches, true, out)
                    .await
            }
        }
    }
}

/// The database a measurement reference names (`db.rp.m`), or else the query's `db`.
fn database_of<'a>(named: Option<&'a str>, default_db: &'a str) -> Result<&'a str, ExecError> {
    match named.filter(|d| !d.is_empty()).unwrap_or(default_db) {
        "" => Err(ExecError::DatabaseRequired),
        db => Ok(db),
    }
}

#[cfg(test)]
mod bucket_limit_tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn check(min: i64, max: i64, every: i64, offset: i64) -> Result<(), String> {
        check_buckets(
            Some((every, offset)),
            TimeRange { min, max },
            1_796_563_321 * S + S / 2,
            10,
        )
        .map_err(|e| e.to_string())
    }

    /// The counts InfluxDB 1.6.7 answered with `max-select-buckets = 10` (observed).
    #[test]
    fn buckets_are_counted_as_1x_counts_them() {
        let err = |n: &str| Err(format!("max-select-buckets limit exceeded: ({n}/10)"));
        // time >= 0s AND time < 10s, < 11s, <= 10s, < 10500ms (bounds inclusive here).
        assert_eq!(check(0, 10 * S - 1, S, 0), Ok(()));
        assert_eq!(check(0, 11 * S - 1, S, 0), err("11"));
        assert_eq!(check(0, 10 * S, S, 0), Ok(()));
        assert_eq!(check(0, 10_500_000_000 - 1, S, 0), err("11"));
        assert_eq!(check(S / 2, 10 * S - 1, S, 0), Ok(()));
        assert_eq!(check(0, 100 * S - 1, S, 0), err("100"));
        // GROUP BY time(10s, 5s) over [0, 100s): windows from -5s to 95s.
        assert_eq!(check(0, 100 * S - 1, 10 * S, 5 * S), err("11"));
        // No upper bound: up to now.
        assert_eq!(check(0, i64::MAX, S, 0), err("1796563322"));
        // No lower bound, no interval, or no limit: not checked.
        assert_eq!(check(i64::MIN, 100 * S, S, 0), Ok(()));
        assert!(
            check_buckets(
                None,
                TimeRange {
                    min: 0,
                    max: i64::MAX
                },
                0,
                10
            )
            .is_ok()
        );
        assert!(
            check_buckets(
                Some((S, 0)),
                TimeRange {
                    min: 0,
                    max: i64::MAX
                },
                i64::MAX,
                0
            )
            .is_ok()
        );
    }
}

#[cfg(test)]
mod now_offset_tests {
    use super::*;

    #[test]
    fn time_now_offset_is_now_into_its_interval() {
        let mut stmt = match crate::influxql::parse_query(
            "SELECT mean(f) FROM m WHERE time > now() - 1h GROUP BY time(10m, now())",
        ) {
            Ok(mut q) => match q.remove(0) {
                crate::influxql::Statement::Select(s) => *s,
                other => panic!("not a select: {other:?}"),
            },
            Err(e) => panic!("{e}"),
        };
        let minute = 60_000_000_000i64;
        resolve_now_offset(&mut stmt, 123 * minute + 45);
        assert_eq!(
            stmt.dimensions,
            [Dimension::Time {
                interval: 10 * minute,
                offset: Some(3 * minute + 45)
            }]
        );
        // Planned, the buckets start at now's offset.
        let plan = Plan::new(&stmt, TimeRange::ALL).map_err(|e| e.to_string());
        assert_eq!(
            plan.map(|p| p.interval),
            Ok(Some((10 * minute, 3 * minute + 45)))
        );
    }
}
