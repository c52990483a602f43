//! Lowering InfluxQL expressions onto DataFusion: fields and wildcards expanded, calls as
//! aggregates, selectors and math functions, conditions and operators, gap filling, the
//! transformations and the answer's order.

use super::*;

impl<'a> Plan<'a> {
    /// Expands one field of a raw selection into (column name, expression, is a field).
    pub(super) fn expand_field(
        &self,
        f: &crate::influxql::Field,
        transformed: bool,
        schema: &TableSchema,
        all: &TableSchema,
        group_tags: &[String],
    ) -> Result<Vec<(String, DfExpr, bool)>, ExecError> {
        // `derivative(*)`, `moving_average(/re/, 2)`: the transformation of each numeric field
        // (named `derivative_f`, after the alias if there is one), as 1.x expands them.
        if transformed && matches!(f.expr, Expr::Wildcard(_) | Expr::Regex(_)) {
            let prefix = f.alias.clone().unwrap_or_default();
            return Ok(spread_fields(all, &f.expr, true)?
                .into_iter()
                .map(|n| {
                    let e = if schema.fields.contains_key(n) {
                        ident(n)
                    } else {
                        lit(ScalarValue::Null)
                    };
                    (format!("{prefix}_{n}"), e, true)
                })
                .collect());
        }
        if let Expr::Wildcard(typ) = &f.expr {
            let mut names: BTreeSet<String> = BTreeSet::new();
            if *typ != Some(VarType::Tag) {
                names.extend(all.fields.keys().cloned());
            }
            if *typ != Some(VarType::Field) && self.projection == Projection::Raw {
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
        if self.projection != Projection::Raw {
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
    pub(super) fn gap_fill(
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
    /// then the result's order: series, time, and `ties` for points at the same time. Ties
    /// are ascending, or, with `ties.follow_time`, in the direction time goes (points of
    /// several series at one time come in descending series key order under `ORDER BY time
    /// DESC`, as 1.x merges them).
    pub(super) fn transform_and_sort(
        &self,
        mut df: DataFrame,
        ntags: usize,
        sources: &[usize],
        ties: &Ties,
    ) -> Result<DataFrame, ExecError> {
        let desc = self.stmt.order_desc;
        let tie_asc = !(desc && ties.follow_time);
        let ties = &ties.columns;
        let tags: Vec<DfExpr> = (0..ntags).map(|i| col(format!("__tag{i}"))).collect();
        if self.transforms.iter().any(Option::is_some) {
            let mut order = vec![col("__time").sort(!desc, true)];
            order.extend(ties.iter().map(|t| col(t.as_str()).sort(tie_asc, true)));
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
                        // Without a start time a transformation of buckets has no points
                        // (1.x), while aggregates beside it answer.
                        let window = if self.reads_nothing {
                            lit(ScalarValue::Float64(None))
                        } else {
                            window
                        };
                        // The expression around it, where the transformation has a value
                        // (a point without one is no point, whatever the expression makes of
                        // a null: `derivative(f) / 0`).
                        let window = match self.post.get(*source).cloned().flatten() {
                            Some(around) => datafusion::logical_expr::when(
                                window.clone().is_not_null(),
                                post_expression(&around, window)?,
                            )
                            .otherwise(lit(ScalarValue::Null))?,
                            None => window,
                        };
                        let present = col(c.as_str()).is_not_null();
                        any = Some(match any {
                            None => present,
                            Some(a) => DfExpr::or(a, present),
                        });
                        select.push(window.alias(&c));
                    }
                    None => {
                        // An aggregate beside transformations: its buckets within the range
                        // the statement asked for (not the bucket a transformation looked
                        // back to), each a row.
                        let (min, max) = (self.asked.min, self.asked.max);
                        let t = || {
                            datafusion::logical_expr::cast(
                                col("__time"),
                                datafusion::arrow::datatypes::DataType::Int64,
                            )
                        };
                        let within = match (desc, min, max) {
                            (false, i64::MIN, _) | (true, _, i64::MAX) => None,
                            (false, min, _) => Some(t().gt_eq(lit(min))),
                            (true, _, max) => Some(t().lt_eq(lit(max))),
                        };
                        let value = match within {
                            Some(w) => datafusion::logical_expr::when(w, col(c.as_str()))
                                .otherwise(lit(ScalarValue::Null))?,
                            None => col(c.as_str()),
                        };
                        let present = value.clone().is_not_null();
                        any = Some(match any {
                            None => present,
                            Some(a) => DfExpr::or(a, present),
                        });
                        select.push(value.alias(&c));
                    }
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
        if self.holt_winters.iter().any(Option::is_some) {
            df = self.forecast_rows(df, ntags, sources)?;
        }
        let mut within: Vec<SortExpr> = vec![col("__time").sort(!desc, true)];
        within.extend(ties.iter().map(|t| col(t.as_str()).sort(tie_asc, true)));
        // Series in key order; in descending key order when time goes backwards (1.x).
        let mut sort: Vec<SortExpr> = tags.iter().map(|t| t.clone().sort(!desc, !desc)).collect();
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

/// The columns that order points at the same time within a series of the answer.
pub(super) struct Ties {
    pub(super) columns: Vec<String>,
    /// Whether they run in time's direction (series key order, descending under `ORDER BY
    /// time DESC`), or always ascending (DISTINCT's first appearances).
    pub(super) follow_time: bool,
}

impl Plan<'_> {
    /// `holt_winters(...)` columns: each series' buckets of the column are replaced by its
    /// forecast (an aggregate per series whose list of points is unnested into rows), and
    /// the rows of the forecasts and of the other columns are joined by series and time, as
    /// 1.x lines up the points of a statement's fields.
    fn forecast_rows(
        &self,
        df: DataFrame,
        ntags: usize,
        sources: &[usize],
    ) -> Result<DataFrame, ExecError> {
        use datafusion::functions::core::expr_fn::{coalesce, get_field};
        let Some((interval, _)) = self.interval else {
            return Err(query_err(
                "holt_winters aggregate requires a GROUP BY interval",
            ));
        };
        let tags: Vec<DfExpr> = (0..ntags).map(|i| col(format!("__tag{i}"))).collect();
        let key = |prefix: &str| -> Vec<String> {
            std::iter::once(format!("{prefix}time"))
                .chain((0..ntags).map(|i| format!("{prefix}tag{i}")))
                .collect()
        };
        let mut frames = Vec::new();
        let plain: Vec<usize> = (0..sources.len())
            .filter(|&i| self.holt_winters[sources[i]].is_none())
            .collect();
        if !plain.is_empty() {
            let mut select = vec![col("__time")];
            select.extend(tags.iter().cloned());
            select.extend(plain.iter().map(|i| col(format!("__c{i}"))));
            frames.push(frame::select(df.clone(), select)?);
        }
        for (i, source) in sources.iter().enumerate() {
            let Some(hw) = self.holt_winters[*source] else {
                continue;
            };
            let c = format!("__c{i}");
            let kind = AggregateKind::HoltWinters {
                h: hw.h,
                m: hw.m,
                with_fit: hw.with_fit,
                interval,
            };
            let forecast = InfluxAggregate::new(kind, Output::Value)
                .udaf()
                .call(vec![col(c.as_str()), col("__time")])
                .alias("__hw");
            let mut f = df
                .clone()
                .aggregate(tags.clone(), vec![forecast])?
                .unnest_columns(&["__hw"])?;
            if self.stmt.order_desc {
                // 1.x feeds the buckets newest first, and its forecast of points whose times
                // go backwards is empty.
                f = f.filter(lit(false))?;
            }
            let mut select = vec![get_field(col("__hw"), "time").alias("__time")];
            select.extend(tags.iter().cloned());
            select.push(get_field(col("__hw"), "value").alias(c.as_str()));
            frames.push(frame::select(f.filter(col("__hw").is_not_null())?, select)?);
        }
        let mut frames = frames.into_iter();
        let Some(mut joined) = frames.next() else {
            return Ok(df);
        };
        let left_key = key("__");
        let right_key = key("__r");
        for right in frames {
            let names: Vec<String> = right
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let renamed: Vec<DfExpr> = names
                .iter()
                .map(|n| match left_key.iter().position(|k| k == n) {
                    Some(k) => col(n.as_str()).alias(right_key[k].as_str()),
                    None => col(n.as_str()),
                })
                .collect();
            let right = frame::select(right, renamed)?;
            let on: Vec<DfExpr> = left_key
                .iter()
                .zip(&right_key)
                .map(|(l, r)| {
                    DfExpr::BinaryExpr(BinaryExpr::new(
                        Box::new(col(l.as_str())),
                        Operator::IsNotDistinctFrom,
                        Box::new(col(r.as_str())),
                    ))
                })
                .collect();
            let both = joined.join_on(right, datafusion::logical_expr::JoinType::Full, on)?;
            let mut select: Vec<DfExpr> = left_key
                .iter()
                .zip(&right_key)
                .map(|(l, r)| coalesce(vec![col(l.as_str()), col(r.as_str())]).alias(l.as_str()))
                .collect();
            select.extend(
                both.schema()
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .filter(|n| n.starts_with("__c"))
                    .map(|n| col(n.as_str())),
            );
            joined = frame::select(both, select)?;
        }
        // The columns in the statement's order.
        let mut select = vec![col("__time")];
        select.extend(tags);
        select.extend((0..sources.len()).map(|i| col(format!("__c{i}"))));
        Ok(frame::select(joined, select)?)
    }
}

/// The fields a `*` or `/regex/` argument names, in name order (numeric ones only, with
/// `numeric_only`); no field for any other argument.
pub(super) fn spread_fields<'s>(
    schema: &'s TableSchema,
    arg: &Expr,
    numeric_only: bool,
) -> Result<Vec<&'s String>, ExecError> {
    let re = match arg {
        Expr::Regex(r) => Some(regex::Regex::new(r).map_err(|e| query_err(e.to_string()))?),
        Expr::Wildcard(_) => None,
        _ => return Ok(Vec::new()),
    };
    Ok(schema
        .fields
        .iter()
        .filter(|(n, t)| {
            !(numeric_only && matches!(t, FieldType::String | FieldType::Boolean))
                && re.as_ref().is_none_or(|re| re.is_match(n))
        })
        .map(|(n, _)| n)
        .collect())
}

/// Expands `fn(*)` and `fn(/regex/)` into one call per matching field (named `fn_field`,
/// numeric fields only where the function needs numbers), keeping other fields as they are;
/// expands `count(*)`, `max(/re/)` and a `*` beside a lone selector over the fields (and tags)
/// of every measurement of the statement (`schema`): each measurement's series have the same
/// columns, null where it lacks the field (1.x).
pub(super) fn expand_aggregate_fields(
    fields: &[crate::influxql::Field],
    schema: &TableSchema,
    group_tags: &[String],
) -> Result<Vec<(String, usize, Expr)>, ExecError> {
    let mut out = Vec::new();
    for (source, f) in fields.iter().enumerate() {
        match &f.expr {
            // Beside a lone selector: every field and tag (but those grouped by), by name.
            Expr::Wildcard(typ) => {
                let mut names: BTreeSet<&String> = BTreeSet::new();
                if *typ != Some(VarType::Tag) {
                    names.extend(schema.fields.keys());
                }
                if *typ != Some(VarType::Field) {
                    names.extend(schema.tags.iter().filter(|t| !group_tags.contains(t)));
                }
                out.extend(names.into_iter().map(|n| {
                    let var = Expr::VarRef {
                        name: n.clone(),
                        typ: None,
                    };
                    (n.clone(), source, var)
                }));
            }
            Expr::Call { name, args }
                if matches!(args.first(), Some(Expr::Wildcard(_) | Expr::Regex(_))) =>
            {
                let numeric_only = !matches!(name.as_str(), "count" | "first" | "last");
                for field in spread_fields(schema, &args[0], numeric_only)? {
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

/// Whether `stmt` asks only for each series' last values, so that no row earlier than every
/// series' last one can be in the answer (given a condition that keeps or drops whole series,
/// [`tags_only`], and a time range without an upper end). Two forms:
/// - every field is `last(..)` and it groups by tags at most (`SELECT last(*) ... GROUP BY
///   hostname`);
/// - each series' newest row: a selection of fields (`*` or plain names) `ORDER BY time DESC
///   LIMIT 1` without OFFSET or GROUP BY time (TSBS's `lastpoint`: `SELECT * from cpu group by
///   "hostname" order by time desc limit 1`). A row is answered when one of its selected fields
///   is set, and each field's newest row is not earlier than the bound.
pub(super) fn last_values_only(stmt: &SelectStatement, range: TimeRange) -> bool {
    let by_tags_only = stmt
        .dimensions
        .iter()
        .all(|d| !matches!(d, Dimension::Time { .. }));
    let lasts = stmt
        .fields
        .iter()
        .all(|f| matches!(&f.expr, Expr::Call { name, args } if name == "last" && args.len() == 1));
    let newest_rows = stmt.order_desc
        && stmt.limit == Some(1)
        && stmt.offset.unwrap_or(0) == 0
        && stmt
            .fields
            .iter()
            .all(|f| matches!(&f.expr, Expr::VarRef { .. } | Expr::Wildcard(_)));
    range.max == i64::MAX && by_tags_only && (lasts || newest_rows)
}

/// Whether `condition` names tags only.
pub(super) fn tags_only(condition: Option<&Expr>, schema: &TableSchema) -> bool {
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
pub(super) fn tag_equalities(
    condition: Option<&Expr>,
    schema: &TableSchema,
) -> Vec<(String, usize)> {
    pub(super) fn unparen(e: &Expr) -> &Expr {
        match e {
            Expr::Paren(inner) => unparen(inner),
            other => other,
        }
    }
    /// `(tag, values)` when `e` is an equality of a tag and non-empty strings, or an OR of them.
    pub(super) fn equality(e: &Expr, schema: &TableSchema) -> Option<(String, usize)> {
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
    pub(super) fn walk(e: &Expr, schema: &TableSchema, out: &mut Vec<(String, usize)>) {
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

pub(super) fn is_tag_only(e: &Expr, schema: &TableSchema) -> bool {
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

pub(super) fn dedup_names(columns: &mut [(String, DfExpr)]) {
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
pub(super) fn field_arg(
    name: &str,
    args: &[Expr],
    schema: &TableSchema,
) -> Result<String, ExecError> {
    match args.first() {
        Some(Expr::VarRef { name, .. })
            if schema.fields.contains_key(name) || schema.tags.contains(name) =>
        {
            Ok(name.clone())
        }
        Some(Expr::VarRef { name, .. }) => Ok(name.clone()),
        // 1.x names the function whose argument is not a field (`mean(max(f))`: `mean()`).
        Some(_) => Err(query_err(format!("expected field argument in {name}()"))),
        None => Err(query_err("invalid number of arguments, expected 1, got 0")),
    }
}

/// A math function by its InfluxQL name, with its arguments in DataFusion's order.
pub(super) fn math_call(name: &str, mut args: Vec<DfExpr>) -> Result<DfExpr, ExecError> {
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
pub(super) fn with_neighbours(
    df: DataFrame,
    field: &str,
    group: &[DfExpr],
) -> Result<DataFrame, ExecError> {
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
pub(super) fn time_ns() -> DfExpr {
    datafusion::logical_expr::cast(ident(TIME), DataType::Int64)
}

/// `percentile(field, p)`'s percentage.
pub(super) fn percentile_arg(args: &[Expr]) -> Result<f64, ExecError> {
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
pub(super) struct Lowered {
    pub(super) aggs: Vec<DfExpr>,
    /// The `GROUP BY time` interval and offset.
    pub(super) window: Option<(i64, i64)>,
    /// Fields whose neighbouring points (`__before_<field>`, `__after_<field>`) an aggregate
    /// takes (`integral` over time buckets).
    pub(super) neighbours: BTreeSet<String>,
    /// The lone selector whose point the other selected fields and tags come from
    /// (`SELECT max(f), g, host`), if the statement is of that kind.
    pub(super) aux: Option<LoneSelector>,
    /// The columns of the `count` calls (`count(distinct())` too).
    pub(super) counts: BTreeSet<String>,
}

/// What an output column of aggregates is in a `GROUP BY time` bucket without points under
/// the default `fill(null)`: 1.x fills each call of an empty bucket, a count with 0 and the
/// rest with null, before it computes the field (`count(f) + 1` is 1).
pub(super) enum EmptyBucket {
    /// Null, as the gap filling leaves it (the column counts nothing).
    Null,
    /// A bare `count(...)`: 0, in a series that has points of the field in the range; null
    /// throughout in one that has none (1.x has no iterator of that field to fill).
    Count,
    /// An expression of counts: this value.
    Value(DfExpr),
}

impl EmptyBucket {
    /// For an output column `e` of the aggregate columns (`counts` are those of `count`s).
    pub(super) fn of(e: &DfExpr, counts: &BTreeSet<String>) -> Self {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        if matches!(e, DfExpr::Column(c) if counts.contains(&c.name)) {
            return EmptyBucket::Count;
        }
        let mut counted = false;
        let empty = e.clone().transform(|x| {
            Ok(match x {
                DfExpr::Column(c) if counts.contains(&c.name) => {
                    counted = true;
                    Transformed::yes(lit(0i64))
                }
                DfExpr::Column(c) if c.name.starts_with("__a") => {
                    Transformed::yes(lit(ScalarValue::Null))
                }
                other => Transformed::no(other),
            })
        });
        match empty {
            Ok(t) if counted => EmptyBucket::Value(t.data),
            _ => EmptyBucket::Null,
        }
    }
}

impl Plan<'_> {
    /// The counts of buckets the gap filling added (see [`EmptyBucket`]), under the default
    /// `fill(null)`; other fills fill counts as they fill anything.
    pub(super) fn fill_counts(
        &self,
        df: DataFrame,
        ntags: usize,
        empty: &[EmptyBucket],
        ties: &[String],
    ) -> Result<DataFrame, ExecError> {
        use datafusion::functions::core::expr_fn::coalesce;
        use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionDefinition};
        if !matches!(self.stmt.fill, None | Some(Fill::Null))
            || empty.iter().all(|e| matches!(e, EmptyBucket::Null))
        {
            return Ok(df);
        }
        let tags: Vec<DfExpr> = (0..ntags).map(|i| col(format!("__tag{i}"))).collect();
        let mut select = vec![col("__time")];
        select.extend(tags.iter().cloned());
        for (i, empty) in empty.iter().enumerate() {
            let c = col(format!("__c{i}"));
            let filled = match empty {
                EmptyBucket::Null => c,
                EmptyBucket::Value(v) => coalesce(vec![c, v.clone()]),
                EmptyBucket::Count => {
                    let most = DfExpr::from(WindowFunction::new(
                        WindowFunctionDefinition::AggregateUDF(
                            datafusion::functions_aggregate::min_max::max_udaf(),
                        ),
                        vec![c.clone()],
                    ))
                    .partition_by(tags.clone())
                    .build()?;
                    datafusion::logical_expr::when(most.gt(lit(0i64)), coalesce(vec![c, lit(0i64)]))
                        .otherwise(lit(ScalarValue::Int64(None)))?
                }
            };
            select.push(filled.alias(format!("__c{i}")));
        }
        select.extend(ties.iter().map(|t| col(t.as_str())));
        Ok(frame::select(df, select)?)
    }
}

/// The aggregate calls (name and arguments) in `exprs`, nested ones included, in order.
pub(super) fn aggregate_calls<'e>(
    exprs: impl IntoIterator<Item = &'e Expr>,
) -> Vec<(String, Vec<Expr>)> {
    let mut calls = Vec::new();
    for e in exprs {
        e.walk(&mut |x| {
            if let Expr::Call { name, args } = x {
                if functions::is_aggregate(name) {
                    calls.push((name.clone(), args.clone()));
                }
            }
        });
    }
    calls
}

/// A statement's only call, a selector (`max`, `min`, `first`, `last` or `percentile`): it
/// reports the time of the point it picks, and the fields and tags selected beside it take
/// their values from that point.
#[derive(Debug, Clone)]
pub(super) struct LoneSelector {
    name: String,
    field: String,
    percentile: Option<f64>,
    /// Whether fields or tags are selected beside it.
    pub(super) beside: bool,
}

impl LoneSelector {
    /// The statement's lone selector, if its fields hold exactly one call and it is a
    /// selector.
    pub(super) fn of(
        fields: &[(String, usize, Expr)],
        schema: &TableSchema,
    ) -> Result<Option<Self>, ExecError> {
        let exprs = || fields.iter().map(|(_, _, e)| e);
        let beside = exprs().any(|e| aggregate_calls([e]).is_empty());
        match aggregate_calls(exprs()).as_slice() {
            [(name, args)] if functions::is_selector(name) => Ok(Some(Self {
                name: name.clone(),
                field: field_arg(name, args, schema)?,
                percentile: (name == "percentile")
                    .then(|| percentile_arg(args))
                    .transpose()?,
                beside,
            })),
            _ => Ok(None),
        }
    }

    /// The selector's field.
    pub(super) fn field(&self) -> &str {
        &self.field
    }

    /// The selected point's time, value (`Output::Value`) or `other` (`Output::Aux`).
    pub(super) fn call(&self, output: Output, other: Option<DfExpr>) -> Result<DfExpr, ExecError> {
        let mut args = vec![ident(&self.field), time_ns()];
        args.extend(other);
        Ok(match self.percentile {
            Some(p) => InfluxAggregate::percentile(p, output).udaf().call(args),
            None => {
                let Some(kind) = SelectorKind::parse(&self.name) else {
                    return Err(query_err(format!("undefined function {}()", self.name)));
                };
                InfluxSelector::new(kind, output).udaf().call(args)
            }
        })
    }
}

/// Turns an aggregate expression into DataFusion aggregates (pushed to `out.aggs`) and the
/// expression over their results.
pub(super) fn lower_aggregate(
    e: &Expr,
    schema: &TableSchema,
    out: &mut Lowered,
    field_idx: usize,
    top: bool,
) -> Result<DfExpr, ExecError> {
    match e {
        Expr::Call { name, args } if functions::is_math(name) => {
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
                    let field = field_arg(inner, inner_args, schema)?;
                    if !schema.fields.contains_key(&field) {
                        return Ok(lit(ScalarValue::Null));
                    }
                    let alias = format!("__a{}_{field_idx}_count_distinct", out.aggs.len());
                    out.aggs
                        .push(agg::count_distinct(ident(&field)).alias(&alias));
                    out.counts.insert(alias.clone());
                    return Ok(col(alias.as_str()));
                }
            }
            let field = field_arg(name, args, schema)?;
            if !schema.fields.contains_key(&field) {
                return Ok(lit(ScalarValue::Null));
            }
            let c = ident(&field);
            let numeric = !matches!(
                schema.fields.get(&field),
                Some(ingester::FieldType::String | ingester::FieldType::Boolean)
            );
            let boolean = schema.fields.get(&field) == Some(&ingester::FieldType::Boolean);
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
                // 1.x's min and max take booleans too (false before true).
                "min" if numeric || boolean => agg::min(c.clone()),
                "max" if numeric || boolean => agg::max(c.clone()),
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
                    // 1.x's text names the iterator of the field's type.
                    let kind = match schema.fields.get(&field) {
                        Some(ingester::FieldType::String) => "string",
                        Some(ingester::FieldType::Boolean) => "boolean",
                        Some(ingester::FieldType::Integer) => "integer",
                        Some(ingester::FieldType::Unsigned) => "unsigned",
                        _ => "float",
                    };
                    return Err(query_err(format!(
                        "unsupported {other} iterator type: *query.{kind}InterruptIterator"
                    )));
                }
            };
            let alias = format!("__a{}_{field_idx}_{}", out.aggs.len(), name);
            if name == "count" {
                out.counts.insert(alias.clone());
            }
            out.aggs.push(f.alias(&alias));
            Ok(col(alias.as_str()))
        }
        Expr::Paren(inner) => lower_aggregate(inner, schema, out, field_idx, false),
        Expr::Binary { op, lhs, rhs } => arithmetic(
            lower_aggregate(lhs, schema, out, field_idx, false)?,
            *op,
            lower_aggregate(rhs, schema, out, field_idx, false)?,
        ),
        Expr::Integer(n) => Ok(lit(*n)),
        Expr::Number(n) => Ok(lit(*n)),
        // A field or tag beside a lone selector: its value at the selected point.
        Expr::VarRef { name, .. } if out.aux.is_some() => {
            let Some(sel) = out.aux.clone() else {
                return Err(ExecError::Internal(
                    "an aux field without its selector".into(),
                ));
            };
            if !schema.fields.contains_key(sel.field()) {
                return Ok(lit(ScalarValue::Null));
            }
            let other = if schema.fields.contains_key(name) {
                ident(name)
            } else if schema.tags.contains(name) {
                datafusion::logical_expr::cast(ident(name), DataType::Utf8)
            } else {
                lit(ScalarValue::Utf8(None))
            };
            let alias = format!("__a{}_{field_idx}_aux", out.aggs.len());
            out.aggs
                .push(sel.call(Output::Aux, Some(other))?.alias(&alias));
            Ok(col(alias.as_str()))
        }
        other => Err(query_err(format!(
            "expected an aggregate function, found {other}"
        ))),
    }
}

/// The value (or, with [`Output::Time`], the time) of the point selector `name` picks, with
/// 1.x's tie-breaking ([`crate::plan::selector`]).
pub(super) fn selector(name: &str, field: &str, output: Output) -> Result<DfExpr, ExecError> {
    let Some(kind) = SelectorKind::parse(name) else {
        return Err(query_err(format!("undefined function {name}()")));
    };
    Ok(InfluxSelector::new(kind, output)
        .udaf()
        .call(vec![ident(field), time_ns()]))
}

/// `tag = 'x'` or `tag =~ /re/` where the empty string cannot match.
pub(super) fn plain_tag_comparison(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    schema: &TableSchema,
) -> bool {
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

pub(super) fn df_op(op: BinaryOp) -> Result<Operator, ExecError> {
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

/// `l op r`, with 1.x's answers where DataFusion's differ: InfluxQL divides as floats (`9i / 2`
/// is 4.5), a division by zero is 0 (not an infinity), and so is an integer modulo zero (not an
/// error).
fn arithmetic(l: DfExpr, op: BinaryOp, r: DfExpr) -> Result<DfExpr, ExecError> {
    let (l, r) = if op == BinaryOp::Div {
        (
            datafusion::logical_expr::cast(l, DataType::Float64),
            datafusion::logical_expr::cast(r, DataType::Float64),
        )
    } else {
        (l, r)
    };
    let plain = DfExpr::BinaryExpr(BinaryExpr::new(
        Box::new(l.clone()),
        df_op(op)?,
        Box::new(r.clone()),
    ));
    let zero = match op {
        BinaryOp::Div => lit(0.0f64),
        // An integer modulo 0 is 0 of its own type (`l - l`, evaluated only where r is 0); a
        // float's is NaN in 1.x, answered as null.
        BinaryOp::Mod => {
            use datafusion::functions::core::expr_fn::arrow_typeof;
            let float = |e: DfExpr| arrow_typeof(e).eq(lit("Float64"));
            let l_minus_l = DfExpr::BinaryExpr(BinaryExpr::new(
                Box::new(l.clone()),
                Operator::Minus,
                Box::new(l.clone()),
            ));
            datafusion::logical_expr::when(float(l).or(float(r.clone())), lit(ScalarValue::Null))
                .otherwise(l_minus_l)?
        }
        _ => return Ok(plain),
    };
    Ok(datafusion::logical_expr::when(r.eq(lit(0i64)), zero).otherwise(plain)?)
}

/// Whether a field of type `have` is read at all when asked for as `::want`: numbers convert
/// to numbers, and anything else only to its own type (1.x reads no `s::integer`, so a row
/// with only such a value is no row).
pub(super) fn cast_reads(have: FieldType, want: VarType) -> bool {
    let numeric = matches!(
        have,
        FieldType::Float | FieldType::Integer | FieldType::Unsigned
    );
    match want {
        VarType::Float | VarType::Integer | VarType::Unsigned => numeric,
        VarType::String => have == FieldType::String,
        VarType::Boolean => have == FieldType::Boolean,
        VarType::Field | VarType::Tag => true,
    }
}

/// A field read as `::type` asks: numbers convert to numbers (a float to an integer truncates,
/// as 1.x), anything else of another type is null (1.x's `s::integer`, `b::string`).
fn cast_field(field: DfExpr, have: FieldType, want: VarType) -> DfExpr {
    use datafusion::logical_expr::cast;
    if !cast_reads(have, want) {
        return lit(ScalarValue::Null);
    }
    match want {
        VarType::Float => cast(field, DataType::Float64),
        VarType::Integer => cast(field, DataType::Int64),
        VarType::Unsigned => cast(field, DataType::UInt64),
        _ => field,
    }
}

/// A condition (one conjunct of a `WHERE`) as a DataFusion expression, with 1.x's rules for
/// what a condition may be: a bare variable is refused (`invalid condition expression: b`), and
/// an arithmetic expression where a comparison belongs holds for every row.
pub(crate) fn condition_to_df(e: &Expr, schema: &TableSchema) -> Result<DfExpr, ExecError> {
    to_df(&condition_operand(e)?, schema, true)
}

/// The expression around a transformation (`moving_average(f, 2) * 2`), of its value.
fn post_expression(e: &Expr, value: DfExpr) -> Result<DfExpr, ExecError> {
    Ok(match e {
        Expr::VarRef { name, .. } if name == super::TRANSFORMED => value,
        Expr::Integer(n) => lit(*n),
        Expr::Number(n) => lit(*n),
        Expr::Paren(inner) => post_expression(inner, value)?,
        Expr::Call { name, args } => math_call(
            name,
            args.iter()
                .map(|a| post_expression(a, value.clone()))
                .collect::<Result<Vec<_>, _>>()?,
        )?,
        Expr::Binary { op, lhs, rhs } => arithmetic(
            post_expression(lhs, value.clone())?,
            *op,
            post_expression(rhs, value)?,
        )?,
        other => {
            return Err(ExecError::Internal(format!(
                "unexpected {other} around a transformation"
            )));
        }
    })
}

/// `e` as an operand of `AND`/`OR` (or a whole condition), checked and rewritten as above.
fn condition_operand(e: &Expr) -> Result<Expr, ExecError> {
    let mut inner = e;
    while let Expr::Paren(i) = inner {
        inner = i;
    }
    match inner {
        Expr::VarRef { .. } => Err(query_err(format!("invalid condition expression: {e}"))),
        Expr::Binary { op, .. } if super::types::is_arithmetic(*op) => Ok(Expr::Boolean(true)),
        _ => Ok(e.clone()),
    }
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
                // In a condition too: `f::integer = 1` compares the truncated value (1.x).
                (true, Some(cast)) => match schema.fields.get(name) {
                    Some(have) => cast_field(ident(name), *have, *cast),
                    None => ident(name),
                },
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
        Expr::Binary { op, lhs, rhs }
            if condition && matches!(op, BinaryOp::And | BinaryOp::Or) =>
        {
            let (l, r) = (
                to_df(&condition_operand(lhs)?, schema, true)?,
                to_df(&condition_operand(rhs)?, schema, true)?,
            );
            arithmetic(l, *op, r)?
        }
        Expr::Binary { op, lhs, rhs } if condition => {
            match super::types::in_condition(*op, lhs, rhs, schema) {
                super::types::InCondition::False => lit(false),
                super::types::InCondition::Null => lit(ScalarValue::Null),
                super::types::InCondition::AsIs => binary(*op, lhs, rhs, schema, true)?,
            }
        }
        Expr::Binary { op, lhs, rhs } => binary(*op, lhs, rhs, schema, false)?,
        Expr::Call { name, args } if functions::is_math(name) => {
            // 1.x answers null for a math function of a string, boolean or tag.
            if args.iter().any(|a| super::types::not_numeric(a, schema)) {
                return Ok(lit(ScalarValue::Float64(None)));
            }
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

/// `lhs op rhs` of plain values: arithmetic as InfluxQL does it, and `&`, `|`, `^` of a boolean
/// as 1.x evaluates them (logical, false with anything but a boolean on the right).
fn binary(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    schema: &TableSchema,
    condition: bool,
) -> Result<DfExpr, ExecError> {
    let bitwise = matches!(op, BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor);
    if bitwise && super::types::is_boolean(lhs, schema) {
        if !super::types::is_boolean(rhs, schema) {
            return Ok(lit(false));
        }
        let (l, r) = (
            to_df(lhs, schema, condition)?,
            to_df(rhs, schema, condition)?,
        );
        return Ok(match op {
            BinaryOp::BitAnd => l.and(r),
            BinaryOp::BitOr => l.or(r),
            _ => l.not_eq(r),
        });
    }
    arithmetic(
        to_df(lhs, schema, condition)?,
        op,
        to_df(rhs, schema, condition)?,
    )
}
