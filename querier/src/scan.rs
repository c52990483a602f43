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
//!         ├─ a shard whose sources overlap     ─▶ Ingester::read_table (merged: later wins)
//!         └─ buffered batches                  ─▶ in memory
//!  union ─▶ tags cast to Utf8 ─▶ the statement's plan
//! ```
//!
//! Sources of one shard that do not overlap in time cannot hold the same series and time, so
//! they need no merging; shards of different groups never overlap, and shards of one group
//! hold different series.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::cast;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext, col};
use ingester::{TableSchema, TableSnapshot};

use crate::executor::{ExecError, Executor, shards_of};
use crate::select::TimeRange;

/// A session with Parquet filter pushdown on: predicates are evaluated while decoding, so
/// pages and rows that cannot match are skipped.
pub fn session() -> SessionContext {
    let mut config = SessionConfig::new().with_target_partitions(2);
    let opts = config.options_mut();
    opts.execution.parquet.pushdown_filters = true;
    opts.execution.parquet.reorder_filters = true;
    SessionContext::new_with_config(config)
}

/// The table's Arrow schema without Fletch's field metadata (so that scans and memory batches
/// union cleanly).
fn plain_schema(schema: &TableSchema) -> SchemaRef {
    let arrow = schema.arrow();
    Arc::new(Schema::new(
        arrow.fields().iter().map(|f| Field::new(f.name(), f.data_type().clone(), f.is_nullable())).collect::<Vec<_>>(),
    ))
}

fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// What one scan reads; counted for tests and `EXPLAIN`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub shards: usize,
    pub files_scanned: usize,
    pub files_skipped: usize,
    pub batches_in_memory: usize,
}

impl Executor {
    /// The rows of measurement `name` in `db`.`rp` (every policy when empty) that can fall in
    /// `range`, with tags as plain strings; `None` when no shard has the measurement.
    pub async fn measurement_frame(
        &self,
        ctx: &SessionContext,
        db: &str,
        rp: &str,
        name: &str,
        range: TimeRange,
    ) -> Result<Option<(DataFrame, TableSchema, ScanStats)>, ExecError> {
        let Some(ing) = self.ingester() else { return Ok(None) };
        let cat = self.meta().catalog();
        let dbi = cat.database(db).ok_or_else(|| ExecError::DatabaseNotFound(db.to_string()))?;
        let mut snapshots: Vec<(u64, TableSnapshot)> = Vec::new();
        let mut schema = TableSchema::default();
        for shard in shards_of(dbi, rp, range) {
            if let Some(s) = ing.table_snapshot(shard, name)? {
                schema.merge(&s.schema);
                snapshots.push((shard, s));
            }
        }
        if snapshots.is_empty() {
            return Ok(None);
        }
        let plain = plain_schema(&schema);
        let mut stats = ScanStats { shards: snapshots.len(), ..Default::default() };
        let mut files: Vec<String> = Vec::new();
        let mut memory: Vec<RecordBatch> = Vec::new();
        let want = (range.min, range.max);
        for (shard, snap) in snapshots {
            let mut spans: Vec<(i64, i64)> = snap.files.iter().map(|f| (f.min_time, f.max_time)).collect();
            for b in &snap.buffered {
                if b.num_rows() > 0 {
                    spans.push(ingester::batch::time_range(b)?);
                }
            }
            let overlapping = spans.iter().enumerate().any(|(i, a)| spans[i + 1..].iter().any(|b| overlaps(*a, *b)));
            if overlapping {
                // Sources that may hold the same series and time: merge them (later wins).
                if let Some(b) = ing.read_table(shard, name).await? {
                    memory.push(ingester::batch::align(&b, &plain)?);
                    stats.batches_in_memory += 1;
                }
                continue;
            }
            for f in &snap.files {
                if !overlaps((f.min_time, f.max_time), want) {
                    stats.files_skipped += 1;
                    continue;
                }
                if snap.tombstones.iter().any(|t| t.generation > f.generation) {
                    for b in ingester::parquet_io::read_file(&ing.object_store(), &f.path).await? {
                        let b = ingester::delete::apply_all(&snap.tombstones, name, b, f.generation)?;
                        memory.push(ingester::batch::align(&b, &plain)?);
                        stats.batches_in_memory += 1;
                    }
                    continue;
                }
                files.push(ing.data_dir().join(&f.path).display().to_string());
                stats.files_scanned += 1;
            }
            for b in snap.buffered {
                // Each buffered batch comes sorted with its duplicates merged.
                if b.num_rows() > 0 && !overlaps(ingester::batch::time_range(&b)?, want) {
                    continue;
                }
                memory.push(ingester::batch::align(&b, &plain)?);
                stats.batches_in_memory += 1;
            }
        }
        let mut frame: Option<DataFrame> = None;
        if !files.is_empty() {
            frame = Some(ctx.read_parquet(files, ParquetReadOptions::default().schema(&plain)).await?);
        }
        if !memory.is_empty() {
            let mem = ctx.read_table(Arc::new(MemTable::try_new(plain.clone(), vec![memory])?))?;
            frame = Some(match frame {
                Some(f) => f.union(mem)?,
                None => mem,
            });
        }
        let Some(frame) = frame else { return Ok(None) };
        // Tags as plain strings from here on.
        let projection: Vec<datafusion::prelude::Expr> = plain
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Dictionary(_, _) => cast(col(f.name().as_str()), DataType::Utf8).alias(f.name()),
                _ => col(f.name().as_str()),
            })
            .collect();
        Ok(Some((frame.select(projection)?, schema, stats)))
    }
}
