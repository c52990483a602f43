//! The retention service: marks shard groups whose end plus their policy's duration has
//! passed as deleted in the catalog. Data nodes remove the shards the catalog no longer
//! lists (`Ingester::drop_removed_shards`, in their maintenance loop).

use std::sync::Arc;
use std::time::Duration;

use catalog::{MetaError, MetaService};
use tokio::sync::watch;

/// Marks every shard group past retention at `now` deleted; answers how many it marked.
pub async fn expire_shard_groups(meta: &MetaService, now: i64) -> Result<usize, MetaError> {
    let catalog = meta.catalog();
    let mut expired = 0;
    for db in catalog.databases.values() {
        for rp in db.retention_policies.values() {
            if rp.duration == 0 {
                continue;
            }
            for g in rp.live_shard_groups() {
                if g.end.saturating_add(rp.duration) < now {
                    tracing::info!(db = %db.name, rp = %rp.name, group = g.id, "shard group expired");
                    meta.execute(catalog::Command::DeleteShardGroup {
                        database: db.name.clone(),
                        rp: rp.name.clone(),
                        id: g.id,
                        deleted_at: now,
                    })
                    .await?;
                    expired += 1;
                }
            }
        }
    }
    Ok(expired)
}

/// Runs [`expire_shard_groups`] every `interval` until `stop` turns true.
pub async fn run(meta: Arc<MetaService>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        if let Err(e) = expire_shard_groups(&meta, ingester::now_nanos()).await {
            tracing::warn!(error = %e, "retention enforcement failed; will retry");
        }
    }
}
