//! The data node's storage engine: validates points routed to its shards, logs them, buffers
//! them, and persists, compacts and removes shards in the background.
//!
//! This file is the facade ([`Ingester`]: opening a data directory, the maintenance loop,
//! shutdown) and the state it shares; each phase has its own module: `validation` (points
//! against shard schemas), `write` (WAL then buffer), `replay` (the WAL on open),
//! `persistence` (buffer to Parquet, and the file writing compaction shares), `compaction`,
//! `deletes` (tombstones), `retention` (removing shards the catalog no longer lists) and
//! `read` (snapshots for queries).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use catalog::{CatalogState, MetaService};
use line_protocol::Point;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use tokio::sync::{oneshot, watch};

use crate::batch::{
    align, columns_of_kind, concat_aligned, sort_dedup, sort_dedup_by, sort_key_names, time_range,
};
use crate::delete::{TagPredicate, Tombstone, apply_all};
use crate::error::{StorageError, WalError, WriteError};
use crate::manifest::{MANIFEST, Manifest, ParquetFileMeta, sync_file};
use crate::merge::{Input, MERGE_BATCH_ROWS, Merge, sliced};
use crate::parquet_io::{FileWriter, read_batches, read_file, write_file};
use crate::pins::{FilePins, Pinned};
use crate::schema::{FieldType, TIME, TableSchema};
use crate::table::{FrozenTable, SortedRows, TableBuffer};
use crate::wal::{Wal, WalEntry, WalRequest, encode_entry, run_writer};

mod compaction;
mod deletes;
mod persistence;
mod read;
mod replay;
mod retention;
pub mod validation;
mod write;

use persistence::*;
use validation::*;

/// Settings of the storage engine (the `[data]` section).
#[derive(Debug, Clone)]
pub struct IngesterConfig {
    /// Parquet files and manifests.
    pub data_dir: PathBuf,
    pub wal_dir: PathBuf,
    /// Writes are refused (503) while this many bytes are buffered and not yet persisted.
    pub cache_max_memory_size: usize,
    /// Buffered data is persisted once it reaches this many bytes...
    pub cache_snapshot_memory_size: usize,
    /// ...or once its oldest write is this old.
    pub cache_snapshot_write_cold_duration: Duration,
    /// A measurement of a shard with this many files is compacted into one.
    pub compact_max_files: usize,
    /// A shard that has taken no write or delete for this long is compacted down to as few
    /// files as `max_rows_per_file` allows.
    pub compact_full_write_cold_duration: Duration,
    pub max_rows_per_file: usize,
    /// How often the background loop looks for work.
    pub maintenance_interval: Duration,
}

impl IngesterConfig {
    pub fn with_dirs(data_dir: PathBuf, wal_dir: PathBuf) -> Self {
        Self {
            data_dir,
            wal_dir,
            cache_max_memory_size: 1 << 30,
            cache_snapshot_memory_size: 25 << 20,
            cache_snapshot_write_cold_duration: Duration::from_secs(600),
            compact_max_files: 8,
            compact_full_write_cold_duration: Duration::from_secs(4 * 3600),
            max_rows_per_file: 4_000_000,
            maintenance_interval: Duration::from_secs(1),
        }
    }
}

/// What happened to the points of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriteOutcome {
    pub written: usize,
    pub dropped: usize,
    /// The first reason a point was dropped, in 1.x's words.
    pub reason: Option<String>,
    /// How many of `dropped` each shard dropped (shards that dropped none are left out), so
    /// that a coordinator counts a replicated shard's drops once.
    #[serde(default)]
    pub dropped_in: Vec<(u64, usize)>,
}

/// What a `DELETE`, `DROP SERIES` or `DROP MEASUREMENT` removes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeleteScope {
    pub database: String,
    /// Every retention policy when `None`.
    pub retention_policy: Option<String>,
    /// Every measurement when `None`.
    pub measurements: Option<Vec<String>>,
    pub predicate: Option<TagPredicate>,
    /// Inclusive time bounds.
    pub min_time: i64,
    pub max_time: i64,
}

impl DeleteScope {
    /// Whether the delete removes point `p` of retention policy `rp`.
    pub fn matches(&self, rp: &str, p: &Point<'_>) -> bool {
        self.retention_policy.as_deref().is_none_or(|r| r == rp)
            && self
                .measurements
                .as_ref()
                .is_none_or(|ms| ms.iter().any(|m| m == p.measurement.as_ref()))
            && p.time >= self.min_time
            && p.time <= self.max_time
            && self.predicate.as_ref().is_none_or(|pred| {
                pred.matches(&|key| {
                    p.tags
                        .iter()
                        .find(|(k, _)| k == key)
                        .map_or("", |(_, v)| v.as_ref())
                })
            })
    }
}

/// A measurement's data in one shard as a reader sees it at one moment.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub schema: TableSchema,
    /// Live Parquet files, oldest generation first.
    pub files: Vec<ParquetFileMeta>,
    /// Deletes that still hide rows of older files.
    pub tombstones: Vec<Arc<Tombstone>>,
    /// Buffered rows not yet in Parquet, oldest first; each sorted by series and time with
    /// its duplicates merged (but they may overlap each other).
    pub buffered: Vec<Arc<SortedRows>>,
    /// The files stay on disk while this (or a clone) lives, even if compaction or a delete
    /// replaces them meanwhile ([`crate::pins`]).
    pub pinned: Arc<Pinned>,
}

/// The Parquet files (ids) and tombstones (generations) that hold a measurement's rows in a
/// shard ([`Ingester::table_version`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableVersion {
    pub files: Vec<u64>,
    pub tombstones: Vec<u64>,
}

/// A frozen buffer: per measurement, its rows, sorted once by persistence or the first reader.
type FrozenTables = BTreeMap<String, Arc<FrozenTable>>;

struct ShardData {
    manifest: Manifest,
    active: BTreeMap<String, TableBuffer>,
    /// Buffers handed to persistence, still visible to readers until their files are live.
    frozen: Vec<Arc<FrozenTables>>,
    /// When the shard last took a write or a delete (wall clock, ns; for a shard loaded from
    /// disk, when it was loaded): a shard is cold, and compacted whole, once this is
    /// `compact_full_write_cold_duration` ago, as in InfluxDB.
    last_write: i64,
}

impl ShardData {
    fn new(manifest: Manifest) -> Self {
        Self {
            manifest,
            active: BTreeMap::new(),
            frozen: Vec::new(),
            last_write: now_nanos(),
        }
    }

    fn active_bytes(&self) -> usize {
        self.active.values().map(TableBuffer::approx_bytes).sum()
    }

    /// Whether rows of `measurement` wait in a buffer (active or frozen).
    fn is_buffered(&self, measurement: &str) -> bool {
        self.active.contains_key(measurement)
            || self.frozen.iter().any(|f| f.contains_key(measurement))
    }

    /// The union of a measurement's schemas over files, frozen and active buffers; `None`
    /// when the shard has nothing of it.
    fn table_schema(&self, measurement: &str) -> Option<TableSchema> {
        let mut schema: Option<TableSchema> = None;
        let mut add = |t: &TableSchema| schema.get_or_insert_with(TableSchema::default).merge(t);
        if let Some(t) = self.manifest.tables.get(measurement) {
            add(&t.schema);
        }
        for f in &self.frozen {
            if let Some(t) = f.get(measurement) {
                add(t.schema());
            }
        }
        if let Some(t) = self.active.get(measurement) {
            add(t.schema());
        }
        schema
    }
}

/// Buffers waiting for persistence, with the WAL segments that hold them.
struct Frozen {
    segments: Vec<u64>,
    shards: BTreeMap<u64, Arc<FrozenTables>>,
    bytes: usize,
}

impl TableSnapshot {
    /// A time before which none of `fields`' last value per series is (see
    /// [`crate::batch::last_value_bounds`]), over every source of the snapshot; `None` when it
    /// is not known (a file that records none, or deletes that may have removed last values).
    pub fn last_value_bound(&self, fields: &[String]) -> Result<Option<i64>, StorageError> {
        if !self.tombstones.is_empty() {
            return Ok(None);
        }
        let Some(files) = min_bounds(&self.files) else {
            return Ok(None);
        };
        let mut bound = fields.iter().filter_map(|f| files.get(f)).min().copied();
        for b in &self.buffered {
            let buffered = b.last_value_bounds()?;
            let here = fields.iter().filter_map(|f| buffered.get(f)).min().copied();
            bound = match (bound, here) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(bound)
    }
}

pub struct Ingester {
    cfg: IngesterConfig,
    meta: Arc<MetaService>,
    node_id: u64,
    store: Arc<dyn ObjectStore>,
    wal_tx: Mutex<Option<std::sync::mpsc::Sender<WalRequest>>>,
    wal_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Writes hold it shared from validation until their points are buffered; freezing the
    /// buffer (with the WAL rotation) holds it exclusively, so a rotated segment's data is
    /// exactly the frozen buffer's.
    gate: tokio::sync::RwLock<()>,
    /// Per shard, the Raft index of the last recorded delete applied or being applied to it
    /// (above its manifest's `applied_delete` while one is applied): a write routed with an
    /// older catalog loses the points such deletes remove before it is buffered.
    delete_marks: Mutex<BTreeMap<u64, u64>>,
    /// Dropped shards whose directories wait for readers of their files.
    dropped_dirs: Mutex<Vec<u64>>,
    schemas: Mutex<Schemas>,
    state: RwLock<BTreeMap<u64, ShardData>>,
    /// Serializes persistence, compaction and shard removal; holds the persistence queue.
    maintenance: tokio::sync::Mutex<VecDeque<Frozen>>,
    /// The files snapshots list, kept until their readers are done ([`crate::pins`]).
    pins: Arc<FilePins>,
    buffer_bytes: AtomicUsize,
    /// Unix nanos of the first write into the active buffer; 0 when it is empty.
    oldest_buffered: AtomicI64,
    closing: AtomicBool,
}

impl std::fmt::Debug for Ingester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingester")
            .field("node_id", &self.node_id)
            .field("data_dir", &self.cfg.data_dir)
            .finish()
    }
}

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

impl Ingester {
    /// Opens the data directory: loads manifests, removes files no manifest names, replays the
    /// WAL into the buffer and starts the WAL writer.
    pub async fn open(
        mut cfg: IngesterConfig,
        meta: Arc<MetaService>,
        node_id: u64,
    ) -> Result<Arc<Self>, StorageError> {
        // Absolute from here on: readers name files by their absolute paths (the querier's
        // series indexes are kept by them), whatever the working directory.
        cfg.data_dir =
            std::path::absolute(&cfg.data_dir).map_err(|e| StorageError::io(&cfg.data_dir, e))?;
        std::fs::create_dir_all(cfg.data_dir.join("shards"))
            .map_err(|e| StorageError::io(&cfg.data_dir, e))?;
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(&cfg.data_dir)?);
        let (shards, schemas) = load_shards(&cfg.data_dir)?;
        let (wal, entries) = Wal::open(&cfg.wal_dir)?;

        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fletch-wal".into())
            .spawn(move || run_writer(wal, rx))
            .map_err(|e| StorageError::io(&cfg.wal_dir, e))?;

        let pins = FilePins::new(cfg.data_dir.clone());
        let ingester = Arc::new(Self {
            cfg,
            meta,
            node_id,
            store,
            wal_tx: Mutex::new(Some(tx)),
            wal_thread: Mutex::new(Some(thread)),
            gate: tokio::sync::RwLock::new(()),
            delete_marks: Mutex::new(BTreeMap::new()),
            dropped_dirs: Mutex::new(Vec::new()),
            schemas: Mutex::new(schemas),
            state: RwLock::new(shards),
            maintenance: tokio::sync::Mutex::new(VecDeque::new()),
            pins,
            buffer_bytes: AtomicUsize::new(0),
            oldest_buffered: AtomicI64::new(0),
            closing: AtomicBool::new(false),
        });
        ingester.replay(entries);
        Ok(ingester)
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The data directory, as an absolute path.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.cfg.data_dir
    }

    /// Bytes buffered and not yet persisted.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer_bytes.load(Ordering::Relaxed)
    }

    fn read_state<T>(&self, f: impl FnOnce(&BTreeMap<u64, ShardData>) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn should_persist(&self, queue_pending: bool) -> bool {
        if queue_pending
            || self.buffer_bytes.load(Ordering::Relaxed) >= self.cfg.cache_snapshot_memory_size
        {
            return true;
        }
        let oldest = self.oldest_buffered.load(Ordering::Acquire);
        let cold = self
            .cfg
            .cache_snapshot_write_cold_duration
            .as_nanos()
            .min(i64::MAX as u128) as i64;
        oldest != 0 && now_nanos().saturating_sub(oldest) >= cold
    }

    /// The background loop: persistence, compaction, and the removal of shards the catalog no
    /// longer lists (the coordinator's retention service expires shard groups). Ends when
    /// `stop` turns true.
    pub async fn run_maintenance(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.cfg.maintenance_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            let pending = !self.maintenance.lock().await.is_empty();
            if self.should_persist(pending) {
                if let Err(e) = self.persist().await {
                    tracing::error!(error = %e, "persisting the write buffer failed; will retry");
                }
            }
            if let Err(e) = self.compact(now_nanos()).await {
                tracing::error!(error = %e, "compaction failed; will retry");
            }
            if let Err(e) = self.drop_removed_shards().await {
                tracing::warn!(error = %e, "removing dropped shards failed; will retry");
            }
        }
    }

    /// Stops taking writes, waits for those in flight, persists everything and stops the WAL.
    pub async fn shutdown(&self) -> Result<(), StorageError> {
        self.closing.store(true, Ordering::Release);
        drop(self.gate.write().await);
        let res = self.persist().await;
        self.wal_tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handle = self
            .wal_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        res
    }
}

/// Shards of live groups that `node` owns, with their database and retention policy.
fn live_shards(catalog: &CatalogState, node: u64) -> HashMap<u64, (String, String)> {
    catalog
        .shards_owned_by(node)
        .into_iter()
        .map(|(db, rp, _, s)| (s.id, (db.name.clone(), rp.name.clone())))
        .collect()
}

/// Loads every shard manifest and deletes files that no manifest names.
fn load_shards(
    data_dir: &std::path::Path,
) -> Result<(BTreeMap<u64, ShardData>, Schemas), StorageError> {
    let root = data_dir.join("shards");
    let mut shards = BTreeMap::new();
    let mut schemas = Schemas::new();
    for ent in std::fs::read_dir(&root).map_err(|e| StorageError::io(&root, e))? {
        let ent = ent.map_err(|e| StorageError::io(&root, e))?;
        let Some(id) = ent.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let dir = ent.path();
        let manifest_path = dir.join(MANIFEST);
        let manifest = if manifest_path.exists() {
            Some(Manifest::load(&manifest_path)?)
        } else {
            None
        };
        let live: HashSet<String> = manifest
            .iter()
            .flat_map(|m| {
                m.live_paths()
                    .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
            })
            .collect();
        for f in std::fs::read_dir(&dir).map_err(|e| StorageError::io(&dir, e))? {
            let f = f.map_err(|e| StorageError::io(&dir, e))?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name == MANIFEST || live.contains(&name) {
                continue;
            }
            tracing::info!(file = %f.path().display(), "removing a file no manifest names (left by an interrupted persist or compaction)");
            std::fs::remove_file(f.path()).map_err(|e| StorageError::io(&f.path(), e))?;
        }
        let Some(m) = manifest else {
            // A dropped shard whose files outlived its manifest, or a first persist that never
            // finished: nothing of it is left to keep.
            let _ = std::fs::remove_dir(&dir);
            continue;
        };
        let shard_schemas = schemas.entry(id).or_default();
        for (name, t) in &m.tables {
            shard_schemas.insert(
                name.clone(),
                Known {
                    schema: t.schema.clone(),
                    ..Default::default()
                },
            );
        }
        shards.insert(id, ShardData::new(m));
    }
    Ok((shards, schemas))
}
