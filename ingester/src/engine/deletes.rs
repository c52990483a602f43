//! Deletes (`DELETE`, `DROP SERIES`, `DROP MEASUREMENT`): whole measurements dropped at once,
//! anything else as tombstones that hide rows until compaction applies them.

use super::*;

/// How long a shard remembers a recorded delete it applied, for writes routed before it that
/// arrive late (hinted handoff's default `max-age`).
const RECENT_DELETES: i64 = 7 * 24 * 3_600_000_000_000;

impl Ingester {
    /// Deletes data: buffered writes are persisted first, then, per local shard in scope, a
    /// measurement deleted whole loses its files at once and any other delete is recorded as a
    /// tombstone that hides the rows until compaction removes them.
    pub async fn delete(&self, scope: &DeleteScope) -> Result<(), StorageError> {
        self.delete_at(scope, None).await
    }

    /// [`Self::delete`] of a delete recorded in the catalog at Raft index `index`: applied
    /// once per shard (a shard that has applied it already is left alone), and from now on a
    /// write routed with an older catalog loses the points it removes.
    pub async fn delete_recorded(
        &self,
        scope: &DeleteScope,
        index: u64,
    ) -> Result<(), StorageError> {
        self.delete_at(scope, Some(index)).await
    }

    /// The Raft index of the last recorded delete applied (or being applied) to `shard`.
    pub fn delete_mark(&self, shard: u64) -> u64 {
        let mark = self
            .delete_marks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&shard)
            .copied()
            .unwrap_or(0);
        let stored = self.read_state(|s| s.get(&shard).map_or(0, |sd| sd.manifest.applied_delete));
        mark.max(stored)
    }

    async fn delete_at(&self, scope: &DeleteScope, index: Option<u64>) -> Result<(), StorageError> {
        let in_scope = {
            let catalog = self.meta.catalog();
            let mut in_scope = Vec::new();
            for (db, rp, g, s) in catalog.shards_owned_by(self.node_id) {
                let rp_ok = scope
                    .retention_policy
                    .as_deref()
                    .is_none_or(|r| r == rp.name);
                if db.name == scope.database && rp_ok && g.overlaps(scope.min_time, scope.max_time)
                {
                    let whole_range =
                        scope.min_time <= g.start && scope.max_time >= g.end.saturating_sub(1);
                    in_scope.push((s.id, whole_range));
                }
            }
            in_scope
        };
        // Marked before the buffer is persisted: a write buffered before the mark is in the
        // files the tombstone hides, one that comes after it is filtered on its way in.
        if let Some(index) = index {
            let mut marks = self.delete_marks.lock().unwrap_or_else(|e| e.into_inner());
            for (shard, _) in &in_scope {
                let m = marks.entry(*shard).or_default();
                *m = (*m).max(index);
            }
        }
        self.persist().await?;
        let _queue = self.maintenance.lock().await;
        for (shard, whole_range) in in_scope {
            let Some(mut manifest) =
                self.read_state(|s| s.get(&shard).map(|sd| sd.manifest.clone()))
            else {
                continue;
            };
            if let Some(index) = index {
                if manifest.applied_delete >= index {
                    continue;
                }
                manifest.applied_delete = index;
                let now = now_nanos();
                manifest
                    .recent_deletes
                    .retain(|d| d.applied_at > now.saturating_sub(RECENT_DELETES));
                manifest
                    .recent_deletes
                    .push(crate::manifest::AppliedDelete {
                        index,
                        scope: scope.clone(),
                        applied_at: now,
                    });
            }
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
    pub(super) fn forget_schema_unless_buffered(&self, shard: u64, measurement: &str) {
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
    pub(super) async fn has_rows_left(
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
}
