//! Where each series lies in a Parquet file, so that a scan reads only the rows of the series
//! and times a query asks for.
//!
//! The ingester writes every file sorted by series, then time
//! ([`ingester::parquet_io`]): one series' rows are one run. This module keeps, per file, one
//! row per run (the tag values, where it starts) and the first row, minimum and maximum time
//! of each page of the time column (from the file's page index). A scan's predicate then
//! becomes a row selection without DataFusion's generic pruning, which builds statistics
//! arrays for every row group and page and evaluates the predicate on them in every query
//! (about a fifth of a light query's CPU):
//!
//! ```text
//!  physical plan ──▶ attach: each Parquet scan, each file
//!    ├─ the file's index (loaded once per file: tag columns and page index read, runs found)
//!    ├─ the predicate's conjuncts:
//!    │    tags only ─▶ evaluated on the runs' tag values: the runs that can match
//!    │    time <op> literal ─▶ the time bounds: the pages of those runs that can match
//!    │    anything else ─▶ left to DataFusion (its own pruning stays on)
//!    └─ ParquetRowSelection on the file; DataFusion's pruning off when every conjunct was used
//! ```
//!
//! A conjunct of tag columns only has one value for all rows of a run, so the runs it rejects
//! hold no row that satisfies the predicate; pages whose times lie outside the bounds hold none
//! either. The selection is therefore a superset of the rows that match, and the scan still
//! applies the whole predicate to what it reads. Nothing here assumes the sort order: in an
//! unsorted file a series makes several runs, and each is judged on its own.
//!
//! The index describes an immutable file (its path is never reused in a process), so it is
//! kept for the process, up to [`CAPACITY`] runs in all; a file with more runs than that, or
//! one that cannot be indexed, is scanned as DataFusion plans it. The plan cache keeps plans
//! *without* selections and they are attached to each run of a plan, since they depend on the
//! values bound into it.
//!
//! What it must not do: change what a query answers (any error or anything it does not
//! understand leaves the scan as DataFusion planned it), or hold rows.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, RecordBatchOptions, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, sort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileMetrics;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::{
    DefaultParquetFileReaderFactory, ParquetRowSelection,
};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Operator;
use datafusion::object_store::ObjectStore;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection};
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, Column, InListExpr, IsNotNullExpr, LikeExpr, Literal,
};
use datafusion::physical_expr::split_conjunction;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use ingester::schema::{TIME, tag_type};

use crate::dictionary_pages::{DictionaryPages, FilePages};
use crate::rescan::RescanExec;

/// Runs kept at most by default, over all files; the indexes are dropped when they would grow
/// past this.
pub const CAPACITY: usize = 1 << 20;

/// Selections of at most this many rows (a few of the files' 1024-row pages) are not pruned
/// further by DataFusion's statistics: evaluating them costs more than the pages it could skip.
const FEW_ROWS: usize = 8 * 1024;

/// One file's series runs and time pages.
#[derive(Debug)]
pub struct FileIndex {
    /// One row per run of rows with equal tags: the file's tag columns, as the file has them.
    runs: RecordBatch,
    /// Per column of `runs`, its dictionary's values in ascending order (their indices), so
    /// that `tag = 'value'` finds its key by binary search.
    sorted: Vec<Vec<u32>>,
    /// Where each run starts, and (last) the file's row count.
    starts: Vec<usize>,
    /// The time column's pages in file order: `(first row, min, max)`. One page per row group
    /// spanning all times when the file has no page index for time.
    pages: Vec<(usize, i64, i64)>,
    /// The file's Arrow schema, given to its scans so that they do not decode it again from
    /// the file's metadata.
    schema: SchemaRef,
    /// The file's metadata with its page index, which scans of it are given
    /// ([`IndexedReaders`]): DataFusion's own cache may hold it without the offset index a
    /// selection within a row group needs to skip pages.
    metadata: Arc<ParquetMetaData>,
    /// Where the file's dictionary pages lie, and those kept in memory.
    dictionaries: Arc<FilePages>,
}

impl FileIndex {
    /// Reads `file`'s tag columns and page index.
    pub async fn load(store: Arc<dyn ObjectStore>, file: PartitionedFile) -> Result<Self> {
        let location = file.object_meta.location.clone();
        let reader: Box<dyn AsyncFileReader> = DefaultParquetFileReaderFactory::new(store)
            .create_reader(0, file, None, &ExecutionPlanMetricsSet::new())?;
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, options).await?;
        let metadata = Arc::clone(builder.metadata());
        let schema = Arc::clone(builder.schema());
        let tags: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f.data_type(), DataType::Dictionary(_, _)))
            .map(|(i, _)| i)
            .collect();
        let rows = usize::try_from(metadata.file_metadata().num_rows())
            .map_err(|_| DataFusionError::Internal(format!("{location}: a negative row count")))?;
        let pages = time_pages(&metadata, &schema)?;
        let tag_schema: SchemaRef = Arc::new(schema.project(&tags)?);
        if tags.is_empty() {
            // One series: the measurement has no tags.
            let runs = RecordBatch::try_new_with_options(
                tag_schema,
                Vec::new(),
                &RecordBatchOptions::new().with_row_count(Some(usize::from(rows > 0))),
            )?;
            let starts = if rows > 0 { vec![0, rows] } else { vec![0] };
            return Ok(Self {
                runs,
                sorted: Vec::new(),
                starts,
                pages,
                schema,
                dictionaries: Arc::new(FilePages::of(&metadata)),
                metadata,
            });
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), tags.iter().copied());
        let mut stream = builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()?;
        let converter = RowConverter::new(
            tag_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        let mut previous: Option<OwnedRow> = None;
        let mut offset = 0usize;
        let mut starts = Vec::new();
        let mut pieces = Vec::new();
        while let Some(batch) = stream.try_next().await? {
            let n = batch.num_rows();
            if n == 0 {
                continue;
            }
            // Within the batch, a row starts a run where a tag's dictionary key differs from
            // the row before's (one value under two keys would only split a run, which is
            // harmless); across batches, the first row is compared with the last by value.
            let mut new = vec![false; n];
            for column in batch.columns() {
                let keyed;
                let dictionary = match column.as_dictionary_opt::<Int32Type>() {
                    Some(d) => d,
                    None => {
                        keyed = cast(column, &tag_type())?;
                        keyed.as_dictionary::<Int32Type>()
                    }
                };
                let keys = dictionary.keys();
                let values = keys.values();
                match keys.nulls() {
                    None => {
                        for i in 1..n {
                            new[i] |= values[i] != values[i - 1];
                        }
                    }
                    Some(nulls) => {
                        for i in 1..n {
                            let (a, b) = (nulls.is_valid(i - 1), nulls.is_valid(i));
                            new[i] |= a != b || (a && values[i] != values[i - 1]);
                        }
                    }
                }
            }
            let first = converter.convert_columns(batch.slice(0, 1).columns())?;
            new[0] = previous.as_ref().is_none_or(|p| p.row() != first.row(0));
            let last = converter.convert_columns(batch.slice(n - 1, 1).columns())?;
            previous = Some(last.row(0).owned());
            let mut firsts: Vec<u32> = Vec::new();
            for (i, _) in new.iter().enumerate().filter(|(_, new)| **new) {
                firsts.push(u32::try_from(i).map_err(|_| {
                    DataFusionError::Internal("a batch of more than 2^32 rows".into())
                })?);
                starts.push(offset + i);
            }
            pieces.push(take_record_batch(&batch, &UInt32Array::from(firsts))?);
            offset += n;
        }
        if offset != rows {
            return Err(DataFusionError::Internal(format!(
                "{location}: read {offset} rows of {rows}"
            )));
        }
        starts.push(rows);
        // One dictionary per column (the pieces each bring their row group's): conditions are
        // evaluated on the dictionary's values.
        let runs = concat_batches(&tag_schema, &pieces)?;
        let columns = runs
            .columns()
            .iter()
            .map(|c| cast(&cast(c, &DataType::Utf8)?, c.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let runs = RecordBatch::try_new(tag_schema, columns)?;
        let sorted = runs
            .columns()
            .iter()
            .map(|c| match c.as_any_dictionary_opt() {
                Some(d) => Ok(sort_to_indices(d.values(), None, None)?.values().to_vec()),
                None => Ok(Vec::new()),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            runs,
            sorted,
            starts,
            pages,
            schema,
            dictionaries: Arc::new(FilePages::of(&metadata)),
            metadata,
        })
    }

    /// Rows in the file.
    fn rows(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    /// The share of the file's rows a condition requiring each `(tag, n)` (the tag equal to
    /// one of `n` non-empty values) can select, taking each tag's values as equally frequent
    /// (a tag's distinct values are its runs' deduplicated dictionary).
    pub fn share(&self, equalities: &[(String, usize)]) -> f64 {
        let distinct = |tag: &str| {
            self.runs
                .column_by_name(tag)
                .and_then(|c| c.as_any_dictionary_opt())
                .map_or(0, |d| d.values().len())
        };
        equalities
            .iter()
            .map(|(tag, n)| match distinct(tag) {
                d if d > 0 => (*n as f64 / d as f64).min(1.0),
                // The file does not have the tag: no row can equal a non-empty value.
                _ => 0.0,
            })
            .product()
    }

    /// Runs in the file.
    pub fn runs(&self) -> usize {
        self.runs.num_rows()
    }

    /// The rows that can satisfy `predicate` (over `table`, the scan's schema).
    pub fn select(&self, predicate: &Arc<dyn PhysicalExpr>, table: &Schema) -> Selected {
        let mut keep = vec![true; self.runs()];
        let (mut lo, mut hi) = (i64::MIN, i64::MAX);
        let mut uses = Vec::new();
        for c in split_conjunction(predicate) {
            if let Some((l, h)) = time_bounds(c) {
                (lo, hi) = (lo.max(l), hi.min(h));
                uses.push(Use::Pages);
            } else if let Some(mask) = self.runs_matching(c, table) {
                for (k, m) in keep.iter_mut().zip(mask) {
                    *k &= m;
                }
                uses.push(Use::Runs);
            } else if c
                .downcast_ref::<IsNotNullExpr>()
                .is_some_and(|e| e.arg().is::<Column>())
            {
                uses.push(Use::Rows);
            } else {
                uses.push(Use::None);
            }
        }
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let mut push = |r: Range<usize>| match ranges.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => ranges.push(r),
        };
        // Whether every page read lies within the time bounds.
        let mut within = true;
        if lo <= hi {
            for (run, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                let (start, end) = (self.starts[run], self.starts[run + 1]);
                if lo == i64::MIN && hi == i64::MAX {
                    push(start..end);
                    continue;
                }
                // The pages that overlap the run, in order.
                let first = self
                    .pages
                    .partition_point(|p| p.0 <= start)
                    .saturating_sub(1);
                for (i, &(page_start, min, max)) in self.pages.iter().enumerate().skip(first) {
                    if page_start >= end {
                        break;
                    }
                    let page_end = self.pages.get(i + 1).map_or(self.rows(), |p| p.0);
                    if max >= lo && min <= hi && page_end > start {
                        push(page_start.max(start)..page_end.min(end));
                        within &= lo <= min && max <= hi;
                    }
                }
            }
        }
        if within {
            for u in &mut uses {
                if *u == Use::Pages {
                    *u = Use::Within;
                }
            }
        }
        Selected {
            selection: RowSelection::from_consecutive_ranges(ranges.into_iter(), self.rows()),
            uses,
            runs: if lo <= hi {
                keep.iter().filter(|k| **k).count()
            } else {
                0
            },
        }
    }

    /// For each run, whether `conjunct` (of tag columns only, of known expressions) can hold;
    /// `None` when it is not such a conjunct or cannot be evaluated on the runs.
    fn runs_matching(&self, conjunct: &Arc<dyn PhysicalExpr>, table: &Schema) -> Option<Vec<bool>> {
        self.runs_equal(conjunct, table)
            .or_else(|| self.runs_evaluated(conjunct, table))
    }

    /// [`Self::runs_matching`] by evaluating `conjunct` on the runs.
    fn runs_evaluated(
        &self,
        conjunct: &Arc<dyn PhysicalExpr>,
        table: &Schema,
    ) -> Option<Vec<bool>> {
        let mut columns: Vec<String> = Vec::new();
        let mut known = true;
        conjunct
            .apply(|e| {
                if let Some(c) = e.downcast_ref::<Column>() {
                    if !columns.iter().any(|n| n == c.name()) {
                        columns.push(c.name().to_string());
                    }
                } else if !known_expr(e) {
                    known = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .ok()?;
        if !known || columns.is_empty() {
            return None;
        }
        // The runs' values of those columns, typed as the scan has them (a tag this file does
        // not have is null in every run).
        let n = self.runs();
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for name in &columns {
            let field = table.field_with_name(name).ok()?;
            if !matches!(field.data_type(), DataType::Dictionary(_, _)) {
                return None;
            }
            let array = match self.runs.column_by_name(name) {
                Some(a) if a.data_type() == field.data_type() => Arc::clone(a),
                Some(a) => cast(a, field.data_type()).ok()?,
                None => datafusion::arrow::array::new_null_array(field.data_type(), n),
            };
            fields.push(Field::new(name, field.data_type().clone(), true));
            arrays.push(array);
        }
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .ok()?;
        let rebased = Arc::clone(conjunct)
            .transform_up(|e| match e.downcast_ref::<Column>() {
                Some(c) => {
                    let index = columns.iter().position(|n| n == c.name()).unwrap_or(0);
                    Ok(Transformed::yes(
                        Arc::new(Column::new(c.name(), index)) as Arc<dyn PhysicalExpr>
                    ))
                }
                None => Ok(Transformed::no(e)),
            })
            .ok()?
            .data;
        let values = rebased.evaluate(&batch).ok()?.into_array(n).ok()?;
        let values = values.as_boolean_opt()?;
        Some(
            (0..n)
                .map(|i| values.is_valid(i) && values.value(i))
                .collect(),
        )
    }
}

impl FileIndex {
    /// [`Self::runs_matching`] for `tag = 'value'`, `tag IN (...)` and ORs of equalities of one
    /// tag (the commonest conditions), without evaluating them on every run's dictionary value:
    /// each value's key is found by binary search, and the runs with those keys are the ones
    /// that match. `None` for any other conjunct.
    fn runs_equal(&self, conjunct: &Arc<dyn PhysicalExpr>, table: &Schema) -> Option<Vec<bool>> {
        let (column, wanted) = tag_values(conjunct)?;
        if !matches!(
            table.field_with_name(column).ok()?.data_type(),
            DataType::Dictionary(_, _)
        ) {
            return None;
        }
        let n = self.runs();
        let Ok(at) = self.runs.schema().index_of(column) else {
            // The file does not have the tag: it is null in every run, and equals nothing.
            return Some(vec![false; n]);
        };
        let runs = self.runs.column(at).as_dictionary_opt::<Int32Type>()?;
        let values = runs.values().as_string_opt::<i32>()?;
        let sorted = self.sorted.get(at)?;
        let keys: Vec<i32> = wanted
            .iter()
            .filter_map(|v| {
                let i = sorted
                    .binary_search_by(|i| values.value(*i as usize).cmp(v))
                    .ok()?;
                i32::try_from(sorted[i]).ok()
            })
            .collect();
        let mut mask: Vec<bool> = match keys.as_slice() {
            [key] => runs.keys().values().iter().map(|k| k == key).collect(),
            _ => runs
                .keys()
                .values()
                .iter()
                .map(|k| keys.contains(k))
                .collect(),
        };
        if let Some(nulls) = runs.keys().nulls() {
            for (m, valid) in mask.iter_mut().zip(nulls.iter()) {
                *m &= valid;
            }
        }
        Some(mask)
    }
}

/// The tag and values of `tag = 'v'`, `tag IN ('v', ...)` or an OR of such conditions on the
/// same tag: the rows whose tag is one of the values.
fn tag_values(e: &Arc<dyn PhysicalExpr>) -> Option<(&str, Vec<&str>)> {
    fn string(l: &Arc<dyn PhysicalExpr>) -> Option<&str> {
        let value = match l.downcast_ref::<Literal>()?.value() {
            ScalarValue::Dictionary(_, v) => v.as_ref(),
            v => v,
        };
        match value {
            ScalarValue::Utf8(Some(v)) => Some(v.as_str()),
            _ => None,
        }
    }
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        return match b.op() {
            Operator::Eq => {
                let (c, v) = match (b.left().downcast_ref::<Column>(), string(b.right())) {
                    (Some(c), Some(v)) => (c, v),
                    _ => (b.right().downcast_ref::<Column>()?, string(b.left())?),
                };
                Some((c.name(), vec![v]))
            }
            Operator::Or => {
                let (tag, mut values) = tag_values(b.left())?;
                let (other, more) = tag_values(b.right())?;
                (tag == other).then(|| {
                    values.extend(more);
                    (tag, values)
                })
            }
            _ => None,
        };
    }
    let list = e.downcast_ref::<InListExpr>()?;
    if list.negated() {
        return None;
    }
    let column = list.expr().downcast_ref::<Column>()?;
    let values = list.list().iter().map(string).collect::<Option<Vec<_>>>()?;
    Some((column.name(), values))
}

/// What [`FileIndex::select`] found.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The rows to read.
    pub selection: RowSelection,
    /// How each conjunct of the predicate ([`split_conjunction`]'s order) was used.
    pub uses: Vec<Use>,
    /// The runs (series) with rows selected, at most.
    pub runs: usize,
}

/// What one scan's series indexes selected, over all its files (shown by `EXPLAIN`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSelection {
    pub files: usize,
    pub runs: usize,
    pub runs_selected: usize,
    pub rows: usize,
    pub rows_selected: usize,
    /// Whether DataFusion's own pruning was left on (a conjunct the index does not use).
    pub pruning: bool,
}

impl std::fmt::Display for ScanSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "files={} series_runs={} → {} rows={} → {} datafusion_pruning={}",
            self.files,
            self.runs,
            self.runs_selected,
            self.rows,
            self.rows_selected,
            if self.pruning { "on" } else { "off" }
        )
    }
}

/// How [`FileIndex::select`] used a conjunct of a predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Tags only: the runs it rejects are not read, and every row of the others satisfies it.
    Runs,
    /// Bounds on time: the pages outside them are not read.
    Pages,
    /// Bounds on time that every page read lies within (by the page index's min and max): the
    /// pages outside them are not read, and every row of the others satisfies them.
    Within,
    /// `field IS NOT NULL` (what a raw query of a field asks): left to the scan's row filter;
    /// fields are seldom sparse enough for DataFusion's pruning by null counts to pay for
    /// itself.
    Rows,
    /// Not understood: left to DataFusion.
    None,
}

/// Expressions whose value on a run's tag values is their value on each of its rows: no
/// state, no randomness, nothing but their inputs (the plan cache's stateless expressions,
/// pattern matches, `CASE`, and immutable functions).
fn known_expr(e: &Arc<dyn PhysicalExpr>) -> bool {
    crate::plan_cache::stateless(e)
        || e.is::<LikeExpr>()
        || e.is::<CaseExpr>()
        || e.downcast_ref::<datafusion::physical_expr::ScalarFunctionExpr>()
            .is_some_and(|f| {
                matches!(
                    f.fun().signature().volatility,
                    datafusion::logical_expr::Volatility::Immutable
                )
            })
}

/// `time <op> t` (or `t <op> time`) as the inclusive bounds it sets on time.
fn time_bounds(c: &Arc<dyn PhysicalExpr>) -> Option<(i64, i64)> {
    let b = c.downcast_ref::<BinaryExpr>()?;
    let time =
        |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Column>().is_some_and(|c| c.name() == TIME);
    let value = |e: &Arc<dyn PhysicalExpr>| match e.downcast_ref::<Literal>()?.value() {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        _ => None,
    };
    let (op, t) = if time(b.left()) {
        (*b.op(), value(b.right())?)
    } else if time(b.right()) {
        (b.op().swap()?, value(b.left())?)
    } else {
        return None;
    };
    Some(match op {
        Operator::Eq => (t, t),
        Operator::Gt => (t.checked_add(1)?, i64::MAX),
        Operator::GtEq => (t, i64::MAX),
        Operator::Lt => (i64::MIN, t.checked_sub(1)?),
        Operator::LtEq => (i64::MIN, t),
        _ => return None,
    })
}

/// The time column's pages: `(first row in the file, min, max)`, from the page index where the
/// file has one, else one page per row group spanning all times.
fn time_pages(metadata: &ParquetMetaData, schema: &Schema) -> Result<Vec<(usize, i64, i64)>> {
    let mut pages = Vec::new();
    let Ok(arrow_index) = schema.index_of(TIME) else {
        return Ok(pages);
    };
    let descr = metadata.file_metadata().schema_descr();
    let Some(leaf) =
        (0..descr.num_columns()).find(|i| descr.get_column_root_idx(*i) == arrow_index)
    else {
        return Ok(pages);
    };
    let mut offset = 0usize;
    for (rg, group) in metadata.row_groups().iter().enumerate() {
        let column_index = metadata.column_index().and_then(|c| c.get(rg)?.get(leaf));
        let offset_index = metadata.offset_index().and_then(|o| o.get(rg)?.get(leaf));
        match (column_index, offset_index) {
            (Some(ColumnIndexMetaData::INT64(stats)), Some(locations)) => {
                for (p, loc) in locations.page_locations().iter().enumerate() {
                    let first = usize::try_from(loc.first_row_index).unwrap_or(0);
                    let min = stats.min_value(p).copied().unwrap_or(i64::MIN);
                    let max = stats.max_value(p).copied().unwrap_or(i64::MAX);
                    pages.push((offset + first, min, max));
                }
            }
            _ => pages.push((offset, i64::MIN, i64::MAX)),
        }
        offset += usize::try_from(group.num_rows()).unwrap_or(0);
    }
    Ok(pages)
}

/// The indexes of the files queries read, kept by location.
pub struct SeriesIndexes {
    kept: Mutex<HashMap<Path, Arc<FileIndex>>>,
    /// Files with more runs than `capacity` (or that could not be read as indexes): scanned
    /// as DataFusion plans them, without loading them again for every query.
    skipped: Mutex<std::collections::HashSet<Path>>,
    /// Runs kept at most, over all files.
    capacity: usize,
    /// The dictionary pages the scans of indexed files keep.
    kept_pages: Arc<DictionaryPages>,
    /// Scans given row selections.
    attached: std::sync::atomic::AtomicU64,
}

impl Default for SeriesIndexes {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl std::fmt::Debug for SeriesIndexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesIndexes").finish_non_exhaustive()
    }
}

impl SeriesIndexes {
    /// Indexes of up to `capacity` runs in all.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            kept: Mutex::default(),
            skipped: Mutex::default(),
            capacity,
            kept_pages: Arc::default(),
            attached: Default::default(),
        }
    }

    /// Scans given row selections so far.
    pub fn scans_attached(&self) -> u64 {
        self.attached.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The index of `location`, when it has been loaded.
    pub fn get(&self, location: &Path) -> Option<Arc<FileIndex>> {
        self.kept.lock().ok()?.get(location).cloned()
    }

    fn put(&self, location: Path, index: Arc<FileIndex>) {
        if index.runs() > self.capacity {
            self.skip(location);
            return;
        }
        if let Ok(mut m) = self.kept.lock() {
            let kept: usize = m.values().map(|i| i.runs()).sum();
            if kept + index.runs() > self.capacity {
                m.clear();
            }
            m.insert(location, index);
        }
    }

    fn skip(&self, location: Path) {
        if let Ok(mut s) = self.skipped.lock() {
            if s.len() >= 4096 {
                s.clear();
            }
            s.insert(location);
        }
    }

    fn skipped(&self, location: &Path) -> bool {
        self.skipped.lock().is_ok_and(|s| s.contains(location))
    }

    /// Files indexed.
    pub fn len(&self) -> usize {
        self.kept.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `plan` with a row selection on every file of its Parquet scans (loading the indexes it
    /// lacks), and what each scan selected. A scan any of whose files cannot be indexed is left
    /// as it is.
    pub async fn attach(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        task: &TaskContext,
    ) -> Result<(Arc<dyn ExecutionPlan>, Vec<ScanSelection>)> {
        self.load(&plan, task).await?;
        let mut selections = Vec::new();
        let plan = plan
            .transform_up(|node| {
                let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                    return Ok(Transformed::no(node));
                };
                let Some((config, source)) = scan.downcast_to_file_source::<ParquetSource>() else {
                    return Ok(Transformed::no(node));
                };
                Ok(match self.attached(config, source) {
                    Some((attached, selected)) => {
                        selections.push(selected);
                        let attached = scan.clone().with_data_source(Arc::new(attached));
                        Transformed::yes(RescanExec::replacing(&node, attached))
                    }
                    None => Transformed::no(node),
                })
            })?
            .data;
        Ok((plan, selections))
    }

    /// Loads the indexes `plan`'s Parquet scans with a predicate lack (the plan walk of
    /// [`Self::attached`] is synchronous).
    pub async fn load(&self, plan: &Arc<dyn ExecutionPlan>, task: &TaskContext) -> Result<()> {
        let mut wanted: Vec<(ObjectStoreUrl, PartitionedFile)> = Vec::new();
        plan.apply(|node| {
            if let Some(scan) = node.downcast_ref::<DataSourceExec>()
                && let Some((config, source)) = scan.downcast_to_file_source::<ParquetSource>()
                && source.filter().is_some()
            {
                for f in config.file_groups.iter().flat_map(|g| g.iter()) {
                    wanted.push((config.object_store_url.clone(), f.clone()));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        for (url, file) in wanted {
            let location = file.object_meta.location.clone();
            if self.get(&location).is_some() || self.skipped(&location) {
                continue;
            }
            let store = task.runtime_env().object_store(&url)?;
            match FileIndex::load(Arc::clone(&store), file).await {
                Ok(index) => {
                    self.preload_dictionaries(&store, &location, &index).await;
                    self.put(location, Arc::new(index))
                }
                Err(e) => {
                    tracing::debug!(%location, error = %e, "no series index");
                    self.skip(location);
                }
            }
        }
        Ok(())
    }

    /// Reads and keeps all of a newly indexed file's dictionary pages, if they fit in what is
    /// left of the budget (never letting other files' pages go for them). Each query of a row
    /// group it has not read before would read that row group's dictionary pages (80 KB per
    /// float column of TSBS's data): in a run of light queries of random hosts, most of them
    /// did. Read here in one pass, at the file's first query, which loads its index anyway.
    /// A failed read only leaves the pages to be read as scans ask for them.
    async fn preload_dictionaries(
        &self,
        store: &Arc<dyn ObjectStore>,
        location: &Path,
        index: &FileIndex,
    ) {
        let pages = &index.dictionaries;
        let ranges = pages.ranges();
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        if usize::try_from(total).map_or(true, |t| t > self.kept_pages.room()) {
            return;
        }
        match store.get_ranges(location, &ranges).await {
            Ok(read) => {
                for (range, bytes) in ranges.iter().zip(read) {
                    self.kept_pages.keep(pages, range.start, &bytes);
                }
            }
            Err(e) => tracing::debug!(%location, error = %e, "dictionary pages not preloaded"),
        }
    }

    /// A Parquet scan's `config` (of `source`) with a row selection on every file, and what
    /// it selected; `None` when the scan has no predicate or a file's index is not loaded
    /// ([`Self::load`]).
    pub fn attached(
        &self,
        config: &FileScanConfig,
        source: &ParquetSource,
    ) -> Option<(FileScanConfig, ScanSelection)> {
        let predicate = source.filter()?;
        let table = config.file_schema();
        // Each file's index and selection, once (a file split into byte ranges is in several
        // groups).
        let mut files: Vec<(Arc<FileIndex>, Selected)> = Vec::new();
        let mut locations: Vec<&Path> = Vec::new();
        for f in config.file_groups.iter().flat_map(|g| g.iter()) {
            let location = &f.object_meta.location;
            if !locations.contains(&location) {
                let index = self.get(location)?;
                let selected = index.select(&predicate, table.as_ref());
                files.push((index, selected));
                locations.push(location);
            }
        }
        // How each conjunct was used: the same in every file, else not at all.
        let uses = files.iter().map(|(_, s)| s.uses.clone()).reduce(|a, b| {
            a.into_iter()
                .zip(b)
                .map(|(a, b)| match (a, b) {
                    (a, b) if a == b => a,
                    (Use::Pages | Use::Within, Use::Pages | Use::Within) => Use::Pages,
                    _ => Use::None,
                })
                .collect()
        })?;
        let mut shown = ScanSelection {
            files: files.len(),
            ..Default::default()
        };
        for (index, selected) in &files {
            shown.runs += index.runs();
            shown.runs_selected += selected.runs;
            shown.rows += index.rows();
            shown.rows_selected += selected.selection.row_count();
        }
        // DataFusion's pruning is left on for a conjunct the index does not use, unless the
        // selection is already so small that it could skip a page or two at most.
        shown.pruning = uses.contains(&Use::None) && shown.rows_selected > FEW_ROWS;
        let of = |location: &Path| {
            let at = locations.iter().position(|l| *l == location)?;
            Some(&files[at])
        };
        let mut groups = config.file_groups.clone();
        for group in &mut groups {
            for i in 0..group.len() {
                let (index, selected) = of(&group[i].object_meta.location)?;
                let file = &mut group[i];
                file.extensions
                    .insert(ParquetRowSelection::new(selected.selection.clone()));
                file.arrow_schema = Some(Arc::clone(&index.schema));
                if !shown.pruning {
                    // The selection holds everything the file's statistics could tell (files
                    // were chosen by their time span).
                    file.statistics = None;
                }
            }
        }
        let mut source = source.clone();
        if !shown.pruning {
            let mut options = source.table_parquet_options().clone();
            options.global.pruning = false;
            options.global.enable_page_index = false;
            // The row filter's cache of the columns it shares with the projection (time) widens
            // their reads to whole batches (8192 rows) around the selection: for a few selected
            // pages, decoding them twice costs less.
            options.global.max_predicate_cache_size = Some(0);
            source = source.with_table_parquet_options(options);
        }
        // Conjuncts every file's selection satisfies exactly need not be evaluated on its rows.
        let rest: Vec<Arc<dyn PhysicalExpr>> = split_conjunction(&predicate)
            .into_iter()
            .zip(&uses)
            .filter(|(_, u)| !matches!(u, Use::Runs | Use::Within))
            .map(|(c, _)| Arc::clone(c))
            .collect();
        if rest.len() < uses.len() {
            let rest = rest
                .into_iter()
                .reduce(|a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as _)
                .unwrap_or_else(|| Arc::new(Literal::new(ScalarValue::Boolean(Some(true)))));
            source = source.with_predicate(rest);
        }
        if config.object_store_url == ObjectStoreUrl::local_filesystem() {
            let indexes = locations
                .iter()
                .zip(&files)
                .map(|(l, (index, _))| ((*l).clone(), Arc::clone(index)))
                .collect();
            source = source.with_parquet_file_reader_factory(Arc::new(IndexedReaders {
                files: indexes,
                kept_pages: Arc::clone(&self.kept_pages),
            }));
        }
        let config = FileScanConfigBuilder::from(config.clone())
            .with_file_groups(groups)
            .with_source(Arc::new(source))
            .build();
        self.attached
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some((config, shown))
    }
}

/// Readers of local files for a scan whose files are indexed: the metadata (with the page
/// index) from the index, dictionary pages kept in memory ([`crate::dictionary_pages`]), and
/// other bytes read in place. A read from the page cache takes a few microseconds, less than
/// handing it to a blocking thread and waking the query's task again, as `object_store`'s
/// local store does for every read.
#[derive(Debug)]
struct IndexedReaders {
    files: HashMap<Path, Arc<FileIndex>>,
    kept_pages: Arc<DictionaryPages>,
}

impl ParquetFileReaderFactory for IndexedReaders {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let location = &file.object_meta.location;
        let index = self.files.get(location).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!("{location} is not among the scan's indexed files"))
        })?;
        Ok(Box::new(InPlaceReader {
            path: LocalFileSystem::new().path_to_filesystem(location)?,
            file: None,
            index,
            kept_pages: Arc::clone(&self.kept_pages),
            metrics: ParquetFileMetrics::new(partition_index, location.as_ref(), metrics),
        }))
    }
}

struct InPlaceReader {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    index: Arc<FileIndex>,
    kept_pages: Arc<DictionaryPages>,
    metrics: ParquetFileMetrics,
}

impl InPlaceReader {
    /// The bytes of `range`: a dictionary page kept, or read (and a dictionary page kept).
    fn fetch(&mut self, range: Range<u64>) -> datafusion::parquet::errors::Result<Bytes> {
        let pages = Arc::clone(&self.index.dictionaries);
        if !pages.is_dictionary(&range) {
            return self.read(range);
        }
        if let Some(kept) = pages.get(range.start) {
            return Ok(kept);
        }
        let start = range.start;
        let bytes = self.read(range)?;
        self.kept_pages.keep(&pages, start, &bytes);
        Ok(bytes)
    }

    fn read(&mut self, range: Range<u64>) -> datafusion::parquet::errors::Result<Bytes> {
        use std::io::{Read, Seek, SeekFrom};
        let io =
            |e: std::io::Error| datafusion::parquet::errors::ParquetError::External(Box::new(e));
        let file = match &mut self.file {
            Some(f) => f,
            None => self
                .file
                .insert(std::fs::File::open(&self.path).map_err(io)?),
        };
        let len = range.end.saturating_sub(range.start);
        let mut buf = Vec::with_capacity(usize::try_from(len).map_err(|_| {
            datafusion::parquet::errors::ParquetError::General("a range too long".into())
        })?);
        file.seek(SeekFrom::Start(range.start)).map_err(io)?;
        file.take(len).read_to_end(&mut buf).map_err(io)?;
        if buf.len() as u64 != len {
            return Err(datafusion::parquet::errors::ParquetError::EOF(format!(
                "{}: {len} bytes at {} asked, {} read",
                self.path.display(),
                range.start,
                buf.len()
            )));
        }
        self.metrics.bytes_scanned.add(buf.len());
        Ok(Bytes::from(buf))
    }
}

impl AsyncFileReader for InPlaceReader {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        futures::future::ready(self.fetch(range)).boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        let read = ranges.into_iter().map(|r| self.fetch(r)).collect();
        futures::future::ready(read).boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        futures::future::ready(Ok(Arc::clone(&self.index.metadata))).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{DictionaryArray, Float64Array, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{Int32Type, TimeUnit};
    use datafusion::object_store::memory::InMemory;
    use datafusion::object_store::{ObjectMeta, ObjectStoreExt};
    use datafusion::physical_expr::expressions::{binary, col, in_list, is_not_null, is_null, lit};

    fn tag_lit(v: &str) -> Arc<dyn PhysicalExpr> {
        lit(ScalarValue::Dictionary(
            Box::new(DataType::Int32),
            Box::new(ScalarValue::Utf8(Some(v.into()))),
        ))
    }

    fn ts(v: i64) -> Arc<dyn PhysicalExpr> {
        lit(ScalarValue::TimestampNanosecond(Some(v), None))
    }

    /// `batch` written as the ingester writes files, to `f.parquet` in a store of its own.
    async fn written(batch: &RecordBatch) -> (Arc<dyn ObjectStore>, ObjectMeta) {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let size = ingester::parquet_io::write_file(&store, "f.parquet", batch, "m")
            .await
            .unwrap();
        let meta = store.head(&Path::from("f.parquet")).await.unwrap();
        assert_eq!(meta.size, size);
        (store, meta)
    }

    /// Hosts a, b, c with 3000 rows each (times 0..3000), sorted by host then time.
    fn hosts() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", tag_type(), true),
            Field::new("v", DataType::Float64, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        ]));
        let hosts: DictionaryArray<Int32Type> = ["a", "b", "c"]
            .iter()
            .flat_map(|h| std::iter::repeat_n(Some(*h), 3000))
            .collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(hosts),
                Arc::new(Float64Array::from_iter_values((0..9000).map(f64::from))),
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    (0..3).flat_map(|_| 0..3000i64),
                )),
            ],
        )
        .unwrap()
    }

    /// [`hosts`] written as the ingester writes files (pages of at most 1024 rows), its index,
    /// and the scan's schema, which also has a tag `zone` this file lacks.
    async fn file() -> (FileIndex, Schema) {
        let batch = hosts();
        let file_schema = batch.schema();
        let (store, meta) = written(&batch).await;
        let index = FileIndex::load(store, PartitionedFile::from(meta))
            .await
            .unwrap();
        let mut fields: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("zone", tag_type(), true));
        (index, Schema::new(fields))
    }

    fn rows(s: &Selected) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut at = 0;
        for sel in s.selection.iter() {
            if !sel.skip {
                out.push(at..at + sel.row_count);
            }
            at += sel.row_count;
        }
        out
    }

    /// The index of a file of tags `host` and `rack` (and `time`), one row per element.
    async fn hosts_and_racks(hosts: &[Option<&str>], racks: &[Option<&str>]) -> FileIndex {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host", tag_type(), true),
            Field::new("rack", tag_type(), true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        ]));
        let hosts: DictionaryArray<Int32Type> = hosts.iter().copied().collect();
        let racks: DictionaryArray<Int32Type> = racks.iter().copied().collect();
        // Each series' times count from 0.
        let mut times = Vec::new();
        for i in 0..hosts.len() {
            let same =
                i > 0 && hosts.key(i) == hosts.key(i - 1) && racks.key(i) == racks.key(i - 1);
            times.push(if same { times[i - 1] + 1 } else { 0 });
        }
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(hosts),
                Arc::new(racks),
                Arc::new(TimestampNanosecondArray::from_iter_values(times)),
            ],
        )
        .unwrap();
        let (store, meta) = written(&batch).await;
        FileIndex::load(store, PartitionedFile::from(meta))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_equality_finds_its_runs_as_evaluating_it_would() {
        // Hosts in order, racks not: the dictionary of racks is not in value order.
        let hosts = ["a", "b", "c", "d", "e"].map(Some);
        let racks = [Some("r9"), Some("r1"), None, Some("r5"), Some("r1")];
        let index = hosts_and_racks(&hosts, &racks).await;
        let schema = Arc::clone(&index.schema);
        let mut table = schema.as_ref().clone();
        table = Schema::new(
            table
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .chain([Field::new("zone", tag_type(), true)])
                .collect::<Vec<_>>(),
        );
        let eq = |tag: &str, v: &str, flipped: bool| {
            let (c, l) = (col(tag, &table).unwrap(), tag_lit(v));
            let (a, b) = if flipped { (l, c) } else { (c, l) };
            binary(a, Operator::Eq, b, &table).unwrap()
        };
        for tag in ["host", "rack", "zone"] {
            for v in ["a", "c", "e", "r1", "r5", "r9", "r0", "zz", ""] {
                for flipped in [false, true] {
                    let p = eq(tag, v, flipped);
                    let fast = index.runs_equal(&p, &table).expect("an equality");
                    assert_eq!(Some(fast), index.runs_evaluated(&p, &table), "{tag} = {v}");
                }
            }
        }
        let r1 = index.runs_equal(&eq("rack", "r1", false), &table);
        assert_eq!(r1, Some(vec![false, true, false, false, true]));
        // ORs of equalities of one tag, and IN lists.
        let or = |a, b| binary(a, Operator::Or, b, &table).unwrap();
        let listed = |tag: &str, vs: &[&str]| {
            let list = vs.iter().map(|v| tag_lit(v)).collect();
            in_list(col(tag, &table).unwrap(), list, &false, &table).unwrap()
        };
        let cases = [
            or(eq("rack", "r1", false), eq("rack", "r5", true)),
            or(
                or(eq("host", "a", false), eq("host", "zz", false)),
                eq("host", "e", false),
            ),
            listed("rack", &["r9", "r5", "r0"]),
            listed("host", &["b", "d"]),
            listed("zone", &["x"]),
        ];
        for p in &cases {
            let fast = index.runs_equal(p, &table).expect("equalities of one tag");
            assert_eq!(Some(fast), index.runs_evaluated(p, &table), "{p}");
        }
        assert_eq!(
            index.runs_equal(&cases[0], &table),
            Some(vec![false, true, false, true, true])
        );
        // Equalities of two tags, or a negated list: evaluated.
        let two = or(eq("rack", "r1", false), eq("host", "a", false));
        assert_eq!(index.runs_equal(&two, &table), None);
        let not_in = in_list(
            col("rack", &table).unwrap(),
            vec![tag_lit("r1")],
            &true,
            &table,
        )
        .unwrap();
        assert_eq!(index.runs_equal(&not_in, &table), None);
        // Not an equality of a tag and a value: evaluated.
        let ne = binary(
            col("rack", &table).unwrap(),
            Operator::NotEq,
            tag_lit("r1"),
            &table,
        )
        .unwrap();
        assert_eq!(index.runs_equal(&ne, &table), None);
        let tags = binary(
            col("rack", &table).unwrap(),
            Operator::Eq,
            col("host", &table).unwrap(),
            &table,
        )
        .unwrap();
        assert_eq!(index.runs_equal(&tags, &table), None);
    }

    #[tokio::test]
    async fn a_run_per_series_and_the_time_pages() {
        let (index, _) = file().await;
        assert_eq!(index.runs(), 3);
        assert_eq!(index.starts, [0, 3000, 6000, 9000]);
        let firsts: Vec<usize> = index.pages.iter().map(|p| p.0).collect();
        assert_eq!(firsts, (0..9).map(|p| p * 1024).collect::<Vec<_>>());
        // The page holding b's last rows and c's first ones.
        assert_eq!(index.pages[5], (5120, 0, 2999));
    }

    #[tokio::test]
    async fn tag_conditions_select_runs_and_time_bounds_select_pages() {
        let (index, table) = file().await;
        let host_b = binary(
            col("host", &table).unwrap(),
            Operator::Eq,
            tag_lit("b"),
            &table,
        )
        .unwrap();
        let s = index.select(&host_b, &table);
        assert_eq!(rows(&s), [3000..6000]);
        assert_eq!((s.uses.as_slice(), s.runs), ([Use::Runs].as_slice(), 1));

        // b's times 2500..=2600 are at rows 5500..=5600, in the page of rows 5120..6144; the
        // page of rows 2048..3072 (a's 2048..2999 and b's 0..71) spans them too.
        let time = |op, t| binary(col("time", &table).unwrap(), op, ts(t), &table).unwrap();
        let and = |a, b| binary(a, Operator::And, b, &table).unwrap();
        let p = and(
            and(Arc::clone(&host_b), time(Operator::GtEq, 2500)),
            time(Operator::Lt, 2601),
        );
        let s = index.select(&p, &table);
        assert_eq!(rows(&s), [3000..3072, 5120..6000]);
        assert_eq!(s.uses, [Use::Runs, Use::Pages, Use::Pages]);

        // Bounds every page read lies within (b's times, 0..=2999, and those of a's rows in
        // its first page): every row read satisfies them.
        let p = and(
            and(Arc::clone(&host_b), time(Operator::GtEq, 0)),
            time(Operator::Lt, 3000),
        );
        let s = index.select(&p, &table);
        assert_eq!(rows(&s), [3000..6000]);
        assert_eq!(s.uses, [Use::Runs, Use::Within, Use::Within]);

        // Bounds that exclude each other select nothing.
        let p = and(time(Operator::Gt, 10), time(Operator::LtEq, 10));
        assert_eq!(rows(&index.select(&p, &table)), Vec::<Range<usize>>::new());

        // A condition on a field is left to the scan: every row.
        let field = binary(
            col("v", &table).unwrap(),
            Operator::Gt,
            lit(ScalarValue::Float64(Some(1.0))),
            &table,
        )
        .unwrap();
        let s = index.select(&and(Arc::clone(&host_b), field), &table);
        assert_eq!(rows(&s), [3000..6000]);
        assert_eq!(s.uses, [Use::Runs, Use::None]);
        // A raw query's `v IS NOT NULL` is left to the scan's row filter.
        let not_null = is_not_null(col("v", &table).unwrap()).unwrap();
        let s = index.select(&and(Arc::clone(&host_b), not_null), &table);
        assert_eq!(s.uses, [Use::Runs, Use::Rows]);

        // `host != 'b' OR host = 'c'`, and `IN`: evaluated per run.
        let not_b = binary(
            col("host", &table).unwrap(),
            Operator::NotEq,
            tag_lit("b"),
            &table,
        )
        .unwrap();
        assert_eq!(rows(&index.select(&not_b, &table)), [0..3000, 6000..9000]);
    }

    #[tokio::test]
    async fn runs_differ_by_a_missing_tag_and_continue_across_batches() {
        // (a, r1), (a, no rack), (b, no rack): 25k rows each, so the reader's 64k-row batch
        // ends inside the third series.
        let n = 25_000;
        let hosts: Vec<Option<&str>> = ["a", "a", "b"]
            .iter()
            .flat_map(|h| std::iter::repeat_n(Some(*h), n))
            .collect();
        let racks: Vec<Option<&str>> = [Some("r1"), None, None]
            .iter()
            .flat_map(|r| std::iter::repeat_n(*r, n))
            .collect();
        let index = hosts_and_racks(&hosts, &racks).await;
        assert_eq!(index.starts, [0, n, 2 * n, 3 * n]);
        let table = index.runs.schema();
        let no_rack = is_null(col("rack", &table).unwrap()).unwrap();
        let s = index.select(&no_rack, &table);
        assert_eq!(rows(&s), [n..3 * n]);
    }

    #[tokio::test]
    async fn scans_get_selections_and_files_past_the_capacity_are_left_as_planned() {
        let (store, _) = written(&hosts()).await;
        let ctx = crate::scan::session(1);
        let url = ObjectStoreUrl::parse("memory://").unwrap();
        ctx.register_object_store(url.as_ref(), store);
        let plan = ctx
            .read_parquet("memory:///f.parquet", Default::default())
            .await
            .unwrap()
            .filter(datafusion::prelude::col("host").eq(datafusion::prelude::lit("b")))
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let task = ctx.task_ctx();
        let indexes = SeriesIndexes::default();
        let (attached, shown) = indexes.attach(Arc::clone(&plan), &task).await.unwrap();
        // A selection this small: no pruning by statistics, and no predicate cache (it would
        // widen the reads of the columns the row filter shares with the projection).
        let mut options = Vec::new();
        attached
            .apply(|node| {
                if let Some(scan) = node.downcast_ref::<DataSourceExec>()
                    && let Some((_, source)) = scan.downcast_to_file_source::<ParquetSource>()
                {
                    let global = &source.table_parquet_options().global;
                    options.push((global.pruning, source.max_predicate_cache_size()));
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
        assert_eq!(options, [(false, Some(0))]);
        let expected = ScanSelection {
            files: 1,
            runs: 3,
            runs_selected: 1,
            rows: 9000,
            rows_selected: 3000,
            pruning: false,
        };
        assert_eq!(shown, [expected]);
        assert_eq!(indexes.len(), 1);
        // What the runs and pages decide exactly leaves the scan's row filter: the tag
        // condition, and time bounds every page read lies within (b's times, 0..=2999); bounds
        // that cut through a page stay.
        let predicate = async |from: i64| {
            let time =
                |t| datafusion::prelude::lit(ScalarValue::TimestampNanosecond(Some(t), None));
            let plan = ctx
                .read_parquet("memory:///f.parquet", Default::default())
                .await
                .unwrap()
                .filter(
                    datafusion::prelude::col("host")
                        .eq(datafusion::prelude::lit("b"))
                        .and(datafusion::prelude::col("time").gt_eq(time(from)))
                        .and(datafusion::prelude::col("time").lt(time(3000))),
                )
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let (attached, _) = indexes.attach(plan, &task).await.unwrap();
            let mut shown = Vec::new();
            attached
                .apply(|node| {
                    if let Some(scan) = node.downcast_ref::<DataSourceExec>()
                        && let Some((_, source)) = scan.downcast_to_file_source::<ParquetSource>()
                    {
                        shown.push(source.filter().map(|p| p.to_string()));
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
                .unwrap();
            shown
        };
        assert_eq!(predicate(0).await, [Some("true".to_string())]);
        let cut = predicate(2500).await;
        assert!(
            cut[0]
                .as_deref()
                .is_some_and(|p| p.contains("time") && !p.contains("host")),
            "{cut:?}"
        );
        // Three runs do not fit in two: the scan stays as planned, and the file is not read
        // again by the next query.
        let small = SeriesIndexes::with_capacity(2);
        for _ in 0..2 {
            let (_, shown) = small.attach(Arc::clone(&plan), &task).await.unwrap();
            assert_eq!(shown, []);
            assert!(small.is_empty());
            assert!(small.skipped(&Path::from("f.parquet")));
        }
    }

    #[tokio::test]
    async fn scans_of_local_files_read_in_place_and_keep_their_dictionary_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let file = dir.path().join("f.parquet");
        let location = Path::from_absolute_path(&file).unwrap();
        ingester::parquet_io::write_file(&store, location.as_ref(), &hosts(), "m")
            .await
            .unwrap();
        let ctx = crate::scan::session(1);
        let task = ctx.task_ctx();
        let indexes = SeriesIndexes::default();
        let mut scanned = Vec::new();
        for _ in 0..2 {
            // Planned for each run: a plan's scan counts its bytes over all its runs.
            let plan = ctx
                .read_parquet(file.to_str().unwrap(), Default::default())
                .await
                .unwrap()
                .filter(datafusion::prelude::col("host").eq(datafusion::prelude::lit("b")))
                .unwrap()
                .select_columns(&["v"])
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let (run, _) = indexes.attach(plan, &task).await.unwrap();
            let batches = datafusion::physical_plan::collect(Arc::clone(&run), Arc::clone(&task))
                .await
                .unwrap();
            let values: Vec<f64> = batches
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                        .values()
                        .to_vec()
                })
                .collect();
            assert_eq!(values, (3000..6000).map(f64::from).collect::<Vec<_>>());
            let mut bytes = 0;
            run.apply(|node| {
                if let Some(m) = node.metrics() {
                    bytes += m.sum_by_name("bytes_scanned").map_or(0, |v| v.as_usize());
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
            scanned.push(bytes);
        }
        let index = indexes.get(&location).unwrap();
        // Every dictionary page (`v`'s holds 9000 distinct values) was read and kept when the
        // file was indexed, before the first scan: both scans read only data pages.
        let kept = index.dictionaries.kept_bytes();
        assert!(kept > 9000 * 8, "{kept} bytes kept");
        let all: u64 = index
            .dictionaries
            .ranges()
            .iter()
            .map(|r| r.end - r.start)
            .sum();
        assert_eq!(kept as u64, all);
        assert_eq!(scanned[0], scanned[1], "{scanned:?}");
        assert!(scanned[0] > 0 && scanned[0] < kept, "{scanned:?}");
    }

    #[tokio::test]
    async fn the_share_of_rows_tag_equalities_leave() {
        let (index, _) = file().await;
        let share = |e: &[(&str, usize)]| {
            index.share(
                &e.iter()
                    .map(|(t, n)| (t.to_string(), *n))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(share(&[]), 1.0);
        assert_eq!(share(&[("host", 1)]), 1.0 / 3.0);
        assert_eq!(share(&[("host", 5)]), 1.0);
        assert_eq!(share(&[("host", 1), ("zone", 1)]), 0.0);
    }

    #[tokio::test]
    async fn a_tag_the_file_lacks_is_null_in_every_run() {
        let (index, table) = file().await;
        let zone = || col("zone", &table).unwrap();
        let s = index.select(&is_null(zone()).unwrap(), &table);
        assert_eq!(rows(&s), [0..9000]);
        let s = index.select(
            &binary(zone(), Operator::Eq, tag_lit("x"), &table).unwrap(),
            &table,
        );
        assert_eq!((rows(&s), s.runs), (vec![], 0));
    }
}
