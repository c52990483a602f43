//! Replay of the WAL into the buffer when a data node opens: each entry's points re-validated
//! against the schemas, points of shards the catalog no longer lists skipped.

use super::*;

impl Ingester {
    pub(super) fn replay(&self, entries: Vec<Vec<u8>>) {
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
}
