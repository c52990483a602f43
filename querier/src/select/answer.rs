//! A statement's rows as 1.x series, streamed: a plan's output (time, the group tags, the value
//! columns; sorted by series, then time) is cut into series pieces where the tags change,
//! LIMIT/OFFSET applied per series where the plan did not, and each piece sent on as it is
//! read. Times stay Arrow timestamps (in the statement's zone); the gateway formats them.

use std::sync::Arc;

use datafusion::arrow::array::{StringArray, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{Field, Schema};
use futures::{Stream, StreamExt};

use super::*;
use crate::result::{SeriesSink, time_type};

impl<'a> Plan<'a> {
    /// Sends `batches` (columns: time, the `group_tags`, then the value columns named
    /// `columns[1..]`; sorted by series then time, series in the statement's order) as pieces
    /// of `measurement`'s series, applying LIMIT and OFFSET in each series unless the plan did
    /// (`limited`). Answers whether the statement wants more series (SLIMIT).
    pub(super) async fn emit<S>(
        &self,
        measurement: &str,
        group_tags: &[String],
        columns: &[String],
        mut batches: S,
        limited: bool,
        out: &mut SeriesSink,
    ) -> Result<bool, ExecError>
    where
        S: Stream<Item = datafusion::error::Result<RecordBatch>> + Unpin,
    {
        let (offset, limit) = if limited {
            (0, usize::MAX)
        } else {
            (
                self.stmt.offset.unwrap_or(0).max(0) as usize,
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
        let tz = self.timezone.map(|z| z.name().to_string());
        let ntags = group_tags.len();
        let nvals = columns.len().saturating_sub(1);
        let mut fields = vec![Field::new(TIME, time_type(tz.as_deref()), false)];
        let mut schema: Option<Arc<Schema>> = None;
        let mut current: Option<Vec<Option<String>>> = None;
        let mut in_series = 0usize;
        while let Some(b) = batches.next().await {
            let b = b?;
            if b.num_rows() == 0 {
                continue;
            }
            let time = cast(b.column(0), &DataType::Int64)?;
            let time = time.as_primitive::<Int64Type>();
            let time: ArrayRef = Arc::new(
                if time.null_count() == 0 {
                    TimestampNanosecondArray::new(time.values().clone(), None)
                } else {
                    time.iter().map(|t| Some(t.unwrap_or(0))).collect()
                }
                .with_timezone_opt(tz.clone()),
            );
            let tags: Vec<ArrayRef> = (0..ntags)
                .map(|i| cast(b.column(1 + i), &DataType::Utf8))
                .collect::<Result<_, _>>()?;
            let tags: Vec<&StringArray> = tags.iter().map(|a| a.as_string::<i32>()).collect();
            // Tags selected as columns come as dictionaries: plain text in an answer.
            let mut values: Vec<ArrayRef> = Vec::with_capacity(nvals + 1);
            values.push(time);
            for c in 0..nvals {
                let a = b.column(1 + ntags + c);
                values.push(match a.data_type() {
                    DataType::Dictionary(_, _) => cast(a, &DataType::Utf8)?,
                    _ => Arc::clone(a),
                });
            }
            // One schema for all pieces, from the first batch (a plan's batches share theirs).
            let schema = Arc::clone(schema.get_or_insert_with(|| {
                fields.extend(
                    values[1..]
                        .iter()
                        .zip(&columns[1..])
                        .map(|(a, n)| Field::new(n, a.data_type().clone(), true)),
                );
                Arc::new(Schema::new(std::mem::take(&mut fields)))
            }));
            let key = |r: usize| -> Vec<Option<String>> {
                tags.iter()
                    .map(|a| (!a.is_null(r)).then(|| a.value(r).to_string()))
                    .collect()
            };
            let same = |r: usize, s: usize| {
                tags.iter().all(|a| {
                    a.is_null(r) == a.is_null(s) && (a.is_null(r) || a.value(r) == a.value(s))
                })
            };
            let n = b.num_rows();
            let mut start = 0;
            while start < n {
                let mut end = start + 1;
                while end < n && same(start, end) {
                    end += 1;
                }
                let k = key(start);
                if current.as_ref() != Some(&k) {
                    current = Some(k.clone());
                    in_series = 0;
                }
                // This run's rows are the series' rows in_series..in_series + len.
                let len = end - start;
                let from = offset.saturating_sub(in_series).min(len);
                let to = offset
                    .saturating_add(limit)
                    .saturating_sub(in_series)
                    .min(len);
                in_series += len;
                if from < to {
                    let piece = RecordBatch::try_new(
                        Arc::clone(&schema),
                        values
                            .iter()
                            .map(|a| a.slice(start + from, to - from))
                            .collect(),
                    )?;
                    let tags = grouped.then(|| {
                        group_tags
                            .iter()
                            .cloned()
                            .zip(k.into_iter().map(Option::unwrap_or_default))
                            .collect()
                    });
                    let series =
                        Series::new(Some(measurement.to_string()), tags, columns.to_vec(), piece);
                    if !out.send(series).await? {
                        return Ok(false);
                    }
                }
                start = end;
            }
        }
        Ok(true)
    }
}
