//! Persistence: the buffer frozen with the WAL rotation, each frozen table sorted, merged and
//! written as Parquet, the manifest swapped, the WAL segments released; and the merged, sorted
//! writing of files that compaction shares.

use super::*;

/// What every file a compaction writes shares.
pub(super) struct Output<'a> {
    pub(super) schema: &'a SchemaRef,
    pub(super) key: &'a [String],
    pub(super) generation: u64,
}

/// The bounds of several files together: per field the smallest, since each series' last value
/// is in one of them. `None` when any file's are unknown.
pub(super) fn min_bounds(files: &[ParquetFileMeta]) -> Option<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for f in files {
        for (field, b) in f.last_value_bounds.as_ref()? {
            let slot = out.entry(field.clone()).or_insert(*b);
            *slot = (*slot).min(*b);
        }
    }
    Some(out)
}

impl Ingester {
    /// Freezes the active buffer (rotating the WAL with it) and writes every frozen buffer to
    /// Parquet; WAL segments are deleted once the files that hold their data are live.
    pub async fn persist(&self) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        let out = self.persist_all().await;
        crate::metrics::PERSIST.record(started.elapsed());
        out
    }

    async fn persist_all(&self) -> Result<(), StorageError> {
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

    pub(super) async fn freeze(&self, queue: &mut VecDeque<Frozen>) -> Result<(), StorageError> {
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

    pub(super) async fn persist_shard(
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
            let sorted = sorted.batch();
            if sorted.num_rows() == 0 {
                continue;
            }
            let meta = self
                .write_parquet(&mut manifest, measurement, sorted, None)
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

    pub(super) async fn write_parquet(
        &self,
        manifest: &mut Manifest,
        measurement: &str,
        batch: &RecordBatch,
        generation: Option<u64>,
    ) -> Result<ParquetFileMeta, StorageError> {
        let id = manifest.allocate_file_id();
        let path = manifest.file_path(id);
        let written = write_file(&self.store, &path, batch, measurement).await?;
        sync_file(&self.cfg.data_dir.join(&path))?;
        let (min_time, max_time) = time_range(batch)?;
        Ok(ParquetFileMeta {
            id,
            generation: generation.unwrap_or(id),
            path,
            rows: batch.num_rows() as u64,
            min_time,
            max_time,
            size_bytes: written.size_bytes,
            sort_key: sort_key_names(batch),
            last_value_bounds: Some(written.last_value_bounds),
        })
    }

    /// Opens compaction's inputs as one merge. The output's tag order is that of the largest
    /// input that records one (compaction outputs and persisted files do), else the best order
    /// for the oldest input; then any tag no input was sorted by. Inputs sorted by that order
    /// stream; the others are sorted alone, one at a time.
    pub(super) async fn merge_inputs(
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
    pub(super) async fn write_outputs(
        &self,
        manifest: &mut Manifest,
        measurement: &str,
        output: &Output<'_>,
        merge: Merge,
    ) -> Result<(Vec<ParquetFileMeta>, usize), StorageError> {
        let step = self.cfg.max_rows_per_file.max(1);
        let mut outputs = Vec::new();
        // Each output's last-value bounds are taken from the rows it gets, deletes applied
        // (by its writer).
        let mut open: Option<(FileWriter, ParquetFileMeta)> = None;
        let mut rows = 0usize;
        for batch in merge {
            let mut batch = batch?;
            while batch.num_rows() > 0 {
                let (w, meta) = match open.as_mut() {
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
                        open.insert((w, meta))
                    }
                };
                let take = (step - w.rows()).min(batch.num_rows());
                let part = batch.slice(0, take);
                let (lo, hi) = time_range(&part)?;
                meta.min_time = meta.min_time.min(lo);
                meta.max_time = meta.max_time.max(hi);
                w.write(&part).await?;
                rows += take;
                batch = batch.slice(take, batch.num_rows() - take);
                if w.rows() >= step {
                    if let Some((w, meta)) = open.take() {
                        outputs.push(self.finish_file(w, meta).await?);
                    }
                }
            }
        }
        if let Some((w, meta)) = open.take() {
            outputs.push(self.finish_file(w, meta).await?);
        }
        Ok((outputs, rows))
    }

    /// Closes a compaction output and makes it durable; fills in its row count, size and
    /// last-value bounds.
    pub(super) async fn finish_file(
        &self,
        w: FileWriter,
        mut meta: ParquetFileMeta,
    ) -> Result<ParquetFileMeta, StorageError> {
        meta.rows = w.rows() as u64;
        let written = w.close().await?;
        meta.size_bytes = written.size_bytes;
        meta.last_value_bounds = Some(written.last_value_bounds);
        sync_file(&self.cfg.data_dir.join(&meta.path))?;
        Ok(meta)
    }

    /// One file as a single batch in `schema`, with the deletes that apply to it applied.
    pub(super) async fn read_whole(
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
}
