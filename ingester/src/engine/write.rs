//! The write path of a data node: points already routed to its shards, validated, logged in
//! the WAL as one entry (fsynced before the answer), then buffered.

use super::*;

impl Ingester {
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
        self.write_shards_at(db, rp, shards, u64::MAX).await
    }

    /// [`Self::write_shards`] of points routed with the catalog at Raft index `index`: the
    /// points that deletes recorded after it (and applied here already) remove are left out,
    /// so that a write that was under way, or queued for this node, when the delete was
    /// recorded ends the same on every owner.
    pub async fn write_shards_at(
        &self,
        db: &str,
        rp: &str,
        mut shards: Vec<(u64, Vec<Point<'_>>)>,
        index: u64,
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
        let drop_point = |outcome: &mut WriteOutcome, shard: u64, why: String| {
            outcome.dropped += 1;
            outcome.reason.get_or_insert(why);
            match outcome.dropped_in.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, n)) => *n += 1,
                None => outcome.dropped_in.push((shard, 1)),
            }
        };
        let _gate = self.gate.read().await;
        self.drop_deleted(db, rp, &mut shards, index);
        let total = shards.iter().map(|(_, p)| p.len()).sum();
        let mut routed = Vec::with_capacity(total);
        for (shard, points) in shards {
            routed.extend(points.into_iter().map(|p| (shard, p)));
        }

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
                    Err(why) => drop_point(&mut outcome, shard, why),
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

    /// Removes from `shards` the points of a write routed at catalog `index` that recorded
    /// deletes after `index`, applied to their shard here already, remove. Called with the
    /// gate held: a delete marks its shards before it persists the buffer (which waits for
    /// the gate), so a write either lands in what the delete's tombstone hides or sees the mark.
    fn drop_deleted(&self, db: &str, rp: &str, shards: &mut [(u64, Vec<Point<'_>>)], index: u64) {
        if index == u64::MAX {
            return;
        }
        let cat = self.meta.catalog();
        for (shard, points) in shards.iter_mut() {
            // Those the shard applied (kept a week), and one being applied (still in the
            // catalog: this node has not acknowledged it).
            let mut scopes: Vec<DeleteScope> = self.read_state(|s| {
                s.get(shard).map_or_else(Vec::new, |sd| {
                    sd.manifest
                        .recent_deletes
                        .iter()
                        .filter(|d| d.index > index)
                        .map(|d| d.scope.clone())
                        .collect()
                })
            });
            let mark = self.delete_mark(*shard);
            if mark > index && cat.last_delete > index {
                scopes.extend(
                    cat.deletes_between(db, index, mark)
                        .filter_map(|d| serde_json::from_str(&d.scope).ok()),
                );
            }
            if !scopes.is_empty() {
                points.retain(|p| !scopes.iter().any(|s| s.matches(rp, p)));
            }
        }
    }

    pub(super) fn send_wal(&self, req: WalRequest) -> Result<(), WalError> {
        let tx = self.wal_tx.lock().unwrap_or_else(|e| e.into_inner());
        tx.as_ref()
            .ok_or(WalError::Stopped)?
            .send(req)
            .map_err(|_| WalError::Stopped)
    }

    /// Adds validated points to the active buffer.
    pub(super) fn apply(&self, db: &str, rp: &str, points: Vec<(u64, Point<'_>)>) {
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
}
