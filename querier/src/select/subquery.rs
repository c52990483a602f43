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
pub(super) fn infer_type(values: &[&Value]) -> FieldType {
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
pub(super) fn series_to_batch(series: &[Series]) -> Result<(RecordBatch, TableSchema), ExecError> {
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
