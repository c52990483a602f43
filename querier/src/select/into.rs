//! `SELECT ... INTO`: the selection's rows written back as points through the write
//! coordinator.

use super::*;

/// `SELECT ... INTO target`: runs the selection and writes its rows as points (GROUP BY tags as
/// tags, columns as fields), answering with the number written.
pub(super) async fn select_into(
    ex: &Executor,
    stmt: &SelectStatement,
    target: &crate::influxql::Measurement,
    default_db: &str,
    ctx: &QueryContext,
) -> Result<Series, ExecError> {
    use line_protocol::Point;
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
        explain: None,
        ..ctx.clone()
    };
    let mut sink = SeriesSink::list();
    Box::pin(execute(ex, &select, default_db, &inner_ctx, &mut sink)).await?;
    let series = sink.into_series()?;
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
        let Some(measurement) = name.clone().or_else(|| s.name.clone()) else {
            continue;
        };
        let time = cast(s.batch.column(0), &DataType::Int64)?;
        let time = time.as_primitive::<Int64Type>();
        for r in 0..s.num_rows() {
            let fields: Vec<_> = s
                .columns
                .iter()
                .enumerate()
                .skip(1)
                .filter_map(|(i, col)| {
                    field_value(s.batch.column(i), r).map(|v| (Cow::Owned(col.clone()), v))
                })
                .collect();
            if fields.is_empty() {
                continue;
            }
            points.push(Point {
                measurement: Cow::Owned(measurement.clone()),
                tags: tags.clone(),
                fields,
                time: if time.is_null(r) { 0 } else { time.value(r) },
            });
        }
    }
    let outcome = ex
        .writer()
        // Every owner answers before the statement does: the rows are read back at once.
        .write_settled(db, rp, points, now_nanos())
        .await
        .map_err(|e| query_err(e.to_string()))?;
    if outcome.dropped > 0 {
        return Err(query_err(format!(
            "partial write: {} dropped={}",
            outcome.reason.unwrap_or_default(),
            outcome.dropped
        )));
    }
    let time = datafusion::arrow::array::TimestampNanosecondArray::from(vec![0i64]);
    let written = datafusion::arrow::array::Int64Array::from(vec![outcome.written as i64]);
    let batch = RecordBatch::try_from_iter(vec![
        (TIME, std::sync::Arc::new(time) as ArrayRef),
        ("written", std::sync::Arc::new(written) as ArrayRef),
    ])?;
    Ok(Series::new(
        Some("result".into()),
        None,
        vec![TIME.into(), "written".into()],
        batch,
    ))
}

/// Row `r` of a result column as a field value: as stored (a timestamp as its integer
/// nanoseconds, any other type as text); `None` for a null.
fn field_value(a: &ArrayRef, r: usize) -> Option<line_protocol::FieldValue<'static>> {
    use datafusion::arrow::datatypes::{Float64Type, UInt64Type};
    use line_protocol::FieldValue;
    use std::borrow::Cow;
    if a.is_null(r) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Float64 => FieldValue::Float(a.as_primitive::<Float64Type>().value(r)),
        DataType::Int64 => FieldValue::Integer(a.as_primitive::<Int64Type>().value(r)),
        DataType::UInt64 => FieldValue::UInteger(a.as_primitive::<UInt64Type>().value(r)),
        DataType::Boolean => FieldValue::Boolean(a.as_boolean().value(r)),
        DataType::Utf8 => FieldValue::String(Cow::Owned(a.as_string::<i32>().value(r).to_string())),
        DataType::Timestamp(_, _) => {
            FieldValue::Integer(a.as_primitive::<TimestampNanosecondType>().value(r))
        }
        _ => match ScalarValue::try_from_array(a, r).and_then(|v| v.cast_to(&DataType::Utf8)) {
            Ok(ScalarValue::Utf8(Some(s))) => FieldValue::String(Cow::Owned(s)),
            _ => return None,
        },
    })
}
