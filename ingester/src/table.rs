//! The in-memory buffer of one measurement in one shard, as Arrow builders.
//!
//! Rows are appended in arrival order; a tag key or field that appears later is back-filled
//! with nulls. The buffer is never deduplicated in place: [`crate::batch::sort_dedup`] merges
//! points with the same series and time (later write wins per field) whenever the buffer is
//! read as a batch.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::Int32Type;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use line_protocol::{FieldValue, Point};

use crate::schema::{FieldType, TableSchema};

enum FieldBuilder {
    Float(Float64Builder),
    Integer(Int64Builder),
    Unsigned(UInt64Builder),
    String(StringBuilder),
    Boolean(BooleanBuilder),
}

impl FieldBuilder {
    fn new(t: FieldType, nulls: usize) -> Self {
        let mut b = match t {
            FieldType::Float => Self::Float(Float64Builder::new()),
            FieldType::Integer => Self::Integer(Int64Builder::new()),
            FieldType::Unsigned => Self::Unsigned(UInt64Builder::new()),
            FieldType::String => Self::String(StringBuilder::new()),
            FieldType::Boolean => Self::Boolean(BooleanBuilder::new()),
        };
        b.append_nulls(nulls);
        b
    }

    fn append_nulls(&mut self, n: usize) {
        match self {
            Self::Float(b) => b.append_nulls(n),
            Self::Integer(b) => b.append_nulls(n),
            Self::Unsigned(b) => b.append_nulls(n),
            Self::String(b) => (0..n).for_each(|_| b.append_null()),
            Self::Boolean(b) => b.append_nulls(n),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Float(b) => b.len(),
            Self::Integer(b) => b.len(),
            Self::Unsigned(b) => b.len(),
            Self::String(b) => b.len(),
            Self::Boolean(b) => b.len(),
        }
    }

    /// Appends `v`; the caller has checked that the type matches. A mismatch appends a null
    /// rather than panicking (it cannot happen after validation).
    fn append(&mut self, v: &FieldValue<'_>) {
        match (self, v) {
            (Self::Float(b), FieldValue::Float(x)) => b.append_value(*x),
            (Self::Integer(b), FieldValue::Integer(x)) => b.append_value(*x),
            (Self::Unsigned(b), FieldValue::UInteger(x)) => b.append_value(*x),
            (Self::String(b), FieldValue::String(s)) => b.append_value(s),
            (Self::Boolean(b), FieldValue::Boolean(x)) => b.append_value(*x),
            (b, _) => b.append_nulls(1),
        }
    }

    fn finish_cloned(&self) -> ArrayRef {
        match self {
            Self::Float(b) => Arc::new(b.finish_cloned()),
            Self::Integer(b) => Arc::new(b.finish_cloned()),
            Self::Unsigned(b) => Arc::new(b.finish_cloned()),
            Self::String(b) => Arc::new(b.finish_cloned()),
            Self::Boolean(b) => Arc::new(b.finish_cloned()),
        }
    }
}

/// The builders of one kind of column (tags or fields).
struct Columns<B> {
    /// In order of first appearance; `index` gives each name's builder (and, iterated, the
    /// schema's name order).
    builders: Vec<(String, B)>,
    index: BTreeMap<String, usize>,
    /// The builders the previous point's keys went to: the next point usually has the same
    /// keys, which then cost one comparison each instead of a map lookup.
    last: Vec<usize>,
}

impl<B> Default for Columns<B> {
    fn default() -> Self {
        Self {
            builders: Vec::new(),
            index: BTreeMap::new(),
            last: Vec::new(),
        }
    }
}

impl<B> Columns<B> {
    /// Points `last` at the builders of `keys`, creating missing ones with `new`.
    fn resolve<V>(&mut self, keys: &[(Cow<'_, str>, V)], mut new: impl FnMut(&str, &V) -> B) {
        let same = self.last.len() == keys.len()
            && self
                .last
                .iter()
                .zip(keys)
                .all(|(&i, (k, _))| self.builders[i].0 == *k);
        if same {
            return;
        }
        self.last.clear();
        for (k, v) in keys {
            let i = match self.index.get(k.as_ref()) {
                Some(&i) => i,
                None => {
                    self.index.insert(k.to_string(), self.builders.len());
                    self.builders.push((k.to_string(), new(k, v)));
                    self.builders.len() - 1
                }
            };
            self.last.push(i);
        }
    }
}

/// A [`TableBuffer`] taken out of the active set for persistence: written no more, sorted
/// once, by persistence or by the first reader to need it, and then held only as the sorted
/// batch. Freezing therefore only moves buffers, so writes wait for no sort.
pub struct FrozenTable {
    schema: TableSchema,
    rows: std::sync::Mutex<FrozenRows>,
}

enum FrozenRows {
    Unsorted(Box<TableBuffer>),
    Sorted(RecordBatch),
}

impl FrozenTable {
    pub fn new(buffer: TableBuffer) -> Self {
        Self {
            schema: buffer.schema.clone(),
            rows: std::sync::Mutex::new(FrozenRows::Unsorted(Box::new(buffer))),
        }
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    /// The rows sorted and merged as [`TableBuffer::snapshot`] gives them; the first call
    /// sorts them and lets the builders go.
    pub fn sorted(&self) -> Result<RecordBatch, ArrowError> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let batch = match &*rows {
            FrozenRows::Sorted(b) => return Ok(b.clone()),
            FrozenRows::Unsorted(t) => t.snapshot()?,
        };
        *rows = FrozenRows::Sorted(batch.clone());
        Ok(batch)
    }
}

impl std::fmt::Debug for FrozenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrozenTable")
            .field("schema", &self.schema)
            .finish()
    }
}

/// Rows of one measurement of one shard, not yet persisted.
pub struct TableBuffer {
    schema: TableSchema,
    rows: usize,
    time: TimestampNanosecondBuilder,
    tags: Columns<StringDictionaryBuilder<Int32Type>>,
    fields: Columns<FieldBuilder>,
    min_time: i64,
    max_time: i64,
    approx_bytes: usize,
    /// The rows sorted and merged, as of `rows` rows: readers share it until the next write.
    snapshot: std::sync::Mutex<Option<(usize, RecordBatch)>>,
}

impl Default for TableBuffer {
    fn default() -> Self {
        Self {
            schema: TableSchema::default(),
            rows: 0,
            time: TimestampNanosecondBuilder::new(),
            tags: Columns::default(),
            fields: Columns::default(),
            min_time: i64::MAX,
            max_time: i64::MIN,
            approx_bytes: 0,
            snapshot: std::sync::Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for TableBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableBuffer")
            .field("rows", &self.rows)
            .field("schema", &self.schema)
            .finish()
    }
}

impl TableBuffer {
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.rows > 0).then_some((self.min_time, self.max_time))
    }

    /// Bytes this buffer holds, roughly (what the memory bound counts).
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }

    /// Appends one validated point; returns the bytes it added.
    pub fn push(&mut self, p: &Point<'_>) -> usize {
        let row = self.rows;
        let mut bytes = 16;
        let schema = &mut self.schema;
        self.tags.resolve(&p.tags, |k, _| {
            schema.tags.insert(k.to_string());
            let mut b = StringDictionaryBuilder::<Int32Type>::new();
            b.append_nulls(row);
            b
        });
        for (&i, (_, v)) in self.tags.last.iter().zip(&p.tags) {
            self.tags.builders[i].1.append_value(v);
            bytes += 4;
        }
        self.fields.resolve(&p.fields, |k, v| {
            let t = FieldType::of(v);
            schema.fields.insert(k.to_string(), t);
            FieldBuilder::new(t, row)
        });
        for (&i, (_, v)) in self.fields.last.iter().zip(&p.fields) {
            self.fields.builders[i].1.append(v);
            bytes += match v {
                FieldValue::String(s) => s.len() + 8,
                _ => 9,
            };
        }
        self.time.append_value(p.time);
        self.rows += 1;
        // Columns this point did not mention get a null.
        if self.tags.last.len() < self.tags.builders.len() {
            for (_, b) in &mut self.tags.builders {
                if b.len() < self.rows {
                    b.append_null();
                }
            }
        }
        if self.fields.last.len() < self.fields.builders.len() {
            for (_, b) in &mut self.fields.builders {
                if b.len() < self.rows {
                    b.append_nulls(1);
                }
            }
        }
        self.min_time = self.min_time.min(p.time);
        self.max_time = self.max_time.max(p.time);
        self.approx_bytes += bytes;
        bytes
    }

    /// The rows sorted by series and time with points of the same series and time merged
    /// (later write wins per field). Computed once per change of the buffer.
    pub fn snapshot(&self) -> Result<RecordBatch, ArrowError> {
        let mut cached = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((rows, batch)) = cached.as_ref() {
            if *rows == self.rows {
                return Ok(batch.clone());
            }
        }
        let batch = crate::batch::sort_dedup(&self.to_batch()?)?;
        *cached = Some((self.rows, batch.clone()));
        Ok(batch)
    }

    /// The rows as one batch in arrival order (not deduplicated), in the schema's column order.
    pub fn to_batch(&self) -> Result<RecordBatch, ArrowError> {
        let schema = self.schema.arrow();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for &i in self.tags.index.values() {
            cols.push(Arc::new(self.tags.builders[i].1.finish_cloned()));
        }
        for &i in self.fields.index.values() {
            cols.push(self.fields.builders[i].1.finish_cloned());
        }
        cols.push(Arc::new(self.time.finish_cloned()));
        RecordBatch::try_new(schema, cols)
    }
}

#[cfg(test)]
mod tests {
    use arrow::util::pretty::pretty_format_batches;
    use line_protocol::{ParseOptions, parse_body};

    use super::*;

    /// A buffer holding the points of `body` (line protocol).
    fn buffer(body: &str) -> TableBuffer {
        let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
        let mut t = TableBuffer::default();
        for p in &parsed.points {
            t.push(p);
        }
        t
    }

    #[test]
    fn a_frozen_table_sorts_once_and_answers_as_the_buffer_did() {
        let t = buffer("m,h=b x=1 2\nm,h=a x=2 1\nm,h=b y=3i 2\nm,h=a x=4 1");
        let expected = t.snapshot().unwrap();
        let schema = t.schema().clone();
        let frozen = FrozenTable::new(t);
        assert_eq!(frozen.schema(), &schema);
        assert!(matches!(
            *frozen.rows.lock().unwrap(),
            FrozenRows::Unsorted(_)
        ));
        let sorted = frozen.sorted().unwrap();
        assert_eq!(sorted, expected);
        assert_eq!(sorted.num_rows(), 2, "same series and time merged");
        // The builders are gone; the sorted rows are what is kept and handed out.
        assert!(matches!(
            *frozen.rows.lock().unwrap(),
            FrozenRows::Sorted(_)
        ));
        assert_eq!(frozen.sorted().unwrap(), expected);
    }

    #[test]
    fn keys_that_come_and_go_are_back_filled_with_nulls() {
        let t = buffer(
            "m,a=1 x=1 1\nm,a=2 x=2 2\nm,b=3 y=3i 3\nm,a=4,b=4 x=4,y=4i 4\nm,a=5 x=5 5\nm y=6i,x=6 6",
        );
        let out = pretty_format_batches(&[t.to_batch().unwrap()])
            .unwrap()
            .to_string();
        let expected = "\
+---+---+-----+---+-------------------------------+
| a | b | x   | y | time                          |
+---+---+-----+---+-------------------------------+
| 1 |   | 1.0 |   | 1970-01-01T00:00:00.000000001 |
| 2 |   | 2.0 |   | 1970-01-01T00:00:00.000000002 |
|   | 3 |     | 3 | 1970-01-01T00:00:00.000000003 |
| 4 | 4 | 4.0 | 4 | 1970-01-01T00:00:00.000000004 |
| 5 |   | 5.0 |   | 1970-01-01T00:00:00.000000005 |
|   |   | 6.0 | 6 | 1970-01-01T00:00:00.000000006 |
+---+---+-----+---+-------------------------------+";
        assert_eq!(out, expected);
        assert_eq!(t.rows(), 6);
    }
}
