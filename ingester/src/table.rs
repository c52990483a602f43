//! The in-memory buffer of one measurement in one shard, as Arrow builders.
//!
//! Rows are appended in arrival order; a tag key or field that appears later is back-filled
//! with nulls. Readers get the buffer as sorted runs ([`SortedRows`]: sorted by series and time,
//! points of the same series and time merged, later write wins per field), shared until the
//! next write:
//!
//! ```text
//!  push ─▶ tail (Arrow builders: the rows since the last read)
//!  snapshot ─▶ seal the tail: sorted alone (a few rows) ─▶ a new run
//!              ├─ no (series, time) of it in an older run (each series' rows newer than the
//!              │    newest it has there: the usual, time-ordered writes) ─▶ kept as a run;
//!              │    runs of similar size merged, so there are few
//!              └─ else (a rewrite, or a series' older points) ─▶ every run merged into one
//! ```
//!
//! So a query after a write sorts only the rows written since the query before it, instead of
//! the whole buffer, and the runs of one buffer never hold the same series and time: a reader
//! takes them as one source ([`SortedRows::buffer`]).

use std::any::Any;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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

/// Buffered rows as readers get them: sorted by series and time with duplicates merged, and
/// never changed. Readers share one per state of a buffer, and what they derive from the rows
/// (the querier's series index of them) is kept with it: computed by the first reader that
/// needs it, and dropped with the rows.
pub struct SortedRows {
    batch: RecordBatch,
    /// The buffer the rows come from: runs of one buffer never hold the same series and time.
    buffer: u64,
    time_range: OnceLock<(i64, i64)>,
    last_value_bounds: OnceLock<BTreeMap<String, i64>>,
    derived: OnceLock<Option<Arc<dyn Any + Send + Sync>>>,
}

impl SortedRows {
    /// Rows of their own buffer.
    pub fn new(batch: RecordBatch) -> Self {
        Self::of_buffer(batch, next_buffer_id())
    }

    fn of_buffer(batch: RecordBatch, buffer: u64) -> Self {
        Self {
            batch,
            buffer,
            time_range: OnceLock::new(),
            last_value_bounds: OnceLock::new(),
            derived: OnceLock::new(),
        }
    }

    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The buffer these rows are a run of: two runs of the same buffer never hold the same
    /// series and time, so a reader need not merge them.
    pub fn buffer(&self) -> u64 {
        self.buffer
    }

    /// The earliest and latest time of the rows ([`crate::batch::time_range`]), computed once.
    pub fn time_range(&self) -> Result<(i64, i64), ArrowError> {
        if let Some(r) = self.time_range.get() {
            return Ok(*r);
        }
        let range = crate::batch::time_range(&self.batch)?;
        Ok(*self.time_range.get_or_init(|| range))
    }

    /// [`crate::batch::last_value_bounds`] of the rows, computed once.
    pub fn last_value_bounds(&self) -> Result<&BTreeMap<String, i64>, ArrowError> {
        if let Some(b) = self.last_value_bounds.get() {
            return Ok(b);
        }
        let bounds = crate::batch::last_value_bounds(&self.batch)?;
        Ok(self.last_value_bounds.get_or_init(|| bounds))
    }

    /// What a reader derives from the rows with `make`, made by the first caller and kept
    /// with them (`None` when `make` gave none, or a reader keeps a value of another type).
    pub fn derived<T: Any + Send + Sync>(
        &self,
        make: impl FnOnce(&RecordBatch) -> Option<T>,
    ) -> Option<Arc<T>> {
        self.derived
            .get_or_init(|| make(&self.batch).map(|t| Arc::new(t) as Arc<dyn Any + Send + Sync>))
            .clone()
            .and_then(|d| d.downcast::<T>().ok())
    }
}

impl std::fmt::Debug for SortedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortedRows")
            .field("rows", &self.batch.num_rows())
            .finish_non_exhaustive()
    }
}

/// A process-wide id for each buffer ([`SortedRows::buffer`]).
fn next_buffer_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
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
    Sorted(Arc<SortedRows>),
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

    /// The rows sorted and merged in one batch (what [`TableBuffer::snapshot`]'s runs hold);
    /// the first call sorts them and lets the builders go.
    pub fn sorted(&self) -> Result<Arc<SortedRows>, ArrowError> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let sorted = match &*rows {
            FrozenRows::Sorted(b) => return Ok(Arc::clone(b)),
            FrozenRows::Unsorted(t) => Arc::new(SortedRows::new(t.sorted_whole()?)),
        };
        *rows = FrozenRows::Sorted(Arc::clone(&sorted));
        Ok(sorted)
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
    /// Rows pushed, sealed or not.
    rows: usize,
    /// The rows not yet sealed into a run: pushed since the last reader.
    tail: Mutex<Tail>,
    min_time: i64,
    max_time: i64,
    approx_bytes: usize,
    id: u64,
    /// The sealed rows as sorted runs, oldest first.
    runs: Mutex<Runs>,
}

/// The builders of the rows not yet sealed (each column back-filled with nulls for the rows
/// before it appeared).
#[derive(Default)]
struct Tail {
    rows: usize,
    time: TimestampNanosecondBuilder,
    tags: Columns<StringDictionaryBuilder<Int32Type>>,
    fields: Columns<FieldBuilder>,
}

/// A buffer's sealed rows: sorted runs, no two holding the same series and time, and per
/// series (a hash of its tag values, in the order of `tags`) the newest time the runs hold. Two
/// series with one hash share an entry, which can only make a run look overlapping when it is
/// not (and be merged): never the other way round.
#[derive(Default)]
struct Runs {
    runs: Vec<Arc<SortedRows>>,
    tags: Vec<String>,
    newest: HashMap<u64, i64>,
}

/// A run is merged into the one before it while that one holds at most this many times its
/// rows: runs then grow geometrically, so a buffer has few, and each row is re-sorted a few
/// times at most.
const RUN_RATIO: usize = 4;

impl Default for TableBuffer {
    fn default() -> Self {
        Self {
            schema: TableSchema::default(),
            rows: 0,
            tail: Mutex::new(Tail::default()),
            min_time: i64::MAX,
            max_time: i64::MIN,
            approx_bytes: 0,
            id: next_buffer_id(),
            runs: Mutex::new(Runs::default()),
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
        let tail = self.tail.get_mut().unwrap_or_else(|e| e.into_inner());
        let row = tail.rows;
        let mut bytes = 16;
        let schema = &mut self.schema;
        tail.tags.resolve(&p.tags, |k, _| {
            schema.tags.insert(k.to_string());
            let mut b = StringDictionaryBuilder::<Int32Type>::new();
            b.append_nulls(row);
            b
        });
        for (&i, (_, v)) in tail.tags.last.iter().zip(&p.tags) {
            tail.tags.builders[i].1.append_value(v);
            bytes += 4;
        }
        tail.fields.resolve(&p.fields, |k, v| {
            let t = FieldType::of(v);
            schema.fields.insert(k.to_string(), t);
            FieldBuilder::new(t, row)
        });
        for (&i, (_, v)) in tail.fields.last.iter().zip(&p.fields) {
            tail.fields.builders[i].1.append(v);
            bytes += match v {
                FieldValue::String(s) => s.len() + 8,
                _ => 9,
            };
        }
        tail.time.append_value(p.time);
        tail.rows += 1;
        // Columns this point did not mention get a null.
        if tail.tags.last.len() < tail.tags.builders.len() {
            for (_, b) in &mut tail.tags.builders {
                if b.len() < tail.rows {
                    b.append_null();
                }
            }
        }
        if tail.fields.last.len() < tail.fields.builders.len() {
            for (_, b) in &mut tail.fields.builders {
                if b.len() < tail.rows {
                    b.append_nulls(1);
                }
            }
        }
        self.rows += 1;
        self.min_time = self.min_time.min(p.time);
        self.max_time = self.max_time.max(p.time);
        self.approx_bytes += bytes;
        bytes
    }

    /// The rows as sorted runs, oldest first: each sorted by series and time with points of
    /// the same series and time merged (later write wins per field), no two holding the same
    /// series and time. The rows pushed since the last call are sorted and added as a run;
    /// readers share the runs until the next write.
    pub fn snapshot(&self) -> Result<Vec<Arc<SortedRows>>, ArrowError> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.rows > 0 {
            let batch = crate::batch::sort_dedup(&tail.finish_cloned(&self.schema)?)?;
            *tail = Tail::default();
            drop(tail);
            runs.add(batch, &self.schema, self.id)?;
        }
        Ok(runs.runs.clone())
    }

    /// All rows sorted and merged in one batch (for persistence).
    pub fn sorted_whole(&self) -> Result<RecordBatch, ArrowError> {
        let runs = self.snapshot()?;
        let schema = self.schema.arrow();
        match runs.as_slice() {
            [] => Ok(RecordBatch::new_empty(schema)),
            [one] => crate::batch::align(one.batch(), &schema),
            _ => {
                let batches: Vec<RecordBatch> = runs.iter().map(|r| r.batch().clone()).collect();
                crate::batch::sort_dedup(&crate::batch::concat_aligned(&schema, &batches)?)
            }
        }
    }

    /// The rows as one batch in the schema's column order: the sealed runs (sorted, merged),
    /// then the rows pushed since, in arrival order.
    pub fn to_batch(&self) -> Result<RecordBatch, ArrowError> {
        let schema = self.schema.arrow();
        let mut batches: Vec<RecordBatch> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .runs
            .iter()
            .map(|r| r.batch().clone())
            .collect();
        batches.push(
            self.tail
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .finish_cloned(&self.schema)?,
        );
        crate::batch::concat_aligned(&schema, &batches)
    }
}

impl Tail {
    /// The rows as a batch in `schema`'s column order (columns the tail has not seen: nulls).
    fn finish_cloned(&self, schema: &TableSchema) -> Result<RecordBatch, ArrowError> {
        let arrow = schema.arrow();
        let mut cols: Vec<arrow::array::ArrayRef> = Vec::with_capacity(arrow.fields().len());
        for f in arrow.fields() {
            let name = f.name().as_str();
            let col = if let Some(&i) = self.tags.index.get(name) {
                Some(Arc::new(self.tags.builders[i].1.finish_cloned()) as arrow::array::ArrayRef)
            } else if let Some(&i) = self.fields.index.get(name) {
                Some(self.fields.builders[i].1.finish_cloned())
            } else if name == crate::schema::TIME {
                Some(Arc::new(self.time.finish_cloned()) as arrow::array::ArrayRef)
            } else {
                None
            };
            cols.push(
                col.unwrap_or_else(|| arrow::array::new_null_array(f.data_type(), self.rows)),
            );
        }
        RecordBatch::try_new(arrow, cols)
    }
}

impl Runs {
    /// Adds `batch` (sorted and merged, in `schema`'s columns) as the newest run of buffer `id`.
    fn add(&mut self, batch: RecordBatch, schema: &TableSchema, id: u64) -> Result<(), ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let tags: Vec<String> = schema.tags.iter().cloned().collect();
        let arrow = schema.arrow();
        let batch = crate::batch::align(&batch, &arrow)?;
        let series = series_ends(&batch, &tags)?;
        // The run is disjoint from the older ones when each of its series' rows are all newer
        // than the newest the older runs hold of it (and the series keys compare: the same
        // tag columns as before).
        let disjoint = self.tags == tags
            && series
                .iter()
                .all(|(key, first, _)| self.newest.get(key).is_none_or(|newest| *first > *newest));
        if !disjoint {
            // Everything merged into one run, later writes winning.
            let mut batches: Vec<RecordBatch> =
                self.runs.iter().map(|r| r.batch().clone()).collect();
            batches.push(batch);
            let whole = crate::batch::sort_dedup(&crate::batch::concat_aligned(&arrow, &batches)?)?;
            self.newest.clear();
            for (key, _, last) in series_ends(&whole, &tags)? {
                self.newest.insert(key, last);
            }
            self.tags = tags;
            self.runs = vec![Arc::new(SortedRows::of_buffer(whole, id))];
            return Ok(());
        }
        for (key, _, last) in series {
            let newest = self.newest.entry(key).or_insert(last);
            *newest = (*newest).max(last);
        }
        self.tags = tags;
        self.runs.push(Arc::new(SortedRows::of_buffer(batch, id)));
        // Similar sizes merged (disjoint runs merge by a sort of the two).
        while let [.., older, newer] = self.runs.as_slice() {
            if older.num_rows() > RUN_RATIO * newer.num_rows() {
                break;
            }
            let both = [older.batch().clone(), newer.batch().clone()];
            let merged = crate::batch::sort_dedup(&crate::batch::concat_aligned(&arrow, &both)?)?;
            self.runs.pop();
            self.runs.pop();
            self.runs.push(Arc::new(SortedRows::of_buffer(merged, id)));
        }
        Ok(())
    }
}

/// For each series of `batch` (sorted by series then time, in any tag order): a hash of its key
/// (the values of `tags`, in that order) and its first and last time.
fn series_ends(batch: &RecordBatch, tags: &[String]) -> Result<Vec<(u64, i64, i64)>, ArrowError> {
    let n = batch.num_rows();
    let times = crate::batch::time_values(batch)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if tags.is_empty() {
        // One series: the measurement has no tags.
        return Ok(vec![(0, times.value(0), times.value(n - 1))]);
    }
    let schema = batch.schema();
    let key: Vec<usize> = tags
        .iter()
        .map(|t| schema.index_of(t))
        .collect::<Result<_, _>>()?;
    let converter = crate::batch::key_converter(&schema, &key)?;
    let columns: Vec<arrow::array::ArrayRef> =
        key.iter().map(|&i| batch.column(i).clone()).collect();
    let rows = converter.convert_columns(&columns)?;
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || rows.row(i) != rows.row(start) {
            let mut h = std::hash::DefaultHasher::new();
            rows.row(start).as_ref().hash(&mut h);
            out.push((h.finish(), times.value(start), times.value(i - 1)));
            start = i;
        }
    }
    Ok(out)
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

    fn push(t: &mut TableBuffer, body: &str) {
        for p in &parse_body(body.as_bytes(), &ParseOptions::default()).points {
            t.push(p);
        }
    }

    /// The runs of a snapshot as one batch, as a reader merging them would see them.
    fn merged(runs: &[Arc<SortedRows>], t: &TableBuffer) -> RecordBatch {
        let batches: Vec<RecordBatch> = runs.iter().map(|r| r.batch().clone()).collect();
        crate::batch::sort_dedup(
            &crate::batch::concat_aligned(&t.schema().arrow(), &batches).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_frozen_table_sorts_once_and_answers_as_the_buffer_did() {
        let t = buffer("m,h=b x=1 2\nm,h=a x=2 1\nm,h=b y=3i 2\nm,h=a x=4 1");
        let expected = t.sorted_whole().unwrap();
        let schema = t.schema().clone();
        let frozen = FrozenTable::new(t);
        assert_eq!(frozen.schema(), &schema);
        assert!(matches!(
            *frozen.rows.lock().unwrap(),
            FrozenRows::Unsorted(_)
        ));
        let sorted = frozen.sorted().unwrap();
        assert_eq!(sorted.batch(), &expected);
        assert_eq!(sorted.num_rows(), 2, "same series and time merged");
        // The builders are gone; the sorted rows are what is kept and handed out.
        assert!(matches!(
            *frozen.rows.lock().unwrap(),
            FrozenRows::Sorted(_)
        ));
        assert!(
            Arc::ptr_eq(&frozen.sorted().unwrap(), &sorted),
            "sorted once"
        );
    }

    #[test]
    fn readers_share_a_snapshot_and_what_they_derive_from_it_until_the_next_write() {
        let mut t = buffer("m,h=b x=1 2\nm,h=a x=2 1");
        let a = t.snapshot().unwrap();
        assert_eq!(a.len(), 1);
        let again = t.snapshot().unwrap();
        assert!(Arc::ptr_eq(&a[0], &again[0]), "shared until the next write");
        let a = &a[0];
        let mut made = 0;
        let rows = a.derived(|b| {
            made += 1;
            Some(b.num_rows())
        });
        assert_eq!(rows.as_deref(), Some(&2));
        assert_eq!(a.derived(|_| Some(0usize)).as_deref(), Some(&2), "kept");
        assert_eq!(a.derived(|_| Some("other type")), None);
        assert_eq!(made, 1);
        assert_eq!(a.last_value_bounds().unwrap().get("x"), Some(&1));
        assert_eq!(a.time_range().unwrap(), (1, 2));
        push(&mut t, "m,h=a x=3 5");
        let b = t.snapshot().unwrap();
        assert_eq!(b.iter().map(|r| r.num_rows()).sum::<usize>(), 3);
        assert!(
            b.iter().all(|r| r.buffer() == a.buffer()),
            "runs of one buffer"
        );
        assert_eq!(merged(&b, &t).num_rows(), 3);
    }

    #[test]
    fn a_read_after_newer_writes_sorts_only_them_and_keeps_few_runs() {
        let mut t = TableBuffer::default();
        // Time-ordered writes of two series, read after each write.
        let mut runs = Vec::new();
        for step in 0..64 {
            let (t1, t2) = (step * 10, step * 10 + 5);
            push(
                &mut t,
                &format!("m,h=a x={step} {t1}\nm,h=b x={step} {t2}\nm,h=a y={step}i {t2}"),
            );
            runs = t.snapshot().unwrap();
            // Runs merge when of similar size: a handful, however many reads.
            assert!(
                runs.len() <= 6,
                "{} runs after {} reads",
                runs.len(),
                step + 1
            );
        }
        assert!(runs.len() > 1, "newer rows are runs of their own");
        // The runs hold every row once: together what one sort of the buffer gives.
        let whole = t.sorted_whole().unwrap();
        assert_eq!(whole.num_rows(), 64 * 3);
        assert_eq!(merged(&runs, &t), whole);
        assert_eq!(runs.iter().map(|r| r.num_rows()).sum::<usize>(), 64 * 3);
    }

    #[test]
    fn a_rewrite_of_buffered_points_merges_the_runs_later_write_winning() {
        let mut t = buffer("m,h=a x=1 10\nm,h=b x=2 10");
        assert_eq!(t.snapshot().unwrap().len(), 1);
        push(&mut t, "m,h=a x=3 20\nm,h=b x=4 20");
        let runs = t.snapshot().unwrap();
        // The same series and time again, and a series' older point: no longer disjoint.
        push(&mut t, "m,h=a x=5 10\nm,h=c x=6 1\nm,h=b x=7 5");
        let after = t.snapshot().unwrap();
        assert_eq!(
            after.len(),
            1,
            "merged into one run (from {} runs)",
            runs.len()
        );
        let out = pretty_format_batches(&[after[0].batch().clone()])
            .unwrap()
            .to_string();
        let expected = "\
+---+-----+-------------------------------+
| h | x   | time                          |
+---+-----+-------------------------------+
| a | 5.0 | 1970-01-01T00:00:00.000000010 |
| a | 3.0 | 1970-01-01T00:00:00.000000020 |
| b | 7.0 | 1970-01-01T00:00:00.000000005 |
| b | 2.0 | 1970-01-01T00:00:00.000000010 |
| b | 4.0 | 1970-01-01T00:00:00.000000020 |
| c | 6.0 | 1970-01-01T00:00:00.000000001 |
+---+-----+-------------------------------+";
        assert_eq!(out, expected);
        // A series new to the buffer: a run of its own again (much smaller than the other).
        push(&mut t, "m,h=d x=8 1");
        assert_eq!(t.snapshot().unwrap().len(), 2);
        assert_eq!(t.sorted_whole().unwrap().num_rows(), 7);
    }

    #[test]
    fn a_measurement_without_tags_is_one_series() {
        let mut t = buffer("m x=1 10\nm x=2 20\nm x=2 21\nm x=2 22\nm x=2 23");
        assert_eq!(t.snapshot().unwrap().len(), 1);
        push(&mut t, "m x=3 30");
        assert_eq!(t.snapshot().unwrap().len(), 2, "newer: a run of its own");
        push(&mut t, "m x=4 20");
        let runs = t.snapshot().unwrap();
        assert_eq!(runs.len(), 1, "a rewrite merges");
        assert_eq!(runs[0].num_rows(), 6);
    }

    #[test]
    fn a_column_that_appears_in_a_later_run_is_null_in_the_earlier_ones() {
        let mut t = buffer("m,h=a x=1 10");
        t.snapshot().unwrap();
        push(&mut t, "m,h=a,r=1 y=2i 20");
        let runs = t.snapshot().unwrap();
        let whole = t.sorted_whole().unwrap();
        assert_eq!(merged(&runs, &t), whole);
        let out = pretty_format_batches(&[whole]).unwrap().to_string();
        let expected = "\
+---+---+-----+---+-------------------------------+
| h | r | x   | y | time                          |
+---+---+-----+---+-------------------------------+
| a |   | 1.0 |   | 1970-01-01T00:00:00.000000010 |
| a | 1 |     | 2 | 1970-01-01T00:00:00.000000020 |
+---+---+-----+---+-------------------------------+";
        assert_eq!(out, expected);
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
