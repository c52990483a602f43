//! `top`, `bottom` and `sample`: the calls, and their lowering (row numbers or the seeded draw
//! per group, the first n kept; samples beside other calls zipped by position).

use super::*;

/// `top(field[, tag...], n)` / `bottom(...)` / `sample(field, n)`: the call's field, tag
/// arguments and number of points.
pub(super) struct TopCall {
    pub(super) pick: Pick,
    pub(super) field: String,
    pub(super) tags: Vec<String>,
    pub(super) n: usize,
}

pub(super) fn top_call(e: &Expr) -> Result<Option<TopCall>, ExecError> {
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
pub(super) fn sample_call(args: &[Expr]) -> Result<TopCall, ExecError> {
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
        // `sample(*)` and `sample(/re/)` are expanded before this; anything else is 1.x's error.
        _ => return Err(query_err("expected field argument in sample()")),
    };
    Ok(TopCall {
        pick: Pick::Sample,
        field,
        tags: Vec::new(),
        n,
    })
}

impl<'a> Plan<'a> {
    /// The columns of a `sample()` that shares its rows with other calls (`sample(*, n)`,
    /// `sample(/re/, n)`, several samples, or samples beside aggregates); `None` for any other
    /// statement.
    pub(super) fn zipped_samples(
        &self,
        schema: &TableSchema,
    ) -> Result<Option<Vec<Zipped>>, ExecError> {
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
    pub(super) async fn run_zipped(
        &self,
        measurement: &str,
        df: DataFrame,
        schema: &TableSchema,
        group_tags: &[String],
        columns: Vec<Zipped>,
        qctx: &QueryContext,
        reuse: Reuse<'_>,
        out: &mut SeriesSink,
    ) -> Result<bool, ExecError> {
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
                    // Points at the same time in series key order, wherever they were read.
                    let mut order = vec![ident(TIME).sort(true, false)];
                    order.extend(schema.tags.iter().map(|t| ident(t).sort(true, true)));
                    let drawn = InfluxSample::new(*n)
                        .udwf()
                        .call(draw_args)
                        .partition_by(partition)
                        .order_by(order)
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
            return Ok(true);
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
        let desc = self.stmt.order_desc;
        let mut sort: Vec<SortExpr> = (0..group_tags.len())
            .map(|i| col(format!("__tag{i}")).sort(!desc, !desc))
            .collect();
        sort.push(col("__bucket").sort(true, true));
        sort.push(col("__pos").sort(true, true));
        let df = frame::sort(frame::select(joined, select)?, sort)?;
        if let Some(analyze) = qctx.explain {
            return out
                .send(explain(df, measurement, analyze, reuse).await?)
                .await;
        }
        let batches = stream(df, reuse.unkept()).await?;
        let mut names = vec![TIME.to_string()];
        names.extend(columns.iter().map(|c| match c {
            Zipped::Sample(name, _, _) | Zipped::Aggregate(name, _) => name.clone(),
        }));
        self.emit(measurement, group_tags, &names, batches, false, out)
            .await
    }

    /// `top`/`bottom`: per group (time bucket and tags), the points with the largest (smallest)
    /// values, at most one per combination of the tag arguments, as rows in time order with
    /// their own times; other selected fields and tags come from the same points. Planned as
    /// `row_number()` windows (and `sample` as its seeded draw) filtered to the first n.
    pub(super) async fn run_top(
        &self,
        measurement: &str,
        mut df: DataFrame,
        schema: &TableSchema,
        group_tags: &[String],
        top: TopCall,
        qctx: &QueryContext,
        reuse: Reuse<'_>,
        out: &mut SeriesSink,
    ) -> Result<bool, ExecError> {
        use datafusion::functions_window::expr_fn::row_number;
        if !schema.fields.contains_key(&top.field) {
            return Ok(true);
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
        // Equal values by time, then in series key order (wherever the points were read).
        let mut by_value = vec![
            ident(&top.field).sort(top.pick == Pick::Smallest, false),
            ident(TIME).sort(true, false),
        ];
        by_value.extend(schema.tags.iter().map(|t| ident(t).sort(true, true)));
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
                // Points at the same time in series key order, wherever they were read.
                let mut order = vec![ident(TIME).sort(true, false)];
                order.extend(schema.tags.iter().map(|t| ident(t).sort(true, true)));
                let drawn = InfluxSample::new(top.n)
                    .udwf()
                    .call(args)
                    .partition_by(groups)
                    .order_by(order)
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
        // Series in the statement's order: descending keys when time goes backwards (1.x).
        let desc = self.stmt.order_desc;
        let mut sort: Vec<SortExpr> = (0..group_tags.len())
            .map(|i| col(format!("__tag{i}")).sort(!desc, !desc))
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
            return out
                .send(explain(df, measurement, analyze, reuse).await?)
                .await;
        }
        let batches = stream(df, reuse.unkept()).await?;
        let mut columns = vec![TIME.to_string()];
        columns.extend(names);
        self.emit(measurement, group_tags, &columns, batches, false, out)
            .await
    }
}
