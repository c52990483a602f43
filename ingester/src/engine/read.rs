//! What readers get: the measurements of shards, snapshots of a table (files pinned,
//! tombstones, buffered batches), schemas.

use super::*;

impl Ingester {
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
        buffered.extend(active.into_iter().flatten());
        Ok(Some(TableSnapshot {
            schema,
            files,
            tombstones,
            buffered,
            pinned,
        }))
    }

    /// What the rows of `measurement` in `shard` are made of once they are all in Parquet: its
    /// files and tombstones. Files never change and a tombstone's generation is unique in its
    /// shard, so an equal version holds the same rows. `None` while some of its rows are
    /// buffered (or the shard has nothing of it).
    pub fn table_version(&self, shard: u64, measurement: &str) -> Option<TableVersion> {
        self.read_state(|s| {
            let sd = s.get(&shard)?;
            if sd.is_buffered(measurement) {
                return None;
            }
            let mut files: Vec<u64> = sd
                .manifest
                .tables
                .get(measurement)?
                .files
                .iter()
                .map(|f| f.id)
                .collect();
            files.sort_unstable();
            let tombstones = sd
                .manifest
                .tombstones
                .iter()
                .filter(|t| t.measurement == measurement)
                .map(|t| t.generation)
                .collect();
            Some(TableVersion { files, tombstones })
        })
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
        batches.extend(snap.buffered.iter().map(|b| b.batch().clone()));
        let schema = snap.schema.arrow();
        Ok(Some(sort_dedup(&concat_aligned(&schema, &batches)?)?))
    }

    /// Local shard ids, for tests and status.
    pub fn shard_ids(&self) -> Vec<u64> {
        self.read_state(|s| s.keys().copied().collect())
    }

    /// When `shard` last took a write or a delete here (wall clock, ns; when it was loaded, for
    /// a shard read from disk since), if this node holds it.
    pub fn last_write(&self, shard: u64) -> Option<i64> {
        self.read_state(|s| s.get(&shard).map(|sd| sd.last_write))
    }
}
