//! Removal of shards the catalog no longer lists (expired groups, dropped databases): the
//! manifest first, the files through the pins, the directory once no reader holds them.

use super::*;

impl Ingester {
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
    pub(super) fn remove_dropped_dirs(&self) -> Result<(), StorageError> {
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
}
