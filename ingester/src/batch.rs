//! Batch kernels shared by persistence, compaction and (later) queries: put a batch into a
//! measurement's full schema, and sort it by series then time while merging points that share
//! a series and a timestamp (the later write of each field wins, as in InfluxDB 1.x).

use std::collections::BTreeMap;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, UInt32Array, new_null_array};
use arrow::compute::{cast, concat_batches, take, take_record_batch};
use arrow::datatypes::{Schema, SchemaRef, TimestampNanosecondType};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{RowConverter, SortField};

use crate::schema::{COLUMN_KIND, TIME};

/// Re-shapes `batch` into `schema`: columns it lacks become nulls, column order follows `schema`.
/// A batch of no columns keeps its row count.
pub fn align(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let rows = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    if batch.schema().fields() == schema.fields() {
        return RecordBatch::try_new_with_options(schema.clone(), batch.columns().to_vec(), &rows);
    }
    let mut cols = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        match batch.schema().index_of(f.name()) {
            Ok(i) => {
                let c = batch.column(i);
                cols.push(if c.data_type() == f.data_type() {
                    c.clone()
                } else {
                    cast(c, f.data_type())?
                });
            }
            Err(_) => cols.push(new_null_array(f.data_type(), batch.num_rows())),
        }
    }
    RecordBatch::try_new_with_options(schema.clone(), cols, &rows)
}

/// Aligns every batch to `schema` and concatenates them, oldest first.
pub fn concat_aligned(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<RecordBatch, ArrowError> {
    let aligned = batches
        .iter()
        .map(|b| align(b, schema))
        .collect::<Result<Vec<_>, _>>()?;
    concat_batches(schema, &aligned)
}

/// The tag columns of `batch` in the order rows are sorted by: the tag with the most distinct
/// values first (ties by name). Rows of one series stay together whatever the order, and the
/// most selective tag (a host name) gets tight min/max statistics per page and row group, so
/// a query for one series prunes what it does not need.
pub fn sort_key(batch: &RecordBatch) -> Vec<usize> {
    let schema = batch.schema();
    let mut tags: Vec<(usize, usize)> = columns_of_kind(&schema, "tag")
        .into_iter()
        .map(|i| (i, distinct_values(batch.column(i))))
        .collect();
    // Stable: equal counts keep schema (name) order.
    tags.sort_by(|a, b| b.1.cmp(&a.1));
    tags.into_iter().map(|(i, _)| i).collect()
}

/// The indices of the columns of one kind (`tag`, `field`), in schema order.
pub fn columns_of_kind(schema: &Schema, kind: &str) -> Vec<usize> {
    schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.metadata().get(COLUMN_KIND).map(String::as_str) == Some(kind))
        .map(|(i, _)| i)
        .collect()
}

/// Encodes the key columns (`key_cols` of `schema`, in order) as comparable rows.
pub fn key_converter(schema: &Schema, key_cols: &[usize]) -> Result<RowConverter, ArrowError> {
    RowConverter::new(
        key_cols
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )
}

/// [`sort_key`] as column names.
pub fn sort_key_names(batch: &RecordBatch) -> Vec<String> {
    let schema = batch.schema();
    sort_key(batch)
        .into_iter()
        .map(|i| schema.field(i).name().clone())
        .collect()
}

/// How many distinct values a tag column holds (dictionary keys in use, or strings).
fn distinct_values(col: &ArrayRef) -> usize {
    use arrow::array::AsArray;
    use arrow::datatypes::Int32Type;
    if let Some(dict) = col.as_dictionary_opt::<Int32Type>() {
        let mut seen = vec![false; dict.values().len()];
        for k in dict.keys().iter().flatten() {
            if let Some(s) = seen.get_mut(k as usize) {
                *s = true;
            }
        }
        return seen.into_iter().filter(|s| *s).count();
    }
    match col.as_string_opt::<i32>() {
        Some(s) => s
            .iter()
            .flatten()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        None => 0,
    }
}

/// Sorts by the tag columns ([`sort_key`]) then time, and merges rows with equal tags and time:
/// for each field, the value of the last row (in input order) that has one wins. Input order
/// must be oldest first.
pub fn sort_dedup(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    sort_dedup_by(batch, sort_key(batch))
}

/// [`sort_dedup`] with the tag columns' order given (indices into `batch`).
pub fn sort_dedup_by(batch: &RecordBatch, tags: Vec<usize>) -> Result<RecordBatch, ArrowError> {
    let n = batch.num_rows();
    if n == 0 {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut key_cols = tags;
    let field_cols = columns_of_kind(&schema, "field");
    key_cols.push(schema.index_of(TIME)?);
    let converter = key_converter(&schema, &key_cols)?;
    let key_arrays: Vec<ArrayRef> = key_cols.iter().map(|&i| batch.column(i).clone()).collect();
    let rows = converter.convert_columns(&key_arrays)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    // Stable: equal keys keep input order, so the last of a run is the latest write.
    order.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));

    // Runs of equal keys.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || rows.row(order[i] as usize) != rows.row(order[start] as usize) {
            runs.push((start, i));
            start = i;
        }
    }
    if runs.len() == n {
        return take_record_batch(batch, &UInt32Array::from(order));
    }

    let firsts = UInt32Array::from(runs.iter().map(|&(s, _)| order[s]).collect::<Vec<_>>());
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, col) in batch.columns().iter().enumerate() {
        if field_cols.contains(&i) {
            let idx: Vec<u32> = runs
                .iter()
                .map(|&(s, e)| {
                    (s..e)
                        .rev()
                        .map(|j| order[j])
                        .find(|&r| col.is_valid(r as usize))
                        .unwrap_or(order[s])
                })
                .collect();
            cols.push(take(col.as_ref(), &UInt32Array::from(idx), None)?);
        } else {
            cols.push(take(col.as_ref(), &firsts, None)?);
        }
    }
    RecordBatch::try_new(schema.clone(), cols)
}

/// Per field, the earliest of the series' last times with a value: every series of `batch`
/// that has a value for the field has its last one at or after this time. `batch` must be
/// sorted by series then time (in any tag order). A field no row has is absent.
///
/// A query for each series' last value can then skip every row before the smallest bound of
/// all sources (files record theirs in the manifest), since no series' last value is there.
pub fn last_value_bounds(batch: &RecordBatch) -> Result<BTreeMap<String, i64>, ArrowError> {
    let mut bounds = LastValueBounds::default();
    bounds.push(batch)?;
    Ok(bounds.finish())
}

/// [`last_value_bounds`] over a stream of batches in series then time order, where a series'
/// rows may go on from one batch into the next (compaction's output): the series at the end of
/// a batch stays open until the next batch shows whether it continues.
///
/// The bound stays a bound when a series' rows are not contiguous (say, sorted by a key that
/// lacks a newer tag): each of its runs ends at or before its last value, so it only gets
/// earlier.
#[derive(Default)]
pub struct LastValueBounds {
    bounds: BTreeMap<String, i64>,
    /// Per field, the last time with a value so far of the series the previous batch ended
    /// with (still open: the next batch may go on with it).
    open: Option<BTreeMap<String, i64>>,
    /// The batches' series runs, made from the first batch's schema.
    series: Option<RunsAcrossBatches>,
}

impl LastValueBounds {
    /// Takes the next batch (every batch in the same schema).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let series = match &mut self.series {
            Some(s) => s,
            None => self.series.insert(RunsAcrossBatches::new(&batch.schema())?),
        };
        let (runs, continues) = series.next(batch)?;
        self.push_runs(batch, &runs, continues)
    }

    /// Takes the next batch with its series `runs` ([`RunsAcrossBatches::next`]), the first of them
    /// going on with the series the previous batch ended with when `continues`.
    pub fn push_runs(
        &mut self,
        batch: &RecordBatch,
        runs: &[std::ops::Range<usize>],
        continues: bool,
    ) -> Result<(), ArrowError> {
        if runs.is_empty() {
            return Ok(());
        }
        let schema = batch.schema();
        let times = time_values(batch)?;
        let fields = columns_of_kind(&schema, "field");
        let last = runs.len() - 1;
        for (r, run) in runs.iter().enumerate() {
            let mut lasts: BTreeMap<String, i64> = BTreeMap::new();
            if r == 0
                && let Some(so_far) = self.open.take()
            {
                if continues {
                    lasts = so_far;
                } else {
                    close(&mut self.bounds, so_far);
                }
            }
            for &f in &fields {
                let col = batch.column(f);
                if let Some(i) = run.clone().rev().find(|&i| col.is_valid(i)) {
                    lasts.insert(schema.field(f).name().clone(), times.value(i));
                }
            }
            if r == last {
                self.open = Some(lasts);
            } else {
                close(&mut self.bounds, lasts);
            }
        }
        Ok(())
    }

    /// The bounds of every batch pushed.
    pub fn finish(mut self) -> BTreeMap<String, i64> {
        if let Some(lasts) = self.open.take() {
            close(&mut self.bounds, lasts);
        }
        self.bounds
    }
}

/// The runs of one series in batches written one after another in series order, following a
/// series from one batch into the next (a file's writer, and its last-value bounds, see a
/// compaction's output a batch at a time).
pub struct RunsAcrossBatches {
    /// The tag columns: a change of any of them starts a series.
    tags: Vec<usize>,
    /// Their converter to comparable rows; `None` without tags (one series).
    converter: Option<RowConverter>,
    /// The tag values of the last row of the previous batch; `None` before the first batch.
    last: Option<arrow::row::OwnedRow>,
    /// Whether a batch was seen (without tags, every batch after the first goes on).
    started: bool,
}

impl RunsAcrossBatches {
    /// The runs of batches in `schema`.
    pub fn new(schema: &Schema) -> Result<Self, ArrowError> {
        let tags = columns_of_kind(schema, "tag");
        let converter = match tags.is_empty() {
            true => None,
            false => Some(key_converter(schema, &tags)?),
        };
        Ok(Self {
            tags,
            converter,
            last: None,
            started: false,
        })
    }

    /// The next batch's runs of one series, in order, and whether the first of them goes on
    /// with the series the previous batch ended with.
    pub fn next(
        &mut self,
        batch: &RecordBatch,
    ) -> Result<(Vec<std::ops::Range<usize>>, bool), ArrowError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok((Vec::new(), false));
        }
        let started = std::mem::replace(&mut self.started, true);
        let Some(converter) = &self.converter else {
            return Ok((vec![0..n], started));
        };
        let tags: Vec<ArrayRef> = self.tags.iter().map(|&i| batch.column(i).clone()).collect();
        let runs = arrow::compute::partition(&tags)?.ranges();
        // Row `i`'s tag values, comparable with another batch's.
        let key = |i: usize| -> Result<arrow::row::OwnedRow, ArrowError> {
            let row: Vec<ArrayRef> = tags.iter().map(|a| a.slice(i, 1)).collect();
            Ok(converter.convert_columns(&row)?.row(0).owned())
        };
        let first = key(0)?;
        let continues = self.last.as_ref() == Some(&first);
        self.last = Some(key(n - 1)?);
        Ok((runs, continues))
    }
}

/// A series is complete: its last time per field lowers that field's bound.
fn close(bounds: &mut BTreeMap<String, i64>, lasts: BTreeMap<String, i64>) {
    for (field, t) in lasts {
        let slot = bounds.entry(field).or_insert(t);
        *slot = (*slot).min(t);
    }
}

/// A batch's time column.
pub(crate) fn time_values(
    batch: &RecordBatch,
) -> Result<&PrimitiveArray<TimestampNanosecondType>, ArrowError> {
    batch
        .column(batch.schema().index_of(TIME)?)
        .as_primitive_opt::<TimestampNanosecondType>()
        .ok_or_else(|| ArrowError::SchemaError("time column is not a nanosecond timestamp".into()))
}

/// The smallest and largest time of a batch (which must be non-empty).
pub fn time_range(batch: &RecordBatch) -> Result<(i64, i64), ArrowError> {
    let times = time_values(batch)?;
    let min = arrow::compute::min(times).unwrap_or(i64::MAX);
    let max = arrow::compute::max(times).unwrap_or(i64::MIN);
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, TimestampNanosecondArray};
    use arrow::datatypes::{Int32Type, Schema};

    use super::*;
    use crate::schema::{tag_field, time_field};

    #[test]
    fn the_tag_with_most_values_leads_the_sort() {
        let schema = Arc::new(Schema::new(vec![
            tag_field("dc"),
            tag_field("host"),
            time_field(),
        ]));
        let dc: DictionaryArray<Int32Type> =
            vec!["east", "west", "east", "west"].into_iter().collect();
        let host: DictionaryArray<Int32Type> = vec!["b", "c", "a", "d"].into_iter().collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(dc),
                Arc::new(host),
                Arc::new(TimestampNanosecondArray::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap();
        assert_eq!(sort_key(&batch), [1, 0]);
        let sorted = sort_dedup(&batch).unwrap();
        let hosts = cast(sorted.column(1), &arrow::datatypes::DataType::Utf8).unwrap();
        let hosts: Vec<_> = arrow::array::AsArray::as_string::<i32>(&hosts)
            .iter()
            .flatten()
            .collect();
        assert_eq!(hosts, ["a", "b", "c", "d"]);
    }

    fn float_field(name: &str) -> arrow::datatypes::Field {
        crate::schema::with_kind(
            arrow::datatypes::Field::new(name, arrow::datatypes::DataType::Float64, true),
            "field",
        )
    }

    #[test]
    fn last_value_bounds_are_per_field_and_skip_nulls() {
        use arrow::array::Float64Array;
        let schema = Arc::new(Schema::new(vec![
            tag_field("host"),
            float_field("x"),
            float_field("y"),
            float_field("z"),
            time_field(),
        ]));
        // a: x at 1, y at 1 and 2; b: x at 3 and 4 (y never); sorted by series then time.
        let host: DictionaryArray<Int32Type> = vec!["a", "a", "b", "b"].into_iter().collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(host),
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    None,
                    Some(3.0),
                    Some(4.0),
                ])),
                Arc::new(Float64Array::from(vec![Some(1.0), Some(2.0), None, None])),
                Arc::new(Float64Array::from(vec![None, None, None, None])),
                Arc::new(TimestampNanosecondArray::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap();
        let bounds = last_value_bounds(&batch).unwrap();
        // x: a's last x is at 1 (not its last row, 2), b's at 4.
        assert_eq!(bounds.get("x"), Some(&1));
        assert_eq!(bounds.get("y"), Some(&2));
        assert_eq!(bounds.get("z"), None);
    }

    #[test]
    fn last_value_bounds_follow_a_series_into_the_next_batch() {
        use arrow::array::Float64Array;
        let schema = Arc::new(Schema::new(vec![
            tag_field("host"),
            float_field("x"),
            time_field(),
        ]));
        let batch = |hosts: Vec<&str>, xs: Vec<Option<f64>>, times: Vec<i64>| {
            let host: DictionaryArray<Int32Type> = hosts.into_iter().collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(host),
                    Arc::new(Float64Array::from(xs)),
                    Arc::new(TimestampNanosecondArray::from(times)),
                ],
            )
            .unwrap()
        };
        // a runs from the first batch into the second, where its last x is at 30; b's at 25
        // is in the first only (its rows in the second have none); c is alone at 40.
        let mut bounds = LastValueBounds::default();
        bounds
            .push(&batch(
                vec!["a", "a"],
                vec![Some(1.0), Some(2.0)],
                vec![1, 2],
            ))
            .unwrap();
        bounds
            .push(&batch(
                vec!["a", "a", "b"],
                vec![Some(3.0), None, Some(4.0)],
                vec![30, 31, 25],
            ))
            .unwrap();
        bounds
            .push(&batch(vec!["b", "c"], vec![None, Some(5.0)], vec![26, 40]))
            .unwrap();
        assert_eq!(
            bounds.finish().get("x"),
            Some(&25),
            "a's rows at 1 and 2 are not its last"
        );
        // A series that shows up again later (not contiguous) only makes the bound earlier.
        let mut bounds = LastValueBounds::default();
        for b in [
            batch(vec!["a", "b"], vec![Some(1.0), Some(1.0)], vec![5, 50]),
            batch(vec!["a"], vec![Some(1.0)], vec![60]),
        ] {
            bounds.push(&b).unwrap();
        }
        assert_eq!(bounds.finish().get("x"), Some(&5));
    }

    #[test]
    fn last_value_bounds_without_tags_are_one_series() {
        use arrow::array::Float64Array;
        let schema = Arc::new(Schema::new(vec![float_field("x"), time_field()]));
        let batch = |xs: Vec<Option<f64>>, times: Vec<i64>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Float64Array::from(xs)),
                    Arc::new(TimestampNanosecondArray::from(times)),
                ],
            )
            .unwrap()
        };
        let mut bounds = LastValueBounds::default();
        bounds
            .push(&batch(vec![Some(1.0), Some(2.0)], vec![1, 2]))
            .unwrap();
        bounds
            .push(&batch(vec![Some(3.0), None], vec![3, 4]))
            .unwrap();
        assert_eq!(bounds.finish().get("x"), Some(&3));
    }
}
