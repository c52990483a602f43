//! The anti-entropy service: each node compares, every `check-interval`, the copies of the
//! cold shards it is the first owner of, and repairs what differs (see the crate's essay).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::MetaService;
use serde::Serialize;
use tokio::sync::watch;

use crate::digest::ShardDigest;
use crate::repair::{Nodes, RepairError, copy_series};

/// `[anti-entropy]`.
#[derive(Debug, Clone)]
pub struct EntropyConfig {
    pub enabled: bool,
    pub check_interval: Duration,
}

/// The last check of one shard, for `entropy show` and `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ShardCheck {
    pub shard: u64,
    pub database: String,
    pub retention_policy: String,
    pub owners: Vec<u64>,
    /// Points each owner that answered held before the repair.
    pub points: BTreeMap<u64, u64>,
    /// `consistent`, `repaired` or `failed` (`diverged` when only compared; `being written`
    /// when the periodic check found an owner still writing to it).
    pub state: String,
    /// Series copied onto an owner that lacked them (or held them differently).
    pub series_copied: u64,
    pub points_copied: u64,
    /// When the check ended (ns since the epoch).
    pub checked_at: i64,
    pub error: Option<String>,
}

/// Whether a comparison repairs what differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repair {
    No,
    Now,
    /// Unless an owner wrote to the shard within the service's `quiet` time.
    IfQuiet,
}

/// A shard as the service sees it in the catalog.
#[derive(Debug, Clone)]
struct ShardRef {
    id: u64,
    database: String,
    rp: String,
    owners: Vec<u64>,
}

#[derive(Debug)]
pub struct AntiEntropy {
    meta: Arc<MetaService>,
    nodes: Arc<dyn Nodes>,
    checks: Mutex<BTreeMap<u64, ShardCheck>>,
    /// A shard an owner wrote less than this long ago is left to the next periodic check.
    quiet: Duration,
}

impl AntiEntropy {
    /// The service; its periodic check leaves alone a shard an owner wrote within `quiet`.
    pub fn new(meta: Arc<MetaService>, nodes: Arc<dyn Nodes>, quiet: Duration) -> Arc<Self> {
        Arc::new(Self {
            meta,
            nodes,
            checks: Mutex::default(),
            quiet,
        })
    }

    /// The last check of each shard this node checked.
    pub fn checks(&self) -> Vec<ShardCheck> {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Shards with more than one owner whose group has ended at `now`, and whose first owner
    /// is this node (or every such shard, with `all`; `now` = `i64::MAX` for hot ones too).
    fn cold_shards(&self, now: i64, all: bool) -> Vec<ShardRef> {
        let here = self.nodes.here();
        let cat = self.meta.catalog();
        let mut out = Vec::new();
        for db in cat.databases.values() {
            for rp in db.retention_policies.values() {
                for g in rp.live_shard_groups() {
                    if g.end > now {
                        continue;
                    }
                    for s in &g.shards {
                        if s.owners.len() < 2 || !(all || s.owners.first().copied() == here) {
                            continue;
                        }
                        out.push(ShardRef {
                            id: s.id,
                            database: db.name.clone(),
                            rp: rp.name.clone(),
                            owners: s.owners.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    fn shard(&self, id: u64) -> Option<ShardRef> {
        let cat = self.meta.catalog();
        cat.find_shard(id).map(|p| ShardRef {
            id,
            database: p.database.name.clone(),
            rp: p.rp.name.clone(),
            owners: p.shard.owners.clone(),
        })
    }

    /// Checks and repairs one shard now (`entropy repair <shard>`), whether it is cold or not.
    pub async fn repair(&self, shard: u64) -> Result<ShardCheck, RepairError> {
        let s = self.shard(shard).ok_or(RepairError::UnknownShard(shard))?;
        Ok(self.check(&s).await)
    }

    /// Compares the owners' copies of every shard with several owners, hot or cold, and
    /// repairs nothing (`entropy show`): `state` is `consistent` or `diverged`.
    pub async fn compare_all(&self) -> Vec<ShardCheck> {
        let mut out = Vec::new();
        for s in self.cold_shards(i64::MAX, true) {
            out.push(self.examine(&s, Repair::No).await);
        }
        out
    }

    /// Checks every cold shard this node is the first owner of, unless an owner is still
    /// writing to it.
    pub async fn check_all(&self) -> Vec<ShardCheck> {
        let mut out = Vec::new();
        for s in self.cold_shards(ingester::now_nanos(), false) {
            let check = self.examine(&s, Repair::IfQuiet).await;
            self.keep(&check);
            out.push(check);
        }
        out
    }

    /// Compares the owners' copies of `s` and copies onto each owner the series it lacks or
    /// holds differently, from an owner that has them; the outcome is kept for `/status`.
    async fn check(&self, s: &ShardRef) -> ShardCheck {
        let check = self.examine(s, Repair::Now).await;
        self.keep(&check);
        check
    }

    fn keep(&self, check: &ShardCheck) {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(check.shard, check.clone());
    }

    /// Compares the owners' copies of `s`, and repairs them as `repair` says.
    async fn examine(&self, s: &ShardRef, repair: Repair) -> ShardCheck {
        let mut check = ShardCheck {
            shard: s.id,
            database: s.database.clone(),
            retention_policy: s.rp.clone(),
            owners: s.owners.clone(),
            points: BTreeMap::new(),
            state: "consistent".into(),
            series_copied: 0,
            points_copied: 0,
            checked_at: 0,
            error: None,
        };
        let mut digests: Vec<(u64, ShardDigest)> = Vec::new();
        for &o in &s.owners {
            match self.nodes.digest(o, &s.database, s.id).await {
                Ok(d) => {
                    check.points.insert(o, d.points());
                    digests.push((o, d));
                }
                Err(e) => {
                    check.error.get_or_insert(e.to_string());
                }
            }
        }
        let recent = ingester::now_nanos().saturating_sub(self.quiet.as_nanos() as i64);
        let written = digests
            .iter()
            .any(|(_, d)| d.last_write.is_some_and(|t| t > recent));
        // A delete of the database some node has still to apply makes copies differ that it
        // will make equal: copying now would bring deleted points back.
        let deleting = {
            let cat = self.meta.catalog();
            cat.deletes.iter().any(|d| d.database == s.database)
        };
        if digests.len() < 2 {
            check.state = "failed".into();
            check
                .error
                .get_or_insert_with(|| "fewer than two owners answered".into());
        } else if repair != Repair::No && deleting {
            check.state = "deletes pending".into();
        } else if repair == Repair::IfQuiet && written {
            // Still being written (copies in flight between owners look like differences).
            check.state = "being written".into();
        } else {
            for (from, theirs) in &digests {
                for (to, ours) in &digests {
                    if from == to {
                        continue;
                    }
                    let missing = theirs.missing_from(ours);
                    if missing.is_empty() {
                        continue;
                    }
                    if repair == Repair::No {
                        check.state = "diverged".into();
                        continue;
                    }
                    match copy_series(
                        self.nodes.as_ref(),
                        &s.database,
                        &s.rp,
                        s.id,
                        *from,
                        *to,
                        Some(&missing),
                    )
                    .await
                    {
                        Ok(c) => {
                            check.series_copied += c.series;
                            check.points_copied += c.points;
                            check.state = "repaired".into();
                            tracing::info!(
                                shard = s.id,
                                from,
                                to,
                                series = c.series,
                                points = c.points,
                                "anti-entropy: copied series an owner lacked"
                            );
                        }
                        Err(e) => {
                            tracing::warn!(shard = s.id, from, to, error = %e, "anti-entropy: repair failed");
                            check.state = "failed".into();
                            check.error.get_or_insert(e.to_string());
                        }
                    }
                }
            }
        }
        check.checked_at = ingester::now_nanos();
        check
    }

    /// Every shard's owners in the catalog now.
    fn owners(&self) -> BTreeMap<u64, Vec<u64>> {
        let cat = self.meta.catalog();
        cat.databases
            .values()
            .flat_map(|db| db.retention_policies.values())
            .flat_map(|rp| rp.live_shard_groups())
            .flat_map(|g| g.shards.iter())
            .map(|s| (s.id, s.owners.clone()))
            .collect()
    }

    /// Checks every `interval` until `stop`; and at once, hot or cold, a shard whose owners
    /// change while this node is its first owner (a dropped data node replaced by another,
    /// which has nothing of the shard yet).
    pub async fn run(self: Arc<Self>, interval: Duration, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut catalog = self.meta.watch();
        let mut owners = self.owners();
        loop {
            tokio::select! {
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                _ = tick.tick() => {
                    self.check_all().await;
                }
                changed = catalog.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = self.owners();
                    let here = self.nodes.here();
                    for (shard, o) in &now {
                        let moved = owners.get(shard).is_some_and(|before| before != o);
                        if moved
                            && o.len() >= 2
                            && o.first().copied() == here
                            && let Some(s) = self.shard(*shard)
                        {
                            tracing::info!(shard, owners = ?o, "anti-entropy: the shard's owners changed; copying it onto the new ones");
                            self.check(&s).await;
                        }
                    }
                    owners = now;
                }
            }
        }
    }
}
