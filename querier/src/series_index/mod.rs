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
//!    │    tags only ─▶ evaluated on the runs' tag values: the runs that can match (an
//!    │                 equality on the tag the runs are in order of first narrows them to
//!    │                 one stretch by binary search)
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
//! Modules: this file builds a file's index ([`FileIndex::load`]); `select` turns a predicate
//! into a selection with it; `cache` keeps the indexes ([`SeriesIndexes`]); `attach` gives
//! a plan's scans their selections; `read` reads indexed local files in place.
//!
//! What it must not do: change what a query answers (any error or anything it does not
//! understand leaves the scan as DataFusion planned it), or hold rows.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, RecordBatchOptions, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, sort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::{
    DataType, Field, Int32Type, Schema, SchemaRef, TimestampNanosecondType,
};
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

mod attach;
mod cache;
mod read;
mod select;
#[cfg(test)]
mod tests;

pub use cache::SeriesIndexes;
use read::*;
pub use select::{ScanSelection, Selected, Use};

/// Runs kept at most by default, over all files; the indexes are dropped when they would grow
/// past this.
pub const CAPACITY: usize = 1 << 20;

/// Selections of at most this many rows (a few of the files' 1024-row pages) are not pruned
/// further by DataFusion's statistics: evaluating them costs more than the pages it could skip.
const FEW_ROWS: usize = 8 * 1024;

/// Where each series lies in rows sorted by series (a file, or buffered rows): one row per run
/// of rows with equal tags, and the time pages.
#[derive(Debug)]
pub struct Runs {
    /// One row per run of rows with equal tags: the tag columns, as the rows have them.
    runs: RecordBatch,
    /// Per column of `runs`, its dictionary's values in ascending order (their indices), so
    /// that `tag = 'value'` finds its key by binary search.
    sorted: Vec<Vec<u32>>,
    /// Per column of `runs`, whether the runs are in order of its values (no nulls): the
    /// file's first sort tag is ([`Runs::span`]).
    ordered: Vec<bool>,
    /// Where each run starts, and (last) the row count.
    starts: Vec<usize>,
    /// The time column's pages in row order: `(first row, min, max)`. For a file, one page per
    /// row group spanning all times when the file has no page index for time.
    pages: Vec<(usize, i64, i64)>,
}

/// Rows per time page of buffered rows ([`Runs::of_sorted`]): a query of one series and a
/// short time reads at most two pages more than it needs.
const BUFFER_PAGE_ROWS: usize = 256;

/// One file's series runs and time pages.
#[derive(Debug)]
pub struct FileIndex {
    series: Runs,
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

/// For each row of `batch` (tag columns only) after the first, whether it starts a new run:
/// a tag's dictionary key differs from the row before's (one value under two keys would only
/// split a run, which is harmless).
fn run_starts_within(batch: &RecordBatch) -> Result<Vec<bool>> {
    let n = batch.num_rows();
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
    Ok(new)
}

/// The tag columns of `schema` (the dictionary ones).
fn tag_columns(schema: &Schema) -> Vec<usize> {
    schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.data_type(), DataType::Dictionary(_, _)))
        .map(|(i, _)| i)
        .collect()
}

/// The row numbers where `new` is set, as `u32` (for `take`).
fn firsts_of(new: &[bool]) -> Result<Vec<u32>> {
    new.iter()
        .enumerate()
        .filter(|(_, n)| **n)
        .map(|(i, _)| {
            u32::try_from(i)
                .map_err(|_| DataFusionError::Internal("a batch of more than 2^32 rows".into()))
        })
        .collect()
}

/// Whether the dictionary `column` (its values' indices in ascending order: `sorted`) has no
/// nulls and is in order of its values.
fn in_order(column: &dyn Array, sorted: &[u32]) -> bool {
    let Some(d) = column.as_dictionary_opt::<Int32Type>() else {
        return false;
    };
    if d.null_count() > 0 {
        return false;
    }
    let mut rank = vec![0u32; sorted.len()];
    for (r, &i) in sorted.iter().enumerate() {
        if let (Some(slot), Ok(r)) = (rank.get_mut(i as usize), u32::try_from(r)) {
            *slot = r;
        }
    }
    let rank_of = |k: &i32| usize::try_from(*k).ok().and_then(|k| rank.get(k)).copied();
    d.keys()
        .values()
        .windows(2)
        .all(|w| matches!((rank_of(&w[0]), rank_of(&w[1])), (Some(a), Some(b)) if a <= b))
}

impl Runs {
    /// The runs of `pieces` (each run's first row, tag columns of `tag_schema`), starting at
    /// `starts` (and the row count last).
    fn new(
        tag_schema: SchemaRef,
        pieces: &[RecordBatch],
        starts: Vec<usize>,
        pages: Vec<(usize, i64, i64)>,
    ) -> Result<Self> {
        // One dictionary per column (the pieces each bring their own): conditions are
        // evaluated on the dictionary's values.
        let runs = concat_batches(&tag_schema, pieces)?;
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
        let ordered = runs
            .columns()
            .iter()
            .zip(&sorted)
            .map(|(c, sorted)| in_order(c, sorted))
            .collect();
        Ok(Self {
            runs,
            sorted,
            ordered,
            starts,
            pages,
        })
    }

    /// The runs of one series (a measurement without tags) over `rows` rows.
    fn one_series(
        tag_schema: SchemaRef,
        rows: usize,
        pages: Vec<(usize, i64, i64)>,
    ) -> Result<Self> {
        let runs = RecordBatch::try_new_with_options(
            tag_schema,
            Vec::new(),
            &RecordBatchOptions::new().with_row_count(Some(usize::from(rows > 0))),
        )?;
        let starts = if rows > 0 { vec![0, rows] } else { vec![0] };
        Ok(Self {
            runs,
            sorted: Vec::new(),
            ordered: Vec::new(),
            starts,
            pages,
        })
    }

    /// The runs of rows sorted by series then time, in memory (the write buffer's
    /// [`ingester::SortedRows`]): tags are its dictionary columns, and its time pages are
    /// [`BUFFER_PAGE_ROWS`] rows each.
    pub fn of_sorted(batch: &RecordBatch) -> Result<Self> {
        let schema = batch.schema();
        let rows = batch.num_rows();
        let time = batch
            .column_by_name(TIME)
            .and_then(|t| t.as_primitive_opt::<TimestampNanosecondType>())
            .ok_or_else(|| DataFusionError::Internal("buffered rows without time".into()))?;
        let times = time.values();
        let pages: Vec<(usize, i64, i64)> = (0..rows)
            .step_by(BUFFER_PAGE_ROWS)
            .map(|start| {
                let page = &times[start..(start + BUFFER_PAGE_ROWS).min(rows)];
                let min = page.iter().copied().min().unwrap_or(i64::MIN);
                let max = page.iter().copied().max().unwrap_or(i64::MAX);
                (start, min, max)
            })
            .collect();
        let tags = tag_columns(&schema);
        let tag_schema: SchemaRef = Arc::new(schema.project(&tags)?);
        let tag_batch = batch.project(&tags)?;
        if tags.is_empty() || rows == 0 {
            return Self::one_series(tag_schema, rows, pages);
        }
        let mut new = run_starts_within(&tag_batch)?;
        new[0] = true;
        let firsts = firsts_of(&new)?;
        let mut starts: Vec<usize> = firsts.iter().map(|&i| i as usize).collect();
        starts.push(rows);
        let pieces = [take_record_batch(&tag_batch, &UInt32Array::from(firsts))?];
        Self::new(tag_schema, &pieces, starts, pages)
    }

    /// Rows described.
    fn rows(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    /// The share of the rows a condition requiring each `(tag, n)` (the tag equal to one of `n`
    /// non-empty values) can select, taking each tag's values as equally frequent (a tag's
    /// distinct values are its runs' deduplicated dictionary).
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
                // The rows do not have the tag: none can equal a non-empty value.
                _ => 0.0,
            })
            .product()
    }

    /// Runs (series) described.
    pub fn runs(&self) -> usize {
        self.runs.num_rows()
    }

    /// One row per run whose tags can satisfy `predicate` (over `table`; every run without
    /// one), its tag columns as the rows have them: each of the predicate's conjuncts of tags
    /// is found as [`Runs::select`] finds it (by binary search for equalities), the others
    /// are left to the caller, who applies the whole predicate again unless
    /// [`TagRows::exact`] says every conjunct was found.
    pub fn tag_rows_matching(
        &self,
        predicate: Option<&Arc<dyn PhysicalExpr>>,
        table: &Schema,
    ) -> Result<TagRows> {
        let Some(predicate) = predicate else {
            return Ok(TagRows {
                rows: self.runs.clone(),
                exact: true,
            });
        };
        let conjuncts = split_conjunction(predicate);
        let span = self.span(&conjuncts, table);
        let mut keep: Option<Vec<bool>> = None;
        let mut exact = true;
        for c in conjuncts {
            match self.runs_matching(c, table, span.clone()) {
                Some(mask) => match &mut keep {
                    Some(k) => k.iter_mut().zip(mask).for_each(|(k, m)| *k &= m),
                    None => keep = Some(mask),
                },
                None => exact = false,
            }
        }
        let runs = self.runs.slice(span.start, span.len());
        let rows = match keep {
            Some(k) => datafusion::arrow::compute::filter_record_batch(
                &runs,
                &datafusion::arrow::array::BooleanArray::from(k),
            )?,
            None => runs,
        };
        Ok(TagRows { rows, exact })
    }
}

/// The runs [`Runs::tag_rows_matching`] found.
#[derive(Debug)]
pub struct TagRows {
    /// One row per run, its tag columns (dictionaries of the whole file's or buffer's values).
    pub rows: RecordBatch,
    /// Whether every conjunct of the predicate was applied to the runs, so that each row
    /// satisfies it. Evaluating it again would compare the value with every value of the
    /// rows' dictionaries: at 100,000 hosts, a `SHOW TAG VALUES ... WHERE hostname = '...'`
    /// spent over half its time so, on the one row found.
    pub exact: bool,
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
        let tags = tag_columns(&schema);
        let rows = usize::try_from(metadata.file_metadata().num_rows())
            .map_err(|_| DataFusionError::Internal(format!("{location}: a negative row count")))?;
        let pages = time_pages(&metadata, &schema)?;
        let tag_schema: SchemaRef = Arc::new(schema.project(&tags)?);
        let dictionaries = Arc::new(FilePages::of(&metadata));
        if tags.is_empty() {
            return Ok(Self {
                series: Runs::one_series(tag_schema, rows, pages)?,
                schema,
                dictionaries,
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
            // Within the batch by dictionary keys; across batches, the first row is compared
            // with the last by value.
            let mut new = run_starts_within(&batch)?;
            let first = converter.convert_columns(batch.slice(0, 1).columns())?;
            new[0] = previous.as_ref().is_none_or(|p| p.row() != first.row(0));
            let last = converter.convert_columns(batch.slice(n - 1, 1).columns())?;
            previous = Some(last.row(0).owned());
            let firsts = firsts_of(&new)?;
            starts.extend(firsts.iter().map(|&i| offset + i as usize));
            pieces.push(take_record_batch(&batch, &UInt32Array::from(firsts))?);
            offset += n;
        }
        if offset != rows {
            return Err(DataFusionError::Internal(format!(
                "{location}: read {offset} rows of {rows}"
            )));
        }
        starts.push(rows);
        Ok(Self {
            series: Runs::new(tag_schema, &pieces, starts, pages)?,
            schema,
            dictionaries,
            metadata,
        })
    }

    /// Rows in the file.
    fn rows(&self) -> usize {
        self.series.rows()
    }

    /// [`Runs::share`] of the file's rows.
    pub fn share(&self, equalities: &[(String, usize)]) -> f64 {
        self.series.share(equalities)
    }

    /// Runs in the file.
    pub fn runs(&self) -> usize {
        self.series.runs()
    }

    /// The file's series runs.
    pub fn series(&self) -> &Runs {
        &self.series
    }

    /// [`Runs::select`] of the file's rows.
    pub fn select(&self, predicate: &Arc<dyn PhysicalExpr>, table: &Schema) -> Selected {
        self.series.select(predicate, table)
    }
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
