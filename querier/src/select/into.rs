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
