//! Compaction's merge: several inputs, each sorted by the same series key and time, become one
//! sorted, deduplicated stream of batches, holding only a batch per input at a time.
//!
//! ```text
//!   file 1 (gen 3) ─▶ batches ─┐
//!   file 2 (gen 5) ─▶ batches ─┼─▶ k-way merge on (tags in key order, time) ─▶ runs of equal
//!   file 3 (no/other order)    │      keys merged: per field the last value   ─▶ output batches
//!      └─ sorted in memory ────┘      written (inputs oldest first)
//! ```
//!
//! A file records the tag order it was sorted by ([`crate::manifest::ParquetFileMeta`]). Files
//! sorted by the merge's key are streamed; any other input (an older file that records no
//! order, or one sorted by another tag order) is sorted alone in memory first, so memory is
//! bounded by the largest such input rather than by the whole table.

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::interleave;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::row::{RowConverter, Rows};

use crate::batch::{columns_of_kind, key_converter};
use crate::schema::TIME;

/// Rows per output batch (and per input batch read from a file).
pub const MERGE_BATCH_ROWS: usize = 8192;

/// One input: its batches in order, each already in the merge's schema.
pub type Input = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

struct Cursor {
    input: Input,
    /// Index of the current batch in `Merge::held`, its key rows, and the next row.
    held: usize,
    rows: Rows,
    pos: usize,
}

/// The k-way merge; an iterator of output batches.
pub struct Merge {
    schema: SchemaRef,
    key_cols: Vec<usize>,
    field_cols: Vec<usize>,
    converter: RowConverter,
    /// Live cursors; `heap` orders their indices by (current key, input position).
    cursors: Vec<Option<Cursor>>,
    heap: Vec<usize>,
    /// Batches that rows of the pending output point into.
    held: Vec<RecordBatch>,
    /// Per output row, where its tags and time come from; per field column, where its value
    /// comes from (they differ only where later writes of a series and time are merged in).
    base: Vec<(usize, usize)>,
    fields: Vec<Vec<(usize, usize)>>,
    last_key: Vec<u8>,
    failed: bool,
}

impl Merge {
    /// `key` names the tag columns in sort order; time is the last key. Inputs must be given
    /// oldest first: of equal keys, later inputs' non-null fields win.
    pub fn new(schema: SchemaRef, key: &[String], inputs: Vec<Input>) -> Result<Self, ArrowError> {
        let mut key_cols = key
            .iter()
            .map(|k| schema.index_of(k))
            .collect::<Result<Vec<_>, _>>()?;
        key_cols.push(schema.index_of(TIME)?);
        let field_cols = columns_of_kind(&schema, "field");
        let converter = key_converter(&schema, &key_cols)?;
        let mut merge = Self {
            schema,
            key_cols,
            fields: vec![Vec::new(); field_cols.len()],
            field_cols,
            converter,
            cursors: Vec::with_capacity(inputs.len()),
            heap: Vec::with_capacity(inputs.len()),
            held: Vec::new(),
            base: Vec::new(),
            last_key: Vec::new(),
            failed: false,
        };
        for input in inputs {
            let idx = merge.cursors.len();
            merge.cursors.push(None);
            merge.load(idx, input)?;
            if merge.cursors[idx].is_some() {
                merge.heap.push(idx);
                let at = merge.heap.len() - 1;
                merge.sift_up(at);
            }
        }
        Ok(merge)
    }

    /// Gives cursor `idx` the next non-empty batch of `input`, or retires it.
    fn load(&mut self, idx: usize, mut input: Input) -> Result<(), ArrowError> {
        for batch in input.by_ref() {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            if batch.schema().fields() != self.schema.fields() {
                return Err(ArrowError::SchemaError(
                    "merge input is not in the table's schema".into(),
                ));
            }
            let keys: Vec<ArrayRef> = self
                .key_cols
                .iter()
                .map(|&i| batch.column(i).clone())
                .collect();
            let rows = self.converter.convert_columns(&keys)?;
            self.held.push(batch);
            self.cursors[idx] = Some(Cursor {
                input,
                held: self.held.len() - 1,
                rows,
                pos: 0,
            });
            return Ok(());
        }
        self.cursors[idx] = None;
        Ok(())
    }

    /// Orders cursors by their current key, then by input position (older first).
    fn less(&self, a: usize, b: usize) -> bool {
        match (&self.cursors[a], &self.cursors[b]) {
            (Some(x), Some(y)) => (x.rows.row(x.pos), a) < (y.rows.row(y.pos), b),
            _ => a < b,
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(self.heap[i], self.heap[parent]) {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut best = i;
            if l < self.heap.len() && self.less(self.heap[l], self.heap[best]) {
                best = l;
            }
            if r < self.heap.len() && self.less(self.heap[r], self.heap[best]) {
                best = r;
            }
            if best == i {
                return;
            }
            self.heap.swap(i, best);
            i = best;
        }
    }

    /// Takes the smallest row into the pending output (or into the row before it, when it
    /// has the same series and time), then advances its cursor.
    fn step(&mut self) -> Result<(), ArrowError> {
        let idx = self.heap[0];
        let Some(c) = self.cursors[idx].as_mut() else {
            return Err(ArrowError::ComputeError(
                "merge heap holds a retired input".into(),
            ));
        };
        let at = (c.held, c.pos);
        let key = c.rows.row(c.pos);
        if !self.base.is_empty() && key.as_ref() == self.last_key.as_slice() {
            // A later write of the same series and time: its non-null fields replace.
            let batch = &self.held[at.0];
            let last = self.base.len() - 1;
            for (slot, &col) in self.fields.iter_mut().zip(&self.field_cols) {
                if batch.column(col).is_valid(at.1) {
                    slot[last] = at;
                }
            }
        } else {
            self.last_key.clear();
            self.last_key.extend_from_slice(key.as_ref());
            self.base.push(at);
            for slot in &mut self.fields {
                slot.push(at);
            }
        }
        c.pos += 1;
        if c.pos == c.rows.num_rows() {
            let Some(done) = self.cursors[idx].take() else {
                return Ok(());
            };
            self.load(idx, done.input)?;
            if self.cursors[idx].is_none() {
                let last = self.heap.len() - 1;
                self.heap.swap(0, last);
                self.heap.pop();
            }
        }
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        Ok(())
    }

    /// Builds the pending output rows into a batch and lets go of batches no cursor is in.
    fn flush(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut cols = Vec::with_capacity(self.schema.fields().len());
        for c in 0..self.schema.fields().len() {
            let arrays: Vec<&dyn Array> = self.held.iter().map(|b| b.column(c).as_ref()).collect();
            let picks = match self.field_cols.iter().position(|&f| f == c) {
                Some(f) => &self.fields[f],
                None => &self.base,
            };
            cols.push(interleave(&arrays, picks)?);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
        self.base.clear();
        self.fields.iter_mut().for_each(Vec::clear);
        // Keep only the batches cursors are still in, renumbered.
        let mut kept = Vec::new();
        for c in self.cursors.iter_mut().flatten() {
            kept.push(self.held[c.held].clone());
            c.held = kept.len() - 1;
        }
        self.held = kept;
        Ok(batch)
    }
}

impl Merge {
    /// Whether the next row continues the run of the last pending one (same series and time).
    fn next_continues_run(&self) -> bool {
        self.heap
            .first()
            .and_then(|&i| self.cursors[i].as_ref())
            .is_some_and(|c| c.rows.row(c.pos).as_ref() == self.last_key.as_slice())
    }
}

impl Iterator for Merge {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // A batch ends between runs, so a later write never misses the row it merges into.
        while !self.heap.is_empty()
            && (self.base.len() < MERGE_BATCH_ROWS || self.next_continues_run())
        {
            if let Err(e) = self.step() {
                self.failed = true;
                return Some(Err(e));
            }
        }
        if self.base.is_empty() {
            return None;
        }
        let result = self.flush();
        self.failed = result.is_err();
        Some(result)
    }
}

/// An input that is one sorted batch, handed out in slices.
pub fn sliced(batch: RecordBatch) -> Input {
    let n = batch.num_rows();
    Box::new(
        (0..n)
            .step_by(MERGE_BATCH_ROWS)
            .map(move |o| Ok(batch.slice(o, MERGE_BATCH_ROWS.min(n - o)))),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Float64Array, Int64Array, TimestampNanosecondArray};
    use arrow::compute::concat_batches;
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};

    use super::*;
    use crate::batch::{sort_dedup_by, sort_key_names};
    use crate::schema::{tag_field, time_field, with_kind};

    /// A deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            tag_field("dc"),
            tag_field("host"),
            with_kind(Field::new("f", DataType::Float64, true), "field"),
            with_kind(Field::new("i", DataType::Int64, true), "field"),
            time_field(),
        ]))
    }

    /// `n` random rows: few hosts and times, so the same series and time comes up in several
    /// inputs; fields are often null, so merging per field matters.
    fn random_batch(rng: &mut Rng, n: usize, tag: i64) -> RecordBatch {
        let dc: DictionaryArray<Int32Type> = (0..n)
            .map(|_| ["east", "west"].get(rng.next(3) as usize).copied())
            .collect();
        let host: DictionaryArray<Int32Type> = (0..n)
            .map(|_| Some(format!("h{}", rng.next(40))))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_deref())
            .collect();
        let f: Float64Array = (0..n)
            .map(|_| (rng.next(3) > 0).then(|| rng.next(1000) as f64))
            .collect();
        let i: Int64Array = (0..n).map(|_| (rng.next(2) > 0).then_some(tag)).collect();
        let t: TimestampNanosecondArray = (0..n).map(|_| Some(rng.next(500) as i64)).collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(dc),
                Arc::new(host),
                Arc::new(f),
                Arc::new(i),
                Arc::new(t),
            ],
        )
        .unwrap()
    }

    /// The `f` and `i` columns.
    fn values(b: &RecordBatch) -> (Vec<Option<f64>>, Vec<Option<i64>>) {
        let f = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
        let i = b.column(3).as_any().downcast_ref::<Int64Array>().unwrap();
        (f.iter().collect(), i.iter().collect())
    }

    fn merged(key: &[String], inputs: Vec<Input>) -> RecordBatch {
        let out: Vec<RecordBatch> = Merge::new(schema(), key, inputs)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(out.iter().all(|b| b.num_rows() > 0));
        concat_batches(&schema(), &out).unwrap()
    }

    #[test]
    fn the_merge_equals_sorting_everything_at_once() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        // host (index 1) then dc: the key of batches with more hosts than dcs.
        let key_cols = vec![1, 0];
        let key = vec!["host".to_string(), "dc".to_string()];
        // Inputs of several sizes: some span many merge batches, one is empty.
        let raw: Vec<RecordBatch> = [30_000, 9_000, 0, 20_000, 1]
            .iter()
            .enumerate()
            .map(|(n, &rows)| random_batch(&mut rng, rows, n as i64))
            .collect();
        let sorted: Vec<RecordBatch> = raw
            .iter()
            .map(|b| sort_dedup_by(b, key_cols.clone()).unwrap())
            .collect();
        assert_eq!(sort_key_names(&sorted[0]), key);
        let expected =
            sort_dedup_by(&concat_batches(&schema(), &sorted).unwrap(), key_cols).unwrap();
        let got = merged(&key, sorted.iter().cloned().map(sliced).collect());
        assert!(expected.num_rows() > 8 * MERGE_BATCH_ROWS / 2);
        assert_eq!(got, expected);
    }

    #[test]
    fn later_inputs_win_per_field_and_nulls_never_overwrite() {
        let one = |dc: Option<&str>, f: Option<f64>, i: Option<i64>, t: i64| {
            let dc: DictionaryArray<Int32Type> = vec![dc].into_iter().collect();
            let host: DictionaryArray<Int32Type> = vec![Some("a")].into_iter().collect();
            RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(dc),
                    Arc::new(host),
                    Arc::new(Float64Array::from(vec![f])),
                    Arc::new(Int64Array::from(vec![i])),
                    Arc::new(TimestampNanosecondArray::from(vec![t])),
                ],
            )
            .unwrap()
        };
        let key = vec!["host".to_string(), "dc".to_string()];
        let got = merged(
            &key,
            vec![
                sliced(one(Some("x"), Some(1.0), Some(1), 5)),
                sliced(one(Some("x"), None, Some(2), 5)),
                sliced(one(None, Some(3.0), None, 5)),
                sliced(one(Some("x"), Some(4.0), None, 4)),
            ],
        );
        let (f, i) = values(&got);
        // Rows: (a, null dc, 5), (a, x, 4), (a, x, 5): nulls sort first.
        assert_eq!(f, [Some(3.0), Some(4.0), Some(1.0)]);
        assert_eq!(i, [None, None, Some(2)]);
    }

    #[test]
    fn a_run_across_output_batches_is_merged_once() {
        // Two inputs with the same series and times: every row is a pair, and the pair at
        // the end of the first output batch must not be split.
        let n = MERGE_BATCH_ROWS + 10;
        let input = |f: Option<f64>, i: Option<i64>| {
            let dc: DictionaryArray<Int32Type> = (0..n).map(|_| Some("x")).collect();
            let host: DictionaryArray<Int32Type> = (0..n).map(|_| Some("a")).collect();
            RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(dc),
                    Arc::new(host),
                    Arc::new(Float64Array::from(vec![f; n])),
                    Arc::new(Int64Array::from(vec![i; n])),
                    Arc::new(TimestampNanosecondArray::from_iter_values(0..n as i64)),
                ],
            )
            .unwrap()
        };
        let key = vec!["host".to_string(), "dc".to_string()];
        let got = merged(
            &key,
            vec![
                sliced(input(Some(1.0), Some(1))),
                sliced(input(None, Some(2))),
            ],
        );
        assert_eq!(got.num_rows(), n);
        let (f, i) = values(&got);
        assert!(f.iter().all(|v| *v == Some(1.0)));
        assert!(i.iter().all(|v| *v == Some(2)));
    }

    #[test]
    fn an_input_in_another_schema_is_an_error() {
        let other = Arc::new(Schema::new(vec![tag_field("host"), time_field()]));
        let host: DictionaryArray<Int32Type> = vec!["a"].into_iter().collect();
        let b = RecordBatch::try_new(
            other,
            vec![
                Arc::new(host),
                Arc::new(TimestampNanosecondArray::from(vec![1])),
            ],
        )
        .unwrap();
        assert!(Merge::new(schema(), &["host".to_string()], vec![sliced(b)]).is_err());
    }
}
