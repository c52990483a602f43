//! The data node's storage engine: validates points routed to its shards, logs them, buffers
//! them, and persists, compacts and removes shards in the background.

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
    LastValueBounds, align, columns_of_kind, concat_aligned, last_value_bounds, sort_dedup,
    sort_dedup_by, sort_key_names, time_range,
};
use crate::delete::{TagPredicate, Tombstone, apply_all};
use crate::error::{StorageError, WalError, WriteError};
use crate::manifest::{MANIFEST, Manifest, ParquetFileMeta, sync_file};
use crate::merge::{Input, MERGE_BATCH_ROWS, Merge, sliced};
use crate::parquet_io::{FileWriter, read_batches, read_file, write_file};
use crate::pins::{FilePins, Pinned};
use crate::schema::{FieldType, TIME, TableSchema};
use crate::table::{FrozenTable, TableBuffer};
use crate::wal::{Wal, WalEntry, WalRequest, encode_entry, run_writer};

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub written: usize,
    pub dropped: usize,
    /// The first reason a point was dropped, in 1.x's words.
    pub reason: Option<String>,
}

/// What a `DELETE`, `DROP SERIES` or `DROP MEASUREMENT` removes.
#[derive(Debug, Clone)]
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

/// A measurement's data in one shard as a reader sees it at one moment.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub schema: TableSchema,
    /// Live Parquet files, oldest generation first.
    pub files: Vec<ParquetFileMeta>,
    /// Deletes that still hide rows of older files.
    pub tombstones: Vec<Arc<Tombstone>>,
    /// Buffered rows not yet in Parquet, oldest first; each batch sorted by series and time
    /// with its duplicates merged (but batches may overlap each other).
    pub buffered: Vec<RecordBatch>,
    /// The files stay on disk while this (or a clone) lives, even if compaction or a delete
    /// replaces them meanwhile ([`crate::pins`]).
    pub pinned: Arc<Pinned>,
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

/// Per shard and measurement: the schema, and the shapes of points already checked against it.
type Schemas = HashMap<u64, HashMap<String, Known>>;

/// A measurement's schema in one shard, and the shapes (tag keys; field keys and types) of
/// points that passed [`validate`]. Schemas only grow and every addition had to agree with what
/// was there, so a shape that passed once passes again: such a point skips the checks.
#[derive(Default)]
struct Known {
    schema: TableSchema,
    shapes: HashMap<u64, Vec<Shape>>,
    /// How many shapes are kept (bounded, for measurements whose points vary a lot).
    count: usize,
}

const MAX_SHAPES: usize = 256;

#[derive(PartialEq)]
struct Shape {
    tags: Vec<String>,
    fields: Vec<(String, FieldType)>,
}

impl Shape {
    fn of(p: &Point<'_>) -> Self {
        Self {
            tags: p.tags.iter().map(|(k, _)| k.to_string()).collect(),
            fields: p
                .fields
                .iter()
                .map(|(k, v)| (k.to_string(), FieldType::of(v)))
                .collect(),
        }
    }

    fn matches(&self, p: &Point<'_>) -> bool {
        self.tags.len() == p.tags.len()
            && self.fields.len() == p.fields.len()
            && self.tags.iter().zip(&p.tags).all(|(a, (b, _))| a == b)
            && self
                .fields
                .iter()
                .zip(&p.fields)
                .all(|((a, t), (b, v))| a == b && *t == FieldType::of(v))
    }

    fn hash(p: &Point<'_>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (k, _) in &p.tags {
            k.hash(&mut h);
        }
        0xffu8.hash(&mut h);
        for (k, v) in &p.fields {
            k.hash(&mut h);
            FieldType::of(v).hash(&mut h);
        }
        h.finish()
    }
}

/// What every file a compaction writes shares.
struct Output<'a> {
    schema: &'a SchemaRef,
    key: &'a [String],
    generation: u64,
}

/// The bounds of several files together: per field the smallest, since each series' last value
/// is in one of them. `None` when any file's are unknown.
fn min_bounds(files: &[ParquetFileMeta]) -> Option<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for f in files {
        for (field, b) in f.last_value_bounds.as_ref()? {
            let slot = out.entry(field.clone()).or_insert(*b);
            *slot = (*slot).min(*b);
        }
    }
    Some(out)
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
            let buffered = last_value_bounds(b)?;
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

/// Checks a point against its shard's schema and records new columns. `Err` is 1.x's reason.
fn validate(schemas: &mut Schemas, shard: u64, p: &mut Point<'_>) -> Result<(), String> {
    let m = p.measurement.as_ref();
    if p.tags.iter().any(|(k, _)| k == TIME) {
        return Err(format!(
            "invalid tag key: input tag \"{TIME}\" on measurement \"{m}\" is invalid"
        ));
    }
    if p.fields.iter().any(|(k, _)| k == TIME) {
        p.fields.retain(|(k, _)| k != TIME);
        if p.fields.is_empty() {
            return Err(format!(
                "invalid field name: input field \"{TIME}\" on measurement \"{m}\" is invalid"
            ));
        }
    }
    let shard_schemas = schemas.entry(shard).or_default();
    if !shard_schemas.contains_key(m) {
        shard_schemas.insert(m.to_string(), Known::default());
    }
    let Some(known) = shard_schemas.get_mut(m) else {
        return Err(format!(
            "measurement \"{m}\" vanished from its shard's schema"
        ));
    };
    let shape = Shape::hash(p);
    if known
        .shapes
        .get(&shape)
        .is_some_and(|seen| seen.iter().any(|s| s.matches(p)))
    {
        return Ok(());
    }
    let table = &mut known.schema;
    for (k, v) in &p.fields {
        let t = FieldType::of(v);
        if let Some(existing) = table.fields.get(k.as_ref()) {
            if *existing != t {
                return Err(format!(
                    "field type conflict: input field \"{k}\" on measurement \"{m}\" is type {}, already exists as type {}",
                    t.name(),
                    existing.name()
                ));
            }
        }
        if table.tags.contains(k.as_ref()) || p.tags.iter().any(|(tk, _)| tk == k) {
            return Err(format!(
                "field name conflict: input field \"{k}\" on measurement \"{m}\" is also a tag key"
            ));
        }
    }
    for (k, _) in &p.tags {
        if table.fields.contains_key(k.as_ref()) {
            return Err(format!(
                "tag key conflict: input tag \"{k}\" on measurement \"{m}\" is also a field"
            ));
        }
    }
    for (k, _) in &p.tags {
        if !table.tags.contains(k.as_ref()) {
            table.tags.insert(k.to_string());
        }
    }
    for (k, v) in &p.fields {
        if !table.fields.contains_key(k.as_ref()) {
            table.fields.insert(k.to_string(), FieldType::of(v));
        }
    }
    if known.count < MAX_SHAPES {
        known.shapes.entry(shape).or_default().push(Shape::of(p));
        known.count += 1;
    }
    Ok(())
}

impl Ingester {
    /// Opens the data directory: loads manifests, removes files no manifest names, replays the
    /// WAL into the buffer and starts the WAL writer.
    pub async fn open(
        cfg: IngesterConfig,
        meta: Arc<MetaService>,
        node_id: u64,
    ) -> Result<Arc<Self>, StorageError> {
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

    fn replay(&self, entries: Vec<Vec<u8>>) {
        let catalog = self.meta.catalog();
        let live = live_shards(&catalog, self.node_id);
        let (mut points, mut skipped) = (0usize, 0usize);
        for bytes in &entries {
            // `Wal::open` kept only entries that decode.
            let entry = match WalEntry::decode(bytes) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "WAL entry does not decode; skipped");
                    continue;
                }
            };
            for sw in entry.shards {
                let Some((db, rp)) = live.get(&sw.shard_id) else {
                    skipped += 1;
                    continue;
                };
                let mut accepted = Vec::with_capacity(sw.points.len());
                {
                    let mut schemas = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
                    for mut p in sw.points {
                        match validate(&mut schemas, sw.shard_id, &mut p) {
                            Ok(()) => accepted.push((sw.shard_id, p)),
                            Err(why) => {
                                tracing::warn!(shard = sw.shard_id, %why, "WAL point no longer fits its shard; skipped")
                            }
                        }
                    }
                }
                points += accepted.len();
                self.apply(db, rp, accepted);
            }
        }
        if !entries.is_empty() {
            tracing::info!(
                entries = entries.len(),
                points,
                skipped_shards = skipped,
                "WAL replayed"
            );
        }
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.cfg.data_dir
    }

    /// Bytes buffered and not yet persisted.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer_bytes.load(Ordering::Relaxed)
    }

    /// Writes points already routed to shards of `db`.`rp` (`rp` is the policy's name) that
    /// this node owns: the write coordinator (crate `coordinator`) resolved the database,
    /// dropped points beyond retention, created the shard groups and placed each series.
    /// Points that do not fit their shard's schema are dropped with 1.x's reason; the others
    /// are durable in the WAL, as one entry, before this returns.
    pub async fn write_shards(
        &self,
        db: &str,
        rp: &str,
        shards: Vec<(u64, Vec<Point<'_>>)>,
    ) -> Result<WriteOutcome, WriteError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(WriteError::ShuttingDown);
        }
        let used = self.buffer_bytes.load(Ordering::Relaxed);
        if used >= self.cfg.cache_max_memory_size {
            return Err(WriteError::BufferFull {
                used,
                limit: self.cfg.cache_max_memory_size,
            });
        }
        let mut outcome = WriteOutcome::default();
        let drop_point = |outcome: &mut WriteOutcome, why: String| {
            outcome.dropped += 1;
            outcome.reason.get_or_insert(why);
        };
        let total = shards.iter().map(|(_, p)| p.len()).sum();
        let mut routed = Vec::with_capacity(total);
        for (shard, points) in shards {
            routed.extend(points.into_iter().map(|p| (shard, p)));
        }

        let _gate = self.gate.read().await;
        let mut accepted = Vec::with_capacity(total);
        {
            let mut schemas = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
            for (shard, mut p) in routed {
                // A point shaped like the one accepted just before it, for the same shard,
                // passes too (schemas only grow); most bodies are one shape throughout.
                let known = accepted
                    .last()
                    .is_some_and(|(s, q): &(u64, Point<'_>)| *s == shard && q.same_shape(&p));
                if known {
                    accepted.push((shard, p));
                    continue;
                }
                match validate(&mut schemas, shard, &mut p) {
                    Ok(()) => accepted.push((shard, p)),
                    Err(why) => drop_point(&mut outcome, why),
                }
            }
        }
        if accepted.is_empty() {
            return Ok(outcome);
        }

        let mut by_shard: Vec<(u64, Vec<&Point<'_>>)> = Vec::new();
        for (shard, p) in &accepted {
            match by_shard.iter_mut().find(|(s, _)| s == shard) {
                Some((_, points)) => points.push(p),
                None => by_shard.push((*shard, vec![p])),
            }
        }
        let payload = encode_entry(db, rp, &by_shard);
        drop(by_shard);
        let (done, wait) = oneshot::channel();
        self.send_wal(WalRequest::Append { payload, done })?;
        wait.await.map_err(|_| WalError::Stopped)??;

        outcome.written = accepted.len();
        self.apply(db, rp, accepted);
        let _ = self.oldest_buffered.compare_exchange(
            0,
            now_nanos().max(1),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        Ok(outcome)
    }

    fn send_wal(&self, req: WalRequest) -> Result<(), WalError> {
        let tx = self.wal_tx.lock().unwrap_or_else(|e| e.into_inner());
        tx.as_ref()
            .ok_or(WalError::Stopped)?
            .send(req)
            .map_err(|_| WalError::Stopped)
    }

    /// Adds validated points to the active buffer.
    fn apply(&self, db: &str, rp: &str, points: Vec<(u64, Point<'_>)>) {
        let mut added = 0;
        let now = now_nanos();
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        for (shard, p) in points {
            let sd = state
                .entry(shard)
                .or_insert_with(|| ShardData::new(Manifest::new(shard, db, rp)));
            sd.last_write = now;
            let table = match sd.active.get_mut(p.measurement.as_ref()) {
                Some(t) => t,
                None => sd.active.entry(p.measurement.to_string()).or_default(),
            };
            added += table.push(&p);
        }
        self.buffer_bytes.fetch_add(added, Ordering::Relaxed);
    }

    /// Freezes the active buffer (rotating the WAL with it) and writes every frozen buffer to
    /// Parquet; WAL segments are deleted once the files that hold their data are live.
    pub async fn persist(&self) -> Result<(), StorageError> {
        let mut queue = self.maintenance.lock().await;
        let t0 = std::time::Instant::now();
        self.freeze(&mut queue).await?;
        let froze = t0.elapsed();
        while let Some(frozen) = queue.front_mut() {
            let shards: Vec<u64> = frozen.shards.keys().copied().collect();
            for shard in shards {
                if let Some(tables) = frozen.shards.get(&shard).cloned() {
                    self.persist_shard(shard, &tables).await?;
                    frozen.shards.remove(&shard);
                }
            }
            let (done, wait) = oneshot::channel();
            self.send_wal(WalRequest::Release {
                ids: frozen.segments.clone(),
                done,
            })?;
            wait.await.map_err(|_| WalError::Stopped)??;
            self.buffer_bytes.fetch_sub(
                frozen.bytes.min(self.buffer_bytes.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
            tracing::info!(
                bytes = frozen.bytes,
                freeze_ms = froze.as_millis() as u64,
                took_ms = t0.elapsed().as_millis() as u64,
                "write buffer persisted"
            );
            queue.pop_front();
        }
        Ok(())
    }

    async fn freeze(&self, queue: &mut VecDeque<Frozen>) -> Result<(), StorageError> {
        // Exclusive gate: no write is between its WAL append and its buffer apply, so the
        // segment rotated here holds exactly the data frozen here.
        let _gate = self.gate.write().await;
        if self.read_state(|s| s.values().all(|sd| sd.active.is_empty())) {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.send_wal(WalRequest::Rotate { done })?;
        let segments = wait.await.map_err(|_| WalError::Stopped)??;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut shards = BTreeMap::new();
        let mut bytes = 0;
        for (id, sd) in state.iter_mut() {
            if sd.active.is_empty() {
                continue;
            }
            bytes += sd.active_bytes();
            // Moved, not sorted: persistence (or the first reader) sorts them once the gate
            // is open again.
            let tables: FrozenTables = std::mem::take(&mut sd.active)
                .into_iter()
                .map(|(m, t)| (m, Arc::new(FrozenTable::new(t))))
                .collect();
            let tables = Arc::new(tables);
            sd.frozen.push(tables.clone());
            shards.insert(*id, tables);
        }
        self.oldest_buffered.store(0, Ordering::Release);
        queue.push_back(Frozen {
            segments,
            shards,
            bytes,
        });
        Ok(())
    }

    async fn persist_shard(
        &self,
        shard: u64,
        tables: &Arc<FrozenTables>,
    ) -> Result<(), StorageError> {
        let Some(mut manifest) = self.read_state(|s| s.get(&shard).map(|sd| sd.manifest.clone()))
        else {
            return Ok(()); // the shard was dropped meanwhile
        };
        for (measurement, frozen) in tables.iter() {
            // Sorted off the async workers: a buffer of tens of megabytes takes a while.
            let frozen = Arc::clone(frozen);
            let sorted = tokio::task::spawn_blocking(move || frozen.sorted()).await??;
            if sorted.num_rows() == 0 {
                continue;
            }
            let meta = self
                .write_parquet(&mut manifest, measurement, &sorted, None)
                .await?;
            let table = manifest.tables.entry(measurement.clone()).or_default();
            table
                .schema
                .merge(&TableSchema::from_arrow(&sorted.schema()));
            table.files.push(meta);
        }
        manifest.store(&self.cfg.data_dir)?;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some(sd) = state.get_mut(&shard) {
            sd.manifest = manifest;
            sd.frozen.retain(|f| !Arc::ptr_eq(f, tables));
        }
        Ok(())
    }

    async fn write_parquet(
        &self,
        manifest: &mut Manifest,
        measurement: &str,
        batch: &RecordBatch,
        generation: Option<u64>,
    ) -> Result<ParquetFileMeta, StorageError> {
        let id = manifest.allocate_file_id();
        let path = manifest.file_path(id);
        let size_bytes = write_file(&self.store, &path, batch, measurement).await?;
        sync_file(&self.cfg.data_dir.join(&path))?;
        let (min_time, max_time) = time_range(batch)?;
        Ok(ParquetFileMeta {
            id,
            generation: generation.unwrap_or(id),
            path,
            rows: batch.num_rows() as u64,
            min_time,
            max_time,
            size_bytes,
            sort_key: sort_key_names(batch),
            last_value_bounds: Some(last_value_bounds(batch)?),
        })
    }

    /// Opens compaction's inputs as one merge. The output's tag order is that of the largest
    /// input that records one (compaction outputs and persisted files do), else the best order
    /// for the oldest input; then any tag no input was sorted by. Inputs sorted by that order
    /// stream; the others are sorted alone, one at a time.
    async fn merge_inputs(
        &self,
        inputs: &[ParquetFileMeta],
        tombstones: &[Arc<Tombstone>],
        measurement: &str,
        schema: &SchemaRef,
    ) -> Result<(Vec<String>, Merge), StorageError> {
        let mut key = inputs
            .iter()
            .filter(|f| !f.sort_key.is_empty())
            .max_by_key(|f| f.rows)
            .map(|f| f.sort_key.clone())
            .unwrap_or_default();
        let mut sorted_in_memory: Vec<Option<RecordBatch>> = vec![None; inputs.len()];
        if key.is_empty() {
            if let Some(f) = inputs.first() {
                let all = self.read_whole(f, tombstones, measurement, schema).await?;
                key = sort_key_names(&all);
                sorted_in_memory[0] = Some(all);
            }
        }
        for i in columns_of_kind(schema, "tag") {
            let name = schema.field(i).name();
            if !key.contains(name) {
                key.push(name.clone());
            }
        }
        let key_cols = key
            .iter()
            .map(|k| schema.index_of(k))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sources: Vec<Input> = Vec::with_capacity(inputs.len());
        for (f, held) in inputs.iter().zip(sorted_in_memory) {
            let follows_key = !f.sort_key.is_empty()
                && key
                    .iter()
                    .filter(|k| f.sort_key.contains(k))
                    .eq(f.sort_key.iter());
            if follows_key {
                let reader = read_batches(&self.store, &f.path, MERGE_BATCH_ROWS).await?;
                let (tombstones, m, schema, generation) = (
                    tombstones.to_vec(),
                    measurement.to_string(),
                    schema.clone(),
                    f.generation,
                );
                sources.push(Box::new(reader.map(move |b| {
                    align(&apply_all(&tombstones, &m, b?, generation)?, &schema)
                })));
            } else {
                let all = match held {
                    Some(all) => all,
                    None => self.read_whole(f, tombstones, measurement, schema).await?,
                };
                sources.push(sliced(sort_dedup_by(&all, key_cols.clone())?));
            }
        }
        let merge = Merge::new(schema.clone(), &key, sources)?;
        Ok((key, merge))
    }

    /// Writes the merge's output as files of at most `max_rows_per_file` rows. Returns them
    /// (durable, not yet in the manifest) and the number of rows.
    async fn write_outputs(
        &self,
        manifest: &mut Manifest,
        measurement: &str,
        output: &Output<'_>,
        merge: Merge,
    ) -> Result<(Vec<ParquetFileMeta>, usize), StorageError> {
        let step = self.cfg.max_rows_per_file.max(1);
        let mut outputs = Vec::new();
        // Each output's last-value bounds are taken from the rows it gets, deletes applied.
        let mut open: Option<(FileWriter, ParquetFileMeta, LastValueBounds)> = None;
        let mut rows = 0usize;
        for batch in merge {
            let mut batch = batch?;
            while batch.num_rows() > 0 {
                let (w, meta, bounds) = match open.as_mut() {
                    Some(o) => o,
                    None => {
                        let id = manifest.allocate_file_id();
                        let path = manifest.file_path(id);
                        let w = FileWriter::create(
                            &self.store,
                            &path,
                            output.schema.clone(),
                            measurement,
                        )?;
                        let meta = ParquetFileMeta {
                            id,
                            generation: output.generation,
                            path,
                            rows: 0,
                            min_time: i64::MAX,
                            max_time: i64::MIN,
                            size_bytes: 0,
                            sort_key: output.key.to_vec(),
                            last_value_bounds: None,
                        };
                        open.insert((w, meta, LastValueBounds::default()))
                    }
                };
                let take = (step - w.rows()).min(batch.num_rows());
                let part = batch.slice(0, take);
                let (lo, hi) = time_range(&part)?;
                meta.min_time = meta.min_time.min(lo);
                meta.max_time = meta.max_time.max(hi);
                bounds.push(&part)?;
                w.write(&part).await?;
                rows += take;
                batch = batch.slice(take, batch.num_rows() - take);
                if w.rows() >= step {
                    if let Some((w, meta, bounds)) = open.take() {
                        outputs.push(self.finish_file(w, meta, bounds).await?);
                    }
                }
            }
        }
        if let Some((w, meta, bounds)) = open.take() {
            outputs.push(self.finish_file(w, meta, bounds).await?);
        }
        Ok((outputs, rows))
    }

    /// Closes a compaction output and makes it durable; fills in its row count, size and
    /// last-value bounds.
    async fn finish_file(
        &self,
        w: FileWriter,
        mut meta: ParquetFileMeta,
        bounds: LastValueBounds,
    ) -> Result<ParquetFileMeta, StorageError> {
        meta.rows = w.rows() as u64;
        meta.last_value_bounds = Some(bounds.finish());
        meta.size_bytes = w.close().await?;
        sync_file(&self.cfg.data_dir.join(&meta.path))?;
        Ok(meta)
    }

    /// One file as a single batch in `schema`, with the deletes that apply to it applied.
    async fn read_whole(
        &self,
        f: &ParquetFileMeta,
        tombstones: &[Arc<Tombstone>],
        measurement: &str,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, StorageError> {
        let mut batches = Vec::new();
        for b in read_batches(&self.store, &f.path, MERGE_BATCH_ROWS).await? {
            batches.push(apply_all(tombstones, measurement, b?, f.generation)?);
        }
        Ok(concat_aligned(schema, &batches)?)
    }

    fn read_state<T>(&self, f: impl FnOnce(&BTreeMap<u64, ShardData>) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Compacts every measurement of a shard that has `compact_max_files` files, or more than
    /// one file once the shard has taken no write or delete for
    /// `compact_full_write_cold_duration` (`now`: wall clock, ns). Returns the number of
    /// measurements compacted.
    ///
    /// Coldness is the time since the last write, as in InfluxDB, not the time since the
    /// shard's range ended: a backfill of old data would otherwise have its shard rewritten
    /// whole after every persist, while the backfill is still running.
    pub async fn compact(&self, now: i64) -> Result<usize, StorageError> {
        let _queue = self.maintenance.lock().await;
        let cold_after = self
            .cfg
            .compact_full_write_cold_duration
            .as_nanos()
            .min(i64::MAX as u128) as i64;
        let candidates: Vec<(u64, String)> = self.read_state(|state| {
            let mut out = Vec::new();
            for (id, sd) in state {
                let cold = sd.last_write.saturating_add(cold_after) <= now;
                for (m, t) in &sd.manifest.tables {
                    let deletes = sd.manifest.tombstones.iter().any(|ts| &ts.measurement == m);
                    // A table never needs fewer files than its rows fill; compacting it again
                    // would only rewrite the same files.
                    let rows: u64 = t.files.iter().map(|f| f.rows).sum();
                    let needed = rows
                        .div_ceil(self.cfg.max_rows_per_file.max(1) as u64)
                        .max(1) as usize;
                    let too_many = t.files.len() > needed;
                    let hot_limit = t.files.len() >= self.cfg.compact_max_files.max(2);
                    if deletes || (too_many && (hot_limit || cold)) {
                        out.push((*id, m.clone()));
                    }
                }
            }
            out
        });
        for (shard, measurement) in &candidates {
            self.compact_table(*shard, measurement).await?;
        }
        Ok(candidates.len())
    }

    async fn compact_table(&self, shard: u64, measurement: &str) -> Result<(), StorageError> {
        let Some(mut manifest) = self.read_state(|s| s.get(&shard).map(|sd| sd.manifest.clone()))
        else {
            return Ok(());
        };
        let Some(table) = manifest.tables.get(measurement).cloned() else {
            return Ok(());
        };
        let mut inputs = table.files.clone();
        inputs.sort_by_key(|f| (f.generation, f.id));
        let tombstones: Vec<Arc<Tombstone>> = manifest
            .tombstones
            .iter()
            .filter(|t| t.measurement == measurement)
            .cloned()
            .collect();
        let schema = table.schema.arrow();
        let (key, merge) = self
            .merge_inputs(&inputs, &tombstones, measurement, &schema)
            .await?;

        // Every file of the table is an input, so the output may take the generation of the
        // deletes it applied; they then no longer apply to anything and are dropped.
        let generation = inputs
            .iter()
            .map(|f| f.generation)
            .chain(tombstones.iter().map(|t| t.generation))
            .max()
            .unwrap_or(0);
        let output = Output {
            schema: &schema,
            key: &key,
            generation,
        };
        let (outputs, rows) = self
            .write_outputs(&mut manifest, measurement, &output, merge)
            .await?;
        let input_ids: HashSet<u64> = inputs.iter().map(|f| f.id).collect();
        if let Some(t) = manifest.tables.get_mut(measurement) {
            t.files.retain(|f| !input_ids.contains(&f.id));
            t.files.extend(outputs.iter().cloned());
            t.files.sort_by_key(|f| (f.generation, f.id));
        }
        manifest.tombstones.retain(|t| t.measurement != measurement);
        manifest.store(&self.cfg.data_dir)?;
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(shard)
            .and_modify(|sd| sd.manifest = manifest);
        // Files a snapshot still lists go when its readers are done.
        self.pins
            .retire(inputs.iter().map(|f| f.path.clone()).collect())?;
        tracing::info!(
            shard,
            measurement,
            inputs = inputs.len(),
            outputs = outputs.len(),
            rows,
            "compacted"
        );
        Ok(())
    }

    /// Deletes data: buffered writes are persisted first, then, per local shard in scope, a
    /// measurement deleted whole loses its files at once and any other delete is recorded as a
    /// tombstone that hides the rows until compaction removes them.
    pub async fn delete(&self, scope: &DeleteScope) -> Result<(), StorageError> {
        self.persist().await?;
        let _queue = self.maintenance.lock().await;
        let catalog = self.meta.catalog();
        let mut in_scope = Vec::new();
        for (db, rp, g, s) in catalog.shards_owned_by(self.node_id) {
            let rp_ok = scope
                .retention_policy
                .as_deref()
                .is_none_or(|r| r == rp.name);
            if db.name == scope.database && rp_ok && g.overlaps(scope.min_time, scope.max_time) {
                let whole_range =
                    scope.min_time <= g.start && scope.max_time >= g.end.saturating_sub(1);
                in_scope.push((s.id, whole_range));
            }
        }
        for (shard, whole_range) in in_scope {
            let Some(mut manifest) =
                self.read_state(|s| s.get(&shard).map(|sd| sd.manifest.clone()))
            else {
                continue;
            };
            let names: Vec<String> = manifest
                .tables
                .keys()
                .filter(|m| scope.measurements.as_ref().is_none_or(|ms| ms.contains(m)))
                .cloned()
                .collect();
            let mut doomed = Vec::new();
            for m in names {
                if whole_range && scope.predicate.is_none() {
                    if let Some(t) = manifest.tables.remove(&m) {
                        doomed.extend(t.files.into_iter().map(|f| f.path));
                    }
                    manifest.tombstones.retain(|t| t.measurement != m);
                    self.forget_schema_unless_buffered(shard, &m);
                } else {
                    manifest.tombstones.push(Arc::new(Tombstone {
                        measurement: m.clone(),
                        min_time: scope.min_time,
                        max_time: scope.max_time,
                        predicate: scope.predicate.clone(),
                        generation: manifest.next_file_id,
                    }));
                    // A table with nothing left goes at once, so that it is no longer listed.
                    if !self.has_rows_left(&manifest, shard, &m).await? {
                        if let Some(t) = manifest.tables.remove(&m) {
                            doomed.extend(t.files.into_iter().map(|f| f.path));
                        }
                        manifest.tombstones.retain(|t| t.measurement != m);
                        self.forget_schema_unless_buffered(shard, &m);
                    }
                }
            }
            // The tombstone's generation must stay above every existing file's.
            manifest.next_file_id += 1;
            manifest.store(&self.cfg.data_dir)?;
            self.state
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(shard)
                .and_modify(|sd| {
                    sd.manifest = manifest;
                    sd.last_write = now_nanos();
                });
            self.pins.retire(doomed)?;
        }
        Ok(())
    }

    /// A measurement with no data left in a shard forgets its field types there (1.x: after a
    /// drop, the measurement may come back with other types).
    fn forget_schema_unless_buffered(&self, shard: u64, measurement: &str) {
        let buffered =
            self.read_state(|s| s.get(&shard).is_some_and(|sd| sd.is_buffered(measurement)));
        if !buffered {
            if let Some(sch) = self
                .schemas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&shard)
            {
                sch.remove(measurement);
            }
        }
    }

    /// Whether any row of `measurement` survives the manifest's tombstones (buffered rows
    /// always count).
    async fn has_rows_left(
        &self,
        manifest: &Manifest,
        shard: u64,
        measurement: &str,
    ) -> Result<bool, StorageError> {
        let buffered =
            self.read_state(|s| s.get(&shard).is_some_and(|sd| sd.is_buffered(measurement)));
        if buffered {
            return Ok(true);
        }
        let Some(table) = manifest.tables.get(measurement) else {
            return Ok(false);
        };
        for f in &table.files {
            for b in read_file(&self.store, &f.path).await? {
                if apply_all(&manifest.tombstones, measurement, b, f.generation)?.num_rows() > 0 {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Removes the buffers and files of local shards that the catalog no longer lists (dropped
    /// databases, expired shard groups).
    pub async fn drop_removed_shards(&self) -> Result<(), StorageError> {
        let live = live_shards(&self.meta.catalog(), self.node_id);
        let gone: Vec<u64> = self.read_state(|s| {
            s.keys()
                .filter(|id| !live.contains_key(id))
                .copied()
                .collect()
        });
        if gone.is_empty() {
            return self.remove_dropped_dirs();
        }
        let _queue = self.maintenance.lock().await;
        let _gate = self.gate.write().await;
        for id in gone {
            let removed = self
                .state
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            self.schemas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            if let Some(sd) = &removed {
                let bytes = sd.active_bytes();
                self.buffer_bytes.fetch_sub(
                    bytes.min(self.buffer_bytes.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
            }
            // The manifest goes first: from then on, whatever is left of the shard is named by
            // no manifest and is removed when the data directory is opened again. Files that
            // a query's snapshot still lists stay until it is done, as for compaction.
            let dir = Manifest::shard_dir(&self.cfg.data_dir, id);
            let manifest = dir.join(MANIFEST);
            match std::fs::remove_file(&manifest) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&manifest, e)),
            }
            if let Some(sd) = &removed {
                self.pins
                    .retire(sd.manifest.live_paths().map(str::to_string).collect())?;
            }
            self.dropped_dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(id);
            tracing::info!(shard = id, "shard removed");
        }
        self.remove_dropped_dirs()
    }

    /// Removes the directories of dropped shards whose files no reader holds any longer.
    fn remove_dropped_dirs(&self) -> Result<(), StorageError> {
        let mut dirs = self.dropped_dirs.lock().unwrap_or_else(|e| e.into_inner());
        let mut result = Ok(());
        dirs.retain(|id| {
            if result.is_err() || self.pins.waiting_under(&Manifest::shard_prefix(*id)) {
                return true;
            }
            let dir = Manifest::shard_dir(&self.cfg.data_dir, *id);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => false,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    result = Err(StorageError::io(&dir, e));
                    true
                }
            }
        });
        result
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

    /// The measurements with data (persisted or buffered) in any of `shards`.
    pub fn measurements(&self, shards: &[u64]) -> BTreeSet<String> {
        self.read_state(|state| {
            let mut out = BTreeSet::new();
            for id in shards {
                if let Some(sd) = state.get(id) {
                    out.extend(sd.manifest.tables.keys().cloned());
                    out.extend(sd.active.keys().cloned());
                    for f in &sd.frozen {
                        out.extend(f.keys().cloned());
                    }
                }
            }
            out
        })
    }

    /// Everything a reader needs to scan one measurement of one shard.
    pub fn table_snapshot(
        &self,
        shard: u64,
        measurement: &str,
    ) -> Result<Option<TableSnapshot>, StorageError> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(sd) = state.get(&shard) else {
            return Ok(None);
        };
        let Some(schema) = sd.table_schema(measurement) else {
            return Ok(None);
        };
        let mut files = sd
            .manifest
            .tables
            .get(measurement)
            .map(|t| t.files.clone())
            .unwrap_or_default();
        files.sort_by_key(|f| (f.generation, f.id));
        let tombstones: Vec<Arc<Tombstone>> = sd
            .manifest
            .tombstones
            .iter()
            .filter(|t| t.measurement == measurement)
            .cloned()
            .collect();
        let frozen: Vec<Arc<FrozenTable>> = sd
            .frozen
            .iter()
            .filter_map(|f| f.get(measurement).cloned())
            .collect();
        let active = sd
            .active
            .get(measurement)
            .map(TableBuffer::snapshot)
            .transpose()?;
        // Pinned under the state lock that compaction and deletes take to retire files.
        let pinned = Arc::new(
            self.pins
                .pin(files.iter().map(|f| f.path.clone()).collect()),
        );
        drop(state);
        // Frozen buffers change no more: sorted (if persistence has not yet) without holding
        // up writes.
        let mut buffered = frozen
            .iter()
            .map(|f| f.sorted())
            .collect::<Result<Vec<_>, _>>()?;
        buffered.extend(active);
        Ok(Some(TableSnapshot {
            schema,
            files,
            tombstones,
            buffered,
            pinned,
        }))
    }

    /// The columns of a measurement in a shard (files and buffers), without reading any rows.
    pub fn table_schema(&self, shard: u64, measurement: &str) -> Option<TableSchema> {
        self.read_state(|s| s.get(&shard).and_then(|sd| sd.table_schema(measurement)))
    }

    /// Reads a measurement of a shard completely, deduplicated and sorted by series and time.
    pub async fn read_table(
        &self,
        shard: u64,
        measurement: &str,
    ) -> Result<Option<RecordBatch>, StorageError> {
        let Some(snap) = self.table_snapshot(shard, measurement)? else {
            return Ok(None);
        };
        let mut batches = Vec::new();
        for f in &snap.files {
            for b in read_file(&self.store, &f.path).await? {
                batches.push(apply_all(&snap.tombstones, measurement, b, f.generation)?);
            }
        }
        batches.extend(snap.buffered);
        let schema = snap.schema.arrow();
        Ok(Some(sort_dedup(&concat_aligned(&schema, &batches)?)?))
    }

    /// Local shard ids, for tests and status.
    pub fn shard_ids(&self) -> Vec<u64> {
        self.read_state(|s| s.keys().copied().collect())
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
