//! Subqueries: the inner statement runs first, and its answer becomes a table per measurement
//! (its series' tags as tag columns, its value columns as fields) for the outer one.

use super::*;

/// Runs a subquery and turns its series into one table per measurement: the series' tags become
/// tag columns, its value columns fields. An unbounded subquery gets the outer time range.
pub(super) fn subquery_frames<'a>(
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
            explain: None,
            ..ctx.clone()
        };
        let mut sink = SeriesSink::list();
        execute(ex, &inner, default_db, &inner_ctx, &mut sink).await?;
        let series = sink.into_series()?;
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

/// Series of one measurement as one batch: their tags as plain text columns, their value
/// columns (of their own Arrow types) as fields, and `time`.
pub(super) fn series_to_batch(series: &[Series]) -> Result<(RecordBatch, TableSchema), ExecError> {
    use datafusion::arrow::array::{StringBuilder, new_null_array};
    use datafusion::arrow::compute::concat;
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    let mut schema = TableSchema::default();
    for s in series {
        schema
            .tags
            .extend(s.tags.iter().flat_map(|t| t.keys().cloned()));
    }
    // The value columns in order of first appearance, each with the type it is stored as.
    let mut columns: Vec<(String, FieldType)> = Vec::new();
    for s in series {
        for (i, name) in s.columns.iter().enumerate().skip(1) {
            if schema.tags.contains(name) || columns.iter().any(|(n, _)| n == name) {
                continue;
            }
            let ty = match s.batch.column(i).data_type() {
                DataType::Timestamp(_, _) => FieldType::Integer,
                other => FieldType::from_arrow(other).unwrap_or(FieldType::String),
            };
            columns.push((name.clone(), ty));
        }
    }
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for tag in &schema.tags {
        fields.push(Field::new(tag, DataType::Utf8, true));
        let mut b = StringBuilder::new();
        for s in series {
            let v = s.tags.as_ref().and_then(|t| t.get(tag));
            for _ in 0..s.num_rows() {
                b.append_option(v);
            }
        }
        arrays.push(std::sync::Arc::new(b.finish()));
    }
    for (name, ty) in &columns {
        schema.fields.insert(name.clone(), *ty);
        let dt = ty.arrow();
        let pieces = series
            .iter()
            .map(|s| match s.columns.iter().position(|c| c == name) {
                Some(i) => Ok(cast(s.batch.column(i), &dt)?),
                None => Ok(new_null_array(&dt, s.num_rows())),
            })
            .collect::<Result<Vec<ArrayRef>, ExecError>>()?;
        let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
        fields.push(Field::new(name, dt, true));
        arrays.push(concat(&refs)?);
    }
    let time_type = DataType::Timestamp(TimeUnit::Nanosecond, None);
    let times = series
        .iter()
        .map(|s| Ok(cast(s.batch.column(0), &time_type)?))
        .collect::<Result<Vec<ArrayRef>, ExecError>>()?;
    let refs: Vec<&dyn Array> = times.iter().map(|a| a.as_ref()).collect();
    fields.push(Field::new(TIME, time_type, false));
    arrays.push(if refs.is_empty() {
        new_null_array(&DataType::Timestamp(TimeUnit::Nanosecond, None), 0)
    } else {
        concat(&refs)?
    });
    Ok((
        RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), arrays)?,
        schema,
    ))
}
