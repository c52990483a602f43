//! How a measurement's data becomes a DataFusion `DataFrame` for a query.
//!
//! ```text
//!  catalog: shards of the retention policy whose groups overlap the time range
//!    └─ per shard, Ingester::table_snapshot: live files, tombstones, buffered batches
//!         ├─ files outside the time range (manifest min/max time): skipped
//!         ├─ files, no overlap, no tombstone ─▶ one Parquet scan (projection, time and tag
//!         │                                    filters pushed down: row groups pruned by
//!         │                                    statistics, rows filtered in the decoder)
//!         ├─ files with tombstones             ─▶ read, tombstones applied, in memory
//!         ├─ a shard whose sources overlap     ─▶ rows in the overlap windows merged by
//!         │   inside the query's time range        series and time in a DataFusion aggregate
//!         │                                        (newest source wins per field)
//!         └─ buffered batches                  ─▶ in memory, read through their series
//!                                                 index (crate::memory_rows)
//!  union (tags stay dictionaries) ─▶ the statement's plan
//! ```
//!
//! A query of last values only ([`Sources::for_last_values`]) reads each shard from its own
//! last-value bound: a series' newest row is in some shard, at or after that shard's bound. A
//! file's rows from the bound, where few, come from memory once read ([`crate::last_rows`]).
//!
//! Sources of one shard that do not overlap in time cannot hold the same series and time, so
//! they need no merging; shards of different groups never overlap, and shards of one group
//! hold different series.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::logical_expr::ExprFunctionExt;
use datafusion::logical_expr::cast;
use datafusion::prelude::{
    DataFrame, Expr, ParquetReadOptions, SessionConfig, SessionContext, col, lit,
};
use ingester::{TableSchema, TableSnapshot};

use crate::executor::{ExecError, Executor};
use crate::memory_rows::{MemoryBatch, MemoryRows};
use crate::select::TimeRange;
use crate::shard_source::{LocalShards, RemoteShards, ShardTable};

/// Scans expected to read at most this many rows run in one partition (see
/// [`Executor::measurement_frame`]).
const SMALL_SCAN_ROWS: u64 = 100_000;

/// A session that plans Fletch's InfluxQL nodes ([`crate::plan`]), with Parquet filter
/// pushdown on: predicates are evaluated while decoding, so
/// pages and rows that cannot match are skipped.
pub fn session(partitions: usize) -> SessionContext {
    let mut config = SessionConfig::new().with_target_partitions(partitions);
    let opts = config.options_mut();
    opts.execution.parquet.pushdown_filters = true;
    opts.execution.parquet.reorder_filters = true;
    // Fletch writes no bloom filters; looking for them cost 0.2-0.6 ms per file and query.
    opts.execution.parquet.bloom_filter_on_read = false;
    // Aggregates over other nodes' shards run partly on their owners (crate::fragment).
    crate::plan::session_with_rules(
        config,
        vec![Arc::new(crate::fragment::DistributeAggregates)],
    )
}

/// The table's Arrow schema without Fletch's field metadata (so that scans and memory batches
/// union cleanly).
pub(crate) fn plain_schema(schema: &TableSchema) -> SchemaRef {
    let arrow = schema.arrow();
    Arc::new(Schema::new(
        arrow
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), f.is_nullable()))
            .collect::<Vec<_>>(),
    ))
}

/// Rows at or after `bound` (a last-value bound).
fn time_from(bound: i64) -> Expr {
    col(TIME_COLUMN).gt_eq(lit(ScalarValue::TimestampNanosecond(Some(bound), None)))
}

fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// What one scan reads; counted for tests and `EXPLAIN`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub shards: usize,
    /// Shards whose sources overlap inside the query's range, merged by series and time there.
    pub shards_merged: usize,
    pub files_scanned: usize,
    pub files_skipped: usize,
    pub batches_in_memory: usize,
    /// Shards read by peers ([`crate::shard_source::ShardTable`]).
    pub shards_remote: usize,
    /// The files read, when the scan reads them and at most one table of rows in memory (no
    /// merge, no parts bounded by last values beside rows in memory), that table marked by a
    /// last line of [`BUFFERED`] and its schema: what a kept plan of this scan depends on
    /// ([`crate::plan_cache`]).
    pub files: Option<Vec<String>>,
}

/// How the last line of [`ScanStats::files`] starts when the scan also reads rows in memory
/// (the schema they are read as follows).
pub const BUFFERED: &str = "(rows in memory)";

/// Tables of the file sets queries read, kept at most this many.
const LISTINGS: usize = 512;

/// The Parquet table of each file set queries read, so that a query of the same files (a
/// dashboard's, or any light query between two persists) does not build it again: parsing each
/// file's URL and copying the session's configuration and state were 3-4% of a light query's
/// CPU. A file is immutable and its name never reused within a process, so a file set's
/// table stays true; it is kept per session (the listing options follow its partitions) and
/// used only for the same table schema. Emptied when it would grow past [`LISTINGS`].
#[derive(Default)]
pub struct Listings {
    kept: Mutex<HashMap<ListingKey, Listing>>,
}

/// A session's id and a file set's paths, one per line.
type ListingKey = (String, String);

/// A file set's table, and the table schema it was built for.
type Listing = (TableSchema, Arc<dyn TableProvider>);

impl std::fmt::Debug for Listings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listings").finish_non_exhaustive()
    }
}

impl Listings {
    /// The table of `files` (local paths) with `schema` (`plain` its Arrow schema) in `ctx`.
    fn table(
        &self,
        ctx: &SessionContext,
        files: &[String],
        schema: &TableSchema,
        plain: impl FnOnce() -> SchemaRef,
    ) -> Result<Arc<dyn TableProvider>, ExecError> {
        let key = (ctx.session_id(), files.join("\n"));
        if let Ok(kept) = self.kept.lock()
            && let Some((kept_schema, table)) = kept.get(&key)
            && kept_schema == schema
        {
            return Ok(Arc::clone(table));
        }
        let plain = plain();
        let urls = files
            .iter()
            .map(ListingTableUrl::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let options = ParquetReadOptions::default()
            .schema(&plain)
            .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(plain);
        let table: Arc<dyn TableProvider> = Arc::new(
            ListingTable::try_new(config)?
                .with_cache(ctx.runtime_env().cache_manager.get_file_statistic_cache()),
        );
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() >= LISTINGS && !kept.contains_key(&key) {
                kept.clear();
            }
            kept.insert(key, (schema.clone(), Arc::clone(&table)));
        }
        Ok(table)
    }

    /// File sets whose tables are kept.
    pub fn len(&self) -> usize {
        self.kept.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A measurement's rows for a query, as a `DataFrame` over its sources.
pub struct Frame {
    pub df: LazyFrame,
    pub schema: TableSchema,
    pub stats: ScanStats,
    /// The files the frame reads stay on disk while this lives, even if compaction or a delete
    /// replaces them meanwhile (`ingester::pins`): keep it until the frame has run.
    pub pinned: Vec<Arc<ingester::pins::Pinned>>,
}

/// A frame's `DataFrame`, built when asked: a scan of files and rows in memory only is kept as
/// its tables until then, since a statement that runs from its template
/// ([`crate::plan_cache::Template`]) needs no logical plan (building the `DataFrame` copies the
/// session's whole state).
pub enum LazyFrame {
    Built(DataFrame),
    Tables {
        ctx: SessionContext,
        files: Option<Arc<dyn TableProvider>>,
        memory: Option<Arc<MemoryRows>>,
    },
}

impl LazyFrame {
    pub fn build(self) -> Result<DataFrame, ExecError> {
        match self {
            Self::Built(df) => Ok(df),
            Self::Tables { ctx, files, memory } => {
                let mut parts = Vec::new();
                if let Some(t) = files {
                    parts.push(ctx.read_table(t)?);
                }
                if let Some(m) = memory {
                    parts.push(ctx.read_table(m)?);
                }
                union_all(parts)?
                    .ok_or_else(|| ExecError::Internal("a frame of tables without a table".into()))
            }
        }
    }

    /// The frame with `predicate` applied.
    pub fn filter(self, predicate: Expr) -> Result<Self, ExecError> {
        Ok(Self::Built(self.build()?.filter(predicate)?))
    }

    /// A scan of tables not yet built: its session.
    pub fn files_session(&self) -> Option<&SessionContext> {
        match self {
            Self::Built(_) => None,
            Self::Tables { ctx, .. } => Some(ctx),
        }
    }

    /// The rows in memory a scan of tables not yet built reads (what a kept plan of it is
    /// given when bound).
    pub fn buffered(&self) -> Option<Arc<Vec<MemoryBatch>>> {
        match self {
            Self::Tables {
                memory: Some(m), ..
            } => Some(Arc::clone(m.batches())),
            _ => None,
        }
    }
}

/// A measurement's snapshot in every local shard a time range reaches, and the peers that read
/// the others ([`crate::shard_source`]), with their schemas merged: what one query reads of
/// it, taken once.
pub struct Sources {
    database: String,
    pub(crate) snapshots: Vec<(u64, TableSnapshot)>,
    /// Shards of other nodes that have the measurement, with its schema there.
    pub(crate) remote: Vec<(RemoteShards, TableSchema)>,
    pub schema: TableSchema,
    /// Tags the query's condition requires equal to one of n values (for the size estimate).
    equalities: Vec<(String, usize)>,
    /// Only each series' last values are wanted: peers are told so (they know their bounds).
    last_values: bool,
}

impl Sources {
    /// The same, for a condition that requires each `(tag, n)`: the tag equal to one of `n`
    /// non-empty values. Files whose series indexes are loaded then count only that share of
    /// their rows when the scan's size is estimated.
    pub fn requiring(mut self, equalities: Vec<(String, usize)>) -> Self {
        self.equalities = equalities;
        self
    }

    /// The same, for a query of each series' last values only (or of each series' newest
    /// row): each shard's rows before its series' last ones are left out — by
    /// [`Executor::frame_of`] for this node's shards (each from its own bound,
    /// [`TableSnapshot::last_value_bound`]), by the peers for theirs.
    pub fn for_last_values(mut self) -> Self {
        self.last_values = true;
        self
    }
}

impl Sources {
    /// Nothing yet of a measurement of database `db`.
    fn empty(db: &str) -> Self {
        Self {
            database: db.to_string(),
            snapshots: Vec::new(),
            remote: Vec::new(),
            schema: TableSchema::default(),
            equalities: Vec::new(),
            last_values: false,
        }
    }

    /// Adds measurement `name`'s snapshot in each of `shards` that has it.
    fn add_local(
        &mut self,
        local: &LocalShards,
        shards: &[u64],
        name: &str,
    ) -> Result<(), ExecError> {
        for &shard in shards {
            if let Some(s) = local.snapshot(shard, name)? {
                self.schema.merge(&s.schema);
                self.snapshots.push((shard, s));
            }
        }
        Ok(())
    }

    /// `range` cut into windows of time that hold about `rows` of the `total` rows a scan
    /// reads each, over the time these sources span, in time order; `range` alone when the
    /// scan reads fewer.
    fn windows(&self, range: TimeRange, total: u64, rows: u64) -> Vec<TimeRange> {
        if total <= rows.max(1) {
            return vec![range];
        }
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (_, s) in &self.snapshots {
            for f in &s.files {
                if f.max_time < range.min || f.min_time > range.max {
                    continue;
                }
                lo = lo.min(f.min_time);
                hi = hi.max(f.max_time);
            }
            for b in s.buffered.iter().filter(|b| b.num_rows() > 0) {
                let Ok((min, max)) = b.time_range() else {
                    continue;
                };
                lo = lo.min(min);
                hi = hi.max(max);
            }
        }
        let (lo, hi) = (lo.max(range.min), hi.min(range.max));
        if lo >= hi {
            return vec![range];
        }
        let n = total.div_ceil(rows.max(1)).min(4096) as i128;
        let step = ((hi as i128 - lo as i128 + 1) / n).max(1);
        let mut out = Vec::new();
        let mut start = range.min;
        for i in 1..n {
            let end = (lo as i128 + i * step - 1) as i64;
            if end < start || end >= hi {
                break;
            }
            out.push(TimeRange {
                min: start,
                max: end,
            });
            start = end + 1;
        }
        out.push(TimeRange {
            min: start,
            max: range.max,
        });
        out
    }
}

impl Executor {
    /// Rows a scan of `snapshots` over `range` may read: the files' row counts, the part of
    /// their time span the range covers and (where a file's series index is loaded) the share
    /// of its series the condition's tag `equalities` leave; and the buffered rows likewise.
    fn estimated_rows(
        &self,
        ing: &ingester::Ingester,
        snapshots: &[(u64, TableSnapshot)],
        equalities: &[(String, usize)],
        range: TimeRange,
    ) -> f64 {
        let want = (range.min, range.max);
        let share = |path: &str| {
            if equalities.is_empty() {
                return 1.0;
            }
            let location =
                datafusion::object_store::path::Path::from_absolute_path(ing.data_dir().join(path));
            match location.ok().and_then(|l| self.indexes().get(&l)) {
                Some(index) => index.share(equalities),
                None => 1.0,
            }
        };
        // The share of a span `(min, max)` the range covers.
        let covered = |min: i64, max: i64| {
            let span = (max as f64 - min as f64).max(1.0);
            (max.min(want.1) as f64 - min.max(want.0) as f64)
                .clamp(0.0, span)
                .max(1.0)
                / span
        };
        let files: f64 = snapshots
            .iter()
            .flat_map(|(_, s)| s.files.iter())
            .filter(|f| overlaps((f.min_time, f.max_time), want))
            .map(|f| f.rows as f64 * covered(f.min_time, f.max_time) * share(&f.path))
            .sum();
        // Buffered rows by their series index (made here if no query has yet).
        let buffered: f64 = snapshots
            .iter()
            .flat_map(|(_, s)| s.buffered.iter())
            .filter_map(|b| {
                let (min, max) = b.time_range().ok()?;
                if !overlaps((min, max), want) {
                    return None;
                }
                let share = match crate::memory_rows::runs_of(b) {
                    Some(runs) if !equalities.is_empty() => runs.share(equalities),
                    _ => 1.0,
                };
                Some(b.num_rows() as f64 * covered(min, max) * share)
            })
            .sum();
        files + buffered
    }

    /// `range` cut into windows of time that each hold about `rows` rows of what a scan of
    /// `sources` reads ([`Self::estimated_rows`], assuming rows spread evenly over a file's
    /// span), in time order; `range` alone when the scan reads fewer.
    pub fn windows(&self, sources: &Sources, range: TimeRange, rows: u64) -> Vec<TimeRange> {
        let Some(ing) = self.ingester() else {
            return vec![range];
        };
        let total = self.estimated_rows(ing, &sources.snapshots, &sources.equalities, range);
        sources.windows(range, total as u64, rows)
    }

    /// Measurement `name`'s [`Sources`] in `db`.`rp` (every policy when empty) for `range`.
    pub async fn sources(
        &self,
        db: &str,
        rp: &str,
        name: &str,
        range: TimeRange,
    ) -> Result<Sources, ExecError> {
        let mut sources = Sources::empty(db);
        let set = {
            let cat = self.meta().catalog();
            let dbi = cat
                .database(db)
                .ok_or_else(|| ExecError::DatabaseNotFound(db.to_string()))?;
            self.shard_set(dbi, rp, range)?
        };
        if let Some(local) = set.local {
            sources.add_local(local, &set.shards, name)?;
        }
        for r in set.remote {
            if let Some(schema) = r.first(|s| s.schema(db, &r.shards, name)).await? {
                sources.schema.merge(&schema);
                sources.remote.push((r, schema));
            }
        }
        Ok(sources)
    }

    /// Measurement `name`'s [`Sources`] in `shards` of `db`, all owned by this node.
    pub(crate) async fn local_sources(
        &self,
        db: &str,
        shards: &[u64],
        name: &str,
    ) -> Result<Sources, ExecError> {
        let mut sources = Sources::empty(db);
        if let Some(ing) = self.ingester() {
            sources.add_local(&LocalShards(Arc::clone(ing)), shards, name)?;
        }
        Ok(sources)
    }

    /// The rows of measurement `name` in `db`.`rp` (every policy when empty) that can fall in
    /// `range`, tags as dictionary columns; `None` when no shard has the measurement.
    pub async fn measurement_frame(
        &self,
        ctx: &SessionContext,
        db: &str,
        rp: &str,
        name: &str,
        range: TimeRange,
    ) -> Result<Option<Frame>, ExecError> {
        let sources = self.sources(db, rp, name, range).await?;
        self.frame_of(ctx, name, sources, range).await
    }

    /// [`Self::measurement_frame`] of sources already taken (for a range at least as wide as
    /// `range`).
    pub async fn frame_of(
        &self,
        ctx: &SessionContext,
        name: &str,
        sources: Sources,
        range: TimeRange,
    ) -> Result<Option<Frame>, ExecError> {
        let Sources {
            database,
            snapshots,
            remote,
            schema,
            equalities,
            last_values,
        } = sources;
        let ing = match self.ingester() {
            Some(ing) if !snapshots.is_empty() => Some(ing),
            _ if remote.is_empty() => return Ok(None),
            _ => None,
        };
        // A small scan runs in one partition (a peer's size is not known here).
        let want = (range.min, range.max);
        let estimate = match ing {
            Some(ing) if remote.is_empty() => {
                self.estimated_rows(ing, &snapshots, &equalities, range)
            }
            _ => f64::INFINITY,
        };
        let ctx = if estimate <= SMALL_SCAN_ROWS as f64 {
            self.small_session()
        } else {
            ctx
        };
        // Only built when something needs it (a kept table of the files has it).
        let plain = OnceLock::new();
        let plain = || Arc::clone(plain.get_or_init(|| plain_schema(&schema)));
        let mut stats = ScanStats {
            shards: snapshots.len() + remote.iter().map(|(r, _)| r.shards.len()).sum::<usize>(),
            shards_remote: remote.iter().map(|(r, _)| r.shards.len()).sum(),
            ..Default::default()
        };
        let mut files: Vec<String> = Vec::new();
        let mut memory: Vec<MemoryBatch> = Vec::new();
        let mut merged: Vec<DataFrame> = Vec::new();
        let pinned: Vec<_> = snapshots
            .iter()
            .map(|(_, s)| Arc::clone(&s.pinned))
            .collect();
        // A query of last values: each shard's rows are read from its own last-value bound (a
        // series' newest row is in some shard, at or after that shard's bound); not from the
        // smallest bound of all, which an old shard sets. Those parts are filtered on time
        // only, so a scan of files alone still names its files for the kept plans. A file's
        // rows from the bound, where few, are kept in memory (crate::last_rows) and join the
        // other rows in memory unfiltered: they are all at or after it.
        let field_names: Vec<String> = schema.fields.keys().cloned().collect();
        let mut bounded: Vec<DataFrame> = Vec::new();
        let mut bounded_files: Vec<String> = Vec::new();
        let mut bounded_memory = false;
        // Files' rows from their shard's bound, kept (crate::last_rows).
        let mut kept_rows: Vec<MemoryBatch> = Vec::new();
        for (_, snap) in snapshots {
            let Some(ing) = ing else { break };
            let own_bound = if last_values {
                snap.last_value_bound(&field_names)?
            } else {
                None
            };
            let want = match own_bound {
                Some(b) => (want.0.max(b), want.1),
                None => want,
            };
            let (mut own_files, mut own_memory) = (Vec::new(), Vec::new());
            let (files, memory) = match own_bound {
                Some(_) => (&mut own_files, &mut own_memory),
                None => (&mut files, &mut memory),
            };
            let buffered: Vec<(Arc<ingester::SortedRows>, (i64, i64))> = snap
                .buffered
                .iter()
                .filter(|b| b.num_rows() > 0)
                .map(|b| b.time_range().map(|r| (Arc::clone(b), r)))
                .collect::<Result<_, _>>()?;
            // Each source's span, and the buffer it is a run of.
            let mut spans: Vec<((i64, i64), Option<u64>)> = snap
                .files
                .iter()
                .map(|f| ((f.min_time, f.max_time), None))
                .collect();
            spans.extend(buffered.iter().map(|(b, r)| (*r, Some(b.buffer()))));
            // Two sources can hold the same series and time only where their time ranges
            // overlap (runs of one buffer never do); that only matters if the overlap falls
            // inside the query's range.
            let mut windows: Vec<(i64, i64)> = Vec::new();
            for (i, (a, a_buffer)) in spans.iter().enumerate() {
                for (b, b_buffer) in &spans[i + 1..] {
                    if a_buffer.is_some() && a_buffer == b_buffer {
                        continue;
                    }
                    let shared = (a.0.max(b.0).max(want.0), a.1.min(b.1).min(want.1));
                    if shared.0 <= shared.1 {
                        windows.push(shared);
                    }
                }
            }
            if !windows.is_empty() {
                let mut df = self
                    .merged_shard_frame(ctx, name, &snap, &plain(), &windows, want)
                    .await?;
                if let Some(b) = own_bound {
                    df = df.filter(time_from(b))?;
                }
                merged.push(df);
                stats.shards_merged += 1;
                continue;
            }
            for f in &snap.files {
                if !overlaps((f.min_time, f.max_time), want) {
                    stats.files_skipped += 1;
                    continue;
                }
                if snap.tombstones.iter().any(|t| t.generation > f.generation) {
                    for b in ingester::parquet_io::read_file(&ing.object_store(), &f.path).await? {
                        let b =
                            ingester::delete::apply_all(&snap.tombstones, name, b, f.generation)?;
                        memory.push(MemoryBatch::unindexed(ingester::batch::align(
                            &b,
                            &plain(),
                        )?));
                        stats.batches_in_memory += 1;
                    }
                    continue;
                }
                files.push(ing.data_dir().join(&f.path).display().to_string());
                stats.files_scanned += 1;
            }
            // Each buffered batch comes sorted with its duplicates merged: scans read only the
            // series and times they can select (crate::memory_rows).
            for (b, range) in buffered {
                if overlaps(range, want) {
                    let aligned = ingester::batch::align(b.batch(), &plain())?;
                    memory.push(MemoryBatch::buffered(&b, aligned));
                    stats.batches_in_memory += 1;
                }
            }
            if let Some(b) = own_bound {
                // Each file's rows from the bound, kept in memory where few (crate::last_rows):
                // read with the other rows in memory, since they need no bound filter.
                let mut scanned = Vec::new();
                for path in std::mem::take(&mut own_files) {
                    match self.last_rows_of(ctx, &path, b, &schema, &plain()).await? {
                        Some(rows) => {
                            stats.batches_in_memory += rows.len();
                            kept_rows
                                .extend(rows.iter().map(|r| MemoryBatch::unindexed(r.clone())));
                        }
                        None => scanned.push(path),
                    }
                }
                own_files = scanned;
                bounded_files.extend(own_files.iter().cloned());
                bounded_memory |= !own_memory.is_empty();
                let parts = self.local_parts(ctx, own_files, own_memory, &schema, plain)?;
                if let Some(df) = union_all(parts)? {
                    bounded.push(df.filter(time_from(b))?);
                }
            }
        }
        memory.extend(kept_rows);
        // Each peer's shards: one table that asks the peer for their rows.
        for (remote, _) in remote {
            merged.push(ctx.read_table(Arc::new(ShardTable {
                remote,
                database: database.clone(),
                measurement: name.to_string(),
                range,
                schema: plain(),
                last_values,
            }))?);
        }
        if merged.is_empty() && !bounded_memory && (memory.is_empty() || bounded.is_empty()) {
            let mut named: Vec<String> = files.iter().chain(&bounded_files).cloned().collect();
            if !memory.is_empty() {
                // Rows in memory have no name: the schema they are read as tells a kept plan
                // of one measurement's rows from another's.
                named.push(format!("{BUFFERED} {:?}", plain().fields()));
            }
            stats.files = Some(named);
        }
        if (!files.is_empty() || !memory.is_empty()) && merged.is_empty() && bounded.is_empty() {
            let files = if files.is_empty() {
                None
            } else {
                Some(self.listings().table(ctx, &files, &schema, &plain)?)
            };
            let memory = (!memory.is_empty()).then(|| Arc::new(MemoryRows::new(plain(), memory)));
            return Ok(Some(Frame {
                df: LazyFrame::Tables {
                    ctx: ctx.clone(),
                    files,
                    memory,
                },
                schema,
                stats,
                pinned,
            }));
        }
        let mut parts = self.local_parts(ctx, files, memory, &schema, plain)?;
        parts.extend(bounded);
        parts.extend(merged);
        let Some(df) = union_all(parts)? else {
            return Ok(None);
        };
        Ok(Some(Frame {
            df: LazyFrame::Built(df),
            schema,
            stats,
            pinned,
        }))
    }

    /// File `path`'s rows at or after `bound` (a last-value bound), read as `schema` (`plain` its
    /// Arrow schema): kept, or read now and kept; `None` when there are too many to keep, and
    /// the file is to be scanned (crate::last_rows).
    async fn last_rows_of(
        &self,
        ctx: &SessionContext,
        path: &str,
        bound: i64,
        schema: &TableSchema,
        plain: &SchemaRef,
    ) -> Result<Option<Arc<Vec<RecordBatch>>>, ExecError> {
        use crate::last_rows::{Kept, MAX_ROWS};
        match self.last_rows().get(path, bound, schema) {
            Some(Kept::Rows(rows)) => return Ok(Some(rows)),
            Some(Kept::TooMany) => return Ok(None),
            None => {}
        }
        let table = self
            .listings()
            .table(ctx, &[path.to_string()], schema, || Arc::clone(plain))?;
        let rows = ctx
            .read_table(table)?
            .filter(time_from(bound))?
            .limit(0, Some(MAX_ROWS + 1))?
            .collect()
            .await?
            .iter()
            .map(|b| ingester::batch::align(b, plain))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match self.last_rows().keep(path, bound, schema, rows) {
            Kept::Rows(rows) => Some(rows),
            Kept::TooMany => None,
        })
    }

    /// A table of `files` (local paths) and one of `memory`, those that are not empty.
    fn local_parts(
        &self,
        ctx: &SessionContext,
        files: Vec<String>,
        memory: Vec<MemoryBatch>,
        schema: &TableSchema,
        plain: impl Fn() -> SchemaRef,
    ) -> Result<Vec<DataFrame>, ExecError> {
        let mut parts = Vec::new();
        if !files.is_empty() {
            let table = self.listings().table(ctx, &files, schema, &plain)?;
            parts.push(ctx.read_table(table)?);
        }
        if !memory.is_empty() {
            parts.push(ctx.read_table(Arc::new(MemoryRows::new(plain(), memory)))?);
        }
        Ok(parts)
    }

    /// One shard's sources where they may hold the same series and time: every source is read
    /// with its generation; rows inside the overlap windows are merged by series and time (for
    /// each field, the newest source's value), the others pass as they are.
    async fn merged_shard_frame(
        &self,
        ctx: &SessionContext,
        name: &str,
        snap: &TableSnapshot,
        plain: &SchemaRef,
        windows: &[(i64, i64)],
        want: (i64, i64),
    ) -> Result<DataFrame, ExecError> {
        let Some(ing) = self.ingester() else {
            return Err(ExecError::Query("no data role".into()));
        };
        let mut sources: Vec<(i64, DataFrame)> = Vec::new();
        for f in &snap.files {
            if !overlaps((f.min_time, f.max_time), want) {
                continue;
            }
            let df = if snap.tombstones.iter().any(|t| t.generation > f.generation) {
                let mut batches = Vec::new();
                for b in ingester::parquet_io::read_file(&ing.object_store(), &f.path).await? {
                    let b = ingester::delete::apply_all(&snap.tombstones, name, b, f.generation)?;
                    batches.push(ingester::batch::align(&b, plain)?);
                }
                ctx.read_table(Arc::new(MemTable::try_new(plain.clone(), vec![batches])?))?
            } else {
                let path = ing.data_dir().join(&f.path).display().to_string();
                ctx.read_parquet(path, ParquetReadOptions::default().schema(plain))
                    .await?
            };
            sources.push((f.generation as i64, df));
        }
        // Buffered batches are newer than every file, and later ones newer than earlier ones.
        for (i, b) in snap.buffered.iter().enumerate() {
            let b = ingester::batch::align(b.batch(), plain)?;
            sources.push((
                i64::MAX / 2 + i as i64,
                ctx.read_table(Arc::new(MemTable::try_new(plain.clone(), vec![vec![b]])?))?,
            ));
        }
        let time = || col(TIME_COLUMN);
        let ts = |t: i64| lit(ScalarValue::TimestampNanosecond(Some(t), None));
        let in_windows = windows
            .iter()
            .map(|(lo, hi)| time().gt_eq(ts(*lo)).and(time().lt_eq(ts(*hi))))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false));
        let mut all: Option<DataFrame> = None;
        for (generation, df) in sources {
            let mut cols: Vec<Expr> = plain_projection(plain);
            cols.push(lit(generation).alias(GENERATION));
            let df = df.select(cols)?;
            all = Some(match all {
                Some(a) => a.union(df)?,
                None => df,
            });
        }
        let Some(all) = all else {
            return Err(ExecError::Query("a merged shard without sources".into()));
        };
        let tags: Vec<&str> = plain
            .fields()
            .iter()
            .filter(|f| matches!(f.data_type(), DataType::Dictionary(_, _)))
            .map(|f| f.name().as_str())
            .collect();
        let fields: Vec<&str> = plain
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| *n != TIME_COLUMN && !tags.contains(n))
            .collect();
        let mut group: Vec<Expr> = tags.iter().map(|t| col(*t)).collect();
        group.push(time());
        let aggs: Vec<Expr> = fields
            .iter()
            .map(|f| {
                datafusion::functions_aggregate::first_last::last_value_udaf()
                    .call(vec![col(*f)])
                    .order_by(vec![col(GENERATION).sort(true, false)])
                    .filter(col(*f).is_not_null())
                    .build()
                    .map(|e| e.alias(*f))
            })
            .collect::<Result<_, _>>()?;
        let inside = all
            .clone()
            .filter(in_windows.clone())?
            .aggregate(group, aggs)?;
        let order: Vec<Expr> = plain
            .fields()
            .iter()
            .map(|f| col(f.name().as_str()))
            .collect();
        let inside = inside.select(order.clone())?;
        let outside = all.filter(!in_windows)?.select(order)?;
        Ok(outside.union(inside)?)
    }
}

const TIME_COLUMN: &str = "time";
const GENERATION: &str = "__generation";

/// The union of `parts` (`None` when there are none).
fn union_all(mut parts: Vec<DataFrame>) -> Result<Option<DataFrame>, ExecError> {
    let Some(mut df) = parts.pop() else {
        return Ok(None);
    };
    for p in parts {
        df = p.union(df)?;
    }
    Ok(Some(df))
}

/// Columns of `plain` with tags cast to plain strings.
fn plain_projection(plain: &SchemaRef) -> Vec<Expr> {
    plain
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, _) => {
                cast(col(f.name().as_str()), DataType::Utf8).alias(f.name())
            }
            _ => col(f.name().as_str()),
        })
        .collect()
}
