//! A measurement's series read from the series indexes rather than from its rows: what the
//! `SHOW SERIES`, `SHOW TAG VALUES`, `SHOW TAG KEYS` and cardinality statements need when their
//! condition is of tags only.
//!
//! ```text
//!  Sources of the measurement (every shard, all time)
//!    ├─ a file, no newer tombstone ─▶ its series index's runs (series_index::FileIndex,
//!    │                                 loaded once per file): one row per run, those whose
//!    │                                 tags can match the condition (equalities by binary
//!    │                                 search)
//!    ├─ a file a delete hides rows of ─▶ its rows read, the tombstones applied, tags kept
//!    ├─ buffered rows ────────────────▶ their series index's runs (memory_rows::runs_of)
//!    └─ peers' shards ────────────────▶ their rows' tag columns (crate::shard_source)
//!  tag columns (dictionaries), the whole condition evaluated on them without a plan
//!  ([`SeriesRuns::matching`]): a series may appear in several rows, the caller removes
//!  duplicates; counted without a condition ─▶ [`SeriesCounts`]: kept per set of sources
//! ```
//!
//! 1.x answers these statements from its series index; reading every row instead cost a
//! `SHOW TAG VALUES ... WHERE hostname = '...'` 2 ms at 2000 hosts and grew with the points,
//! and `SHOW SERIES CARDINALITY` 190 ms at 100000 hosts (InfluxDB: 0.5 ms). A run holds one tag
//! set for all its rows, so a condition of tags only keeps a run exactly when it keeps the
//! run's rows: the series found are the same.
//!
//! What it must not do: answer differently from the rows. A source it cannot index (a file
//! too large for the index, a buffer whose index cannot be made) leaves the statement to the
//! rows.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{DataFrame, Expr, SessionContext};
use ingester::SortedRows;
use ingester::schema::tag_type;

use crate::executor::{ExecError, Executor};
use crate::select::{TimeRange, ident};
use crate::shard_source::ShardTable;

/// A measurement's series as rows of tag columns (see the module's essay), and the files they
/// were read from kept on disk while it lives.
pub(crate) struct SeriesRuns {
    /// The measurement's tags, as dictionaries, in the schema's (sorted) order.
    tag_schema: SchemaRef,
    /// Runs of this node's sources (and rows of files a delete hides rows of), each with
    /// whether its rows are known to satisfy `predicate` already.
    batches: Vec<(RecordBatch, bool)>,
    /// The tag columns of the rows of peers' shards.
    remote: Vec<DataFrame>,
    /// The condition the rows must satisfy, over `tag_schema`.
    predicate: Option<Arc<dyn PhysicalExpr>>,
    _pinned: Vec<Arc<ingester::pins::Pinned>>,
}

/// One source of [`SeriesRuns`], as [`SeriesCounts`] tells sets of sources apart.
#[derive(Debug, Clone)]
enum SourceKey {
    /// A file (its path is never reused in a process).
    File(String),
    /// A delete's tombstone in a shard.
    Tombstone(u64, u64),
    /// Buffered rows: the same rows as long as the same allocation (held weakly, so that it
    /// is neither kept nor reused while the key lives).
    Buffered(Weak<SortedRows>),
}

impl PartialEq for SourceKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::File(a), Self::File(b)) => a == b,
            (Self::Tombstone(a, b), Self::Tombstone(c, d)) => (a, b) == (c, d),
            (Self::Buffered(a), Self::Buffered(b)) => a.ptr_eq(b) && a.strong_count() > 0,
            _ => false,
        }
    }
}

impl SeriesRuns {
    /// The rows (all the tag columns, as dictionaries) that satisfy the condition, with
    /// duplicates: the runs evaluated here, without a plan (a light `SHOW TAG VALUES` would
    /// spend most of its time planning one); the peers' rows without duplicates.
    pub async fn matching(self) -> Result<Vec<RecordBatch>, ExecError> {
        let mut batches = self.batches;
        for rows in self.remote {
            for b in rows.distinct()?.collect().await? {
                batches.push((ingester::batch::align(&b, &self.tag_schema)?, false));
            }
        }
        let Some(predicate) = self.predicate else {
            return Ok(batches.into_iter().map(|(b, _)| b).collect());
        };
        batches
            .into_iter()
            .filter(|(b, _)| b.num_rows() > 0)
            .map(|(b, exact)| {
                if exact {
                    return Ok(b);
                }
                let keep = predicate.evaluate(&b)?.into_array(b.num_rows())?;
                let keep = keep.as_boolean_opt().ok_or_else(|| {
                    ExecError::Internal(format!("a condition of type {}", keep.data_type()))
                })?;
                Ok(filter_record_batch(&b, keep)?)
            })
            .collect()
    }
}

/// How many distinct rows `batches` (of one schema) hold.
pub(crate) fn distinct_rows(batches: &[RecordBatch]) -> Result<usize, ExecError> {
    let Some(first) = batches.first() else {
        return Ok(0);
    };
    let columns: Vec<usize> = (0..first.num_columns()).collect();
    let converter = ingester::batch::key_converter(&first.schema(), &columns)?;
    let rows = batches
        .iter()
        .map(|b| converter.convert_columns(b.columns()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for r in &rows {
        seen.extend(r.iter().map(|row| row.data()));
    }
    Ok(seen.len())
}

/// Counts of series without a condition, kept per measurement and set of sources (files,
/// tombstones, buffered rows): a dashboard's `SHOW SERIES CARDINALITY` between two writes is
/// not counted again. Kept for [`COUNTS`] sets at most, the oldest dropped first.
#[derive(Debug, Default)]
pub struct SeriesCounts {
    kept: Mutex<Vec<(CountKey, usize)>>,
}

/// Sets of sources whose counts are kept.
const COUNTS: usize = 64;

/// Database, measurement, its tags, the sources.
type CountKey = (String, String, Vec<String>, Vec<SourceKey>);

impl SeriesCounts {
    fn get(&self, key: &CountKey) -> Option<usize> {
        let kept = self.kept.lock().ok()?;
        kept.iter().find(|(k, _)| k == key).map(|(_, n)| *n)
    }

    fn put(&self, key: CountKey, n: usize) {
        if let Ok(mut kept) = self.kept.lock() {
            // Counts of buffers gone can never be asked for again.
            kept.retain(|(k, _)| {
                k.3.iter().all(|s| match s {
                    SourceKey::Buffered(w) => w.strong_count() > 0,
                    _ => true,
                })
            });
            if kept.len() >= COUNTS {
                kept.remove(0);
            }
            kept.push((key, n));
        }
    }
}

/// `condition` over `schema`'s columns, coerced and simplified as a plan's filter is (a tag
/// compared with a string becomes the tag equal to a dictionary literal, which the series
/// indexes find by binary search).
fn physical_condition(
    ctx: &SessionContext,
    condition: &Expr,
    schema: &SchemaRef,
) -> Result<Arc<dyn PhysicalExpr>, ExecError> {
    let df_schema = Arc::new(DFSchema::try_from(Arc::clone(schema))?);
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::clone(&df_schema))
            .build(),
    );
    let e = simplifier.coerce(condition.clone(), &df_schema)?;
    let e = simplifier.simplify(e)?;
    Ok(ctx.create_physical_expr(e, &df_schema)?)
}

/// What [`Executor::series_runs`] found.
pub(crate) enum Series {
    /// How many series there are (when asked to count).
    Counted(usize),
    /// Their rows.
    Runs(SeriesRuns),
}

impl Executor {
    /// Measurement `name`'s series in `db` (every retention policy, the shards whose groups
    /// overlap `range`) as rows of its tag columns ([`SeriesRuns`]), only those whose tags
    /// can satisfy `condition` (of tags only; [`SeriesRuns::matching`] applies it); or, if
    /// `count`, how many there are (without a condition, kept per set of sources: a count
    /// already kept reads nothing). `None` when they are to be read from the rows: the
    /// measurement has no tags or no data, or a source has no series index.
    pub(crate) async fn series_runs(
        &self,
        db: &str,
        name: &str,
        condition: Option<&Expr>,
        range: TimeRange,
        count: bool,
    ) -> Result<Option<Series>, ExecError> {
        let sources = self.sources(db, "", name, range).await?;
        let schema = sources.schema.clone();
        if schema.tags.is_empty() || (sources.snapshots.is_empty() && sources.remote.is_empty()) {
            return Ok(None);
        }
        // Only this node's sources without a condition are counted once per set of them.
        let count_key: Option<CountKey> =
            (count && condition.is_none() && sources.remote.is_empty()).then(|| {
                let mut key = Vec::new();
                for (shard, snap) in &sources.snapshots {
                    key.extend(
                        snap.tombstones
                            .iter()
                            .map(|t| SourceKey::Tombstone(*shard, t.generation)),
                    );
                    key.extend(snap.files.iter().map(|f| SourceKey::File(f.path.clone())));
                    key.extend(
                        snap.buffered
                            .iter()
                            .filter(|b| b.num_rows() > 0)
                            .map(|b| SourceKey::Buffered(Arc::downgrade(b))),
                    );
                }
                let tags = schema.tags.iter().cloned().collect();
                (db.to_string(), name.to_string(), tags, key)
            });
        if let Some(n) = count_key.as_ref().and_then(|k| self.series_counts().get(k)) {
            return Ok(Some(Series::Counted(n)));
        }
        let tag_schema: SchemaRef = Arc::new(Schema::new(
            schema
                .tags
                .iter()
                .map(|t| Field::new(t, tag_type(), true))
                .collect::<Vec<_>>(),
        ));
        let ctx = self.session();
        let predicate = condition
            .map(|c| physical_condition(ctx, c, &tag_schema))
            .transpose()?;
        let mut batches: Vec<(RecordBatch, bool)> = Vec::new();
        let pinned = sources
            .snapshots
            .iter()
            .map(|(_, s)| Arc::clone(&s.pinned))
            .collect();
        if let Some(ing) = self.ingester() {
            for (_, snap) in &sources.snapshots {
                for f in &snap.files {
                    if snap.tombstones.iter().any(|t| t.generation > f.generation) {
                        for b in
                            ingester::parquet_io::read_file(&ing.object_store(), &f.path).await?
                        {
                            let b = ingester::delete::apply_all(
                                &snap.tombstones,
                                name,
                                b,
                                f.generation,
                            )?;
                            batches.push((ingester::batch::align(&b, &tag_schema)?, false));
                        }
                        continue;
                    }
                    let path = ing.data_dir().join(&f.path);
                    let Some(index) = self.indexes().local_file(&path).await else {
                        return Ok(None);
                    };
                    let runs = index
                        .series()
                        .tag_rows_matching(predicate.as_ref(), &tag_schema)?;
                    batches.push((ingester::batch::align(&runs.rows, &tag_schema)?, runs.exact));
                }
                for b in snap.buffered.iter().filter(|b| b.num_rows() > 0) {
                    let Some(runs) = crate::memory_rows::runs_of(b) else {
                        return Ok(None);
                    };
                    let runs = runs.tag_rows_matching(predicate.as_ref(), &tag_schema)?;
                    batches.push((ingester::batch::align(&runs.rows, &tag_schema)?, runs.exact));
                }
            }
        }
        let tags: Vec<Expr> = schema.tags.iter().map(|t| ident(t)).collect();
        let plain = crate::scan::plain_schema(&schema);
        let mut remote = Vec::new();
        for (shards, _) in sources.remote {
            remote.push(
                ctx.read_table(Arc::new(ShardTable {
                    remote: shards,
                    database: db.to_string(),
                    measurement: name.to_string(),
                    range: TimeRange::ALL,
                    schema: Arc::clone(&plain),
                    last_values: false,
                }))?
                .select(tags.clone())?,
            );
        }
        let runs = SeriesRuns {
            tag_schema,
            batches,
            remote,
            predicate,
            _pinned: pinned,
        };
        if !count {
            return Ok(Some(Series::Runs(runs)));
        }
        let n = distinct_rows(&runs.matching().await?)?;
        if let Some(key) = count_key {
            self.series_counts().put(key, n);
        }
        Ok(Some(Series::Counted(n)))
    }
}
