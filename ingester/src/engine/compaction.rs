//! Compaction: a measurement's files merged into as few as `max-rows-per-file` allows, when
//! it has too many, tombstones, or a cold shard more than one.

use super::*;

impl Ingester {
    /// Compacts every measurement of a shard that has `compact_max_files` files, or more than
    /// one file once the shard has taken no write or delete for
    /// `compact_full_write_cold_duration` (`now`: wall clock, ns). Returns the number of
    /// measurements compacted.
    ///
    /// Coldness is the time since the last write, as in InfluxDB, not the time since the
    /// shard's range ended: a backfill of old data would otherwise have its shard rewritten
    /// whole after every persist, while the backfill is still running.
    pub async fn compact(&self, now: i64) -> Result<usize, StorageError> {
        let started = std::time::Instant::now();
        let out = self.compact_cold(now).await;
        crate::metrics::COMPACTION.record(started.elapsed());
        out
    }

    async fn compact_cold(&self, now: i64) -> Result<usize, StorageError> {
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

    pub(super) async fn compact_table(
        &self,
        shard: u64,
        measurement: &str,
    ) -> Result<(), StorageError> {
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
}
