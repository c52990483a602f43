//! [`PointsWriter`]: a request's points routed to shards and handed to every owner of each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use catalog::{MetaError, MetaService, ShardGroupInfo};
use ingester::{Ingester, WriteOutcome};
use line_protocol::Point;
use tokio::sync::mpsc;

use crate::consistency::Consistency;
use crate::hinted::{HintedError, HintedHandoff};
use crate::peer::{PeerError, PeerWriter};
use crate::subscriber::Subscriber;

/// Why a write request failed as a whole (nothing of it was written).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("database not found: \"{0}\"")]
    DatabaseNotFound(String),
    #[error("retention policy not found: {0}")]
    RetentionPolicyNotFound(String),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("shard group {0} has no shards")]
    NoShards(u64),
    /// A shard's owners, none of which this node can reach (no peer writer).
    #[error("shard {shard} is owned by data node(s) {owners:?}, which this node cannot write to")]
    NotOwner { shard: u64, owners: Vec<u64> },
    /// This node, the only owner the write went to, refused or failed it.
    #[error(transparent)]
    Shard(#[from] ingester::WriteError),
    /// Too few owners answered within `[coordinator] write-timeout` (1.x's text).
    #[error("timeout")]
    Timeout,
    /// Some owners acknowledged, too few for the consistency level (1.x's text).
    #[error("partial write")]
    PartialWrite,
    /// No owner acknowledged (1.x's text, with the first owner's error).
    #[error("write failed: {0}")]
    Failed(String),
    /// No owner acknowledged, and older points for an owner still wait in its hinted handoff
    /// queue (Enterprise's text).
    #[error("hinted handoff queue not empty")]
    QueueNotEmpty,
    /// No owner acknowledged, and an owner's hinted handoff queue is at `max-size`
    /// (Enterprise's text).
    #[error("queue is full")]
    QueueFull,
}

/// Writes points already routed to shards on one data node. [`LocalShards`] is this node's
/// ingester; the replication work adds writers for remote owners behind the same trait.
#[async_trait]
pub trait ShardWriter: Send + Sync + std::fmt::Debug {
    /// The data node this writer stores on.
    fn node_id(&self) -> u64;

    /// Writes each shard's points (`rp` is the policy's name), routed with the catalog at
    /// Raft `index`: durable before `Ok`, points that do not fit their shard's schema dropped
    /// with 1.x's reason, points that deletes recorded after `index` remove left out.
    async fn write_shards(
        &self,
        db: &str,
        rp: &str,
        shards: Vec<(u64, Vec<Point<'_>>)>,
        index: u64,
    ) -> Result<WriteOutcome, ingester::WriteError>;
}

/// This node's own shards: its ingester.
#[derive(Debug, Clone)]
pub struct LocalShards(pub Arc<Ingester>);

#[async_trait]
impl ShardWriter for LocalShards {
    fn node_id(&self) -> u64 {
        self.0.node_id()
    }

    async fn write_shards(
        &self,
        db: &str,
        rp: &str,
        shards: Vec<(u64, Vec<Point<'_>>)>,
        index: u64,
    ) -> Result<WriteOutcome, ingester::WriteError> {
        self.0.write_shards_at(db, rp, shards, index).await
    }
}

/// FNV-1a over the series key: stable across processes and versions, so a series always maps
/// to the same shard of a group.
pub fn series_hash(p: &Point<'_>) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |b: &[u8]| {
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    feed(p.measurement.as_bytes());
    for (k, v) in &p.tags {
        feed(b",");
        feed(k.as_bytes());
        feed(b"=");
        feed(v.as_bytes());
    }
    h
}

/// Routes writes: 1.x's `PointsWriter`.
#[derive(Debug, Clone)]
pub struct PointsWriter {
    meta: Arc<MetaService>,
    /// This node's shards, where it has the data role.
    local: Option<Arc<dyn ShardWriter>>,
    /// Other data nodes' shards.
    peers: Option<Arc<dyn PeerWriter>>,
    /// Points for owners that cannot take them now.
    hinted: Option<Arc<HintedHandoff>>,
    /// How long a write waits for its owners' acknowledgements.
    timeout: Duration,
    /// Where acknowledged writes are copied to (`[subscriber]`).
    subscriber: Option<Arc<Subscriber>>,
}

/// What one owner did with its shards' points.
#[derive(Debug)]
enum Delivery {
    /// In the owner's WAL.
    Acked(WriteOutcome),
    /// Queued for the owner on this node's disk (an ack for consistency `any` only), with why
    /// it did not go to the owner.
    Hinted(WriteError),
    Failed(WriteError),
}

/// `[coordinator] write-timeout`'s default (1.x's).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

impl PointsWriter {
    pub fn new(meta: Arc<MetaService>, local: Option<Arc<dyn ShardWriter>>) -> Self {
        Self {
            meta,
            local,
            peers: None,
            hinted: None,
            timeout: WRITE_TIMEOUT,
            subscriber: None,
        }
    }

    /// A writer to this node's ingester, if it has one.
    pub fn with_ingester(meta: Arc<MetaService>, ingester: Option<Arc<Ingester>>) -> Self {
        let local = ingester.map(|i| Arc::new(LocalShards(i)) as Arc<dyn ShardWriter>);
        Self::new(meta, local)
    }

    /// The same writer, sending the points of other nodes' shards through `peers` and queuing
    /// those an owner cannot take in `hinted`.
    pub fn with_peers(
        mut self,
        peers: Arc<dyn PeerWriter>,
        hinted: Option<Arc<HintedHandoff>>,
    ) -> Self {
        self.peers = Some(peers);
        self.hinted = hinted;
        self
    }

    /// The same writer, waiting at most `timeout` for acknowledgements.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same writer, copying acknowledged writes to their subscriptions.
    pub fn with_subscriber(mut self, subscriber: Option<Arc<Subscriber>>) -> Self {
        self.subscriber = subscriber;
        self
    }

    /// The hinted handoff queues, if any.
    pub fn hinted(&self) -> Option<&Arc<HintedHandoff>> {
        self.hinted.as_ref()
    }

    /// [`Self::write_with`] at consistency `one`.
    pub async fn write(
        &self,
        db: &str,
        rp: &str,
        points: Vec<Point<'_>>,
        now: i64,
    ) -> Result<WriteOutcome, WriteError> {
        self.write_with(db, rp, points, now, Consistency::One).await
    }

    /// [`Self::write`], answered once every owner has answered too (acknowledged, or queued
    /// for one that is down), or the write timeout passed: whoever reads next finds the points
    /// on any owner that is up (`SELECT ... INTO`, whose result is read back at once).
    pub async fn write_settled(
        &self,
        db: &str,
        rp: &str,
        points: Vec<Point<'_>>,
        now: i64,
    ) -> Result<WriteOutcome, WriteError> {
        self.write_routed(db, rp, points, now, Consistency::One, true)
            .await
    }

    /// Writes points to `db`.`rp` (the default policy when `rp` is empty). Points beyond the
    /// policy's retention, and points their shard's schema refuses, are dropped with a reason;
    /// each shard's points go to all of its owners at once, and the write succeeds once each
    /// shard has the acknowledgements `consistency` asks for.
    pub async fn write_with(
        &self,
        db: &str,
        rp: &str,
        points: Vec<Point<'_>>,
        now: i64,
        consistency: Consistency,
    ) -> Result<WriteOutcome, WriteError> {
        self.write_routed(db, rp, points, now, consistency, false)
            .await
    }

    async fn write_routed(
        &self,
        db: &str,
        rp: &str,
        points: Vec<Point<'_>>,
        now: i64,
        consistency: Consistency,
        settle: bool,
    ) -> Result<WriteOutcome, WriteError> {
        // The points as subscriptions get them, made before routing takes them.
        let forward = self
            .subscriber
            .as_ref()
            .and_then(|s| Some((s, s.prepare(&self.meta, db, rp, &points)?)));
        let (rp_name, mut routed, mut dropped) = self.route(db, rp, points, now).await?;
        // Replicated shards: points that disagree with the shard's declared columns go here.
        let disagreed = crate::columns::agree(&self.meta, &mut routed).await?;
        dropped.dropped += disagreed.dropped;
        if dropped.reason.is_none() {
            dropped.reason = disagreed.reason;
        }
        let mut outcome = self
            .deliver(db, &rp_name, routed, consistency, settle)
            .await?;
        outcome.dropped += dropped.dropped;
        if dropped.reason.is_some() {
            // The first reason in request order: retention drops are decided first, then
            // the replicated shards' columns, then the owners' checks.
            outcome.reason = dropped.reason;
        }
        outcome.dropped_in.extend(disagreed.dropped_in);
        // Acknowledged (a partial write too, all of its points, as 1.x forwards them).
        if let Some((s, prepared)) = forward {
            s.forward(prepared);
        }
        Ok(outcome)
    }

    /// Each point's shard: the points of each shard with its owners, in the order their first
    /// point came, and the points dropped beyond retention.
    async fn route<'a>(
        &self,
        db: &str,
        rp: &str,
        points: Vec<Point<'a>>,
        now: i64,
    ) -> Result<(String, Vec<Routed<'a>>, WriteOutcome), WriteError> {
        let catalog = self.meta.catalog();
        let dbi = catalog
            .database(db)
            .ok_or_else(|| WriteError::DatabaseNotFound(db.to_string()))?;
        let rpi = dbi
            .rp(rp)
            .ok_or_else(|| WriteError::RetentionPolicyNotFound(rp.to_string()))?;
        let rp_name = rpi.name.clone();
        let oldest_allowed = if rpi.duration > 0 {
            now.saturating_sub(rpi.duration)
        } else {
            i64::MIN
        };
        let mut dropped = WriteOutcome::default();
        let mut groups: Vec<ShardGroupInfo> = Vec::new();
        let mut shards: Vec<Routed<'a>> = Vec::new();
        for p in points {
            if p.time < oldest_allowed {
                dropped.dropped += 1;
                dropped
                    .reason
                    .get_or_insert_with(|| "points beyond retention policy".to_string());
                continue;
            }
            let group = match groups.iter().position(|g| g.contains(p.time)) {
                Some(i) => &groups[i],
                None => {
                    groups.push(self.meta.shard_group_for(db, &rp_name, p.time).await?);
                    &groups[groups.len() - 1]
                }
            };
            // The series hash only matters when the group has a choice of shards.
            let shard = match group.shards.as_slice() {
                [only] => Some(only),
                _ => group.shard_for(series_hash(&p)),
            };
            let Some(shard) = shard else {
                return Err(WriteError::NoShards(group.id));
            };
            match shards.iter_mut().find(|r| r.shard == shard.id) {
                Some(r) => r.points.push(p),
                None => shards.push(Routed {
                    shard: shard.id,
                    owners: shard.owners.clone(),
                    points: vec![p],
                }),
            }
        }
        Ok((rp_name, shards, dropped))
    }

    /// Sends each shard's points to all of its owners: this node's own shards written here,
    /// the others sent to their nodes (queued for those that cannot take them) on tasks of
    /// their own that finish even after the request has its answer.
    async fn deliver(
        &self,
        db: &str,
        rp: &str,
        routed: Vec<Routed<'_>>,
        consistency: Consistency,
        settle: bool,
    ) -> Result<WriteOutcome, WriteError> {
        if routed.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let here = self.local.as_ref().map(|l| l.node_id());
        // Every owner drops what deletes recorded after this catalog index remove (none did
        // yet); an owner takes the points once it has applied it (`MetaService::data_index`).
        let index = self.meta.data_index();
        // The shards each other owner gets, as one WAL entry per owner.
        let mut remote: BTreeMap<u64, Vec<(u64, Vec<&Point<'_>>)>> = BTreeMap::new();
        for r in &routed {
            for &owner in r.owners.iter().filter(|o| Some(**o) != here) {
                remote
                    .entry(owner)
                    .or_default()
                    .push((r.shard, r.points.iter().collect()));
            }
        }
        // Every shard is this node's alone (a single node): its ingester's answer is the
        // answer, with nothing to count or wait for.
        if remote.is_empty() && routed.iter().all(|r| !r.owners.is_empty()) {
            let mine: Vec<(u64, Vec<Point<'_>>)> =
                routed.into_iter().map(|r| (r.shard, r.points)).collect();
            return match &self.local {
                Some(l) => Ok(l.write_shards(db, rp, mine, index).await?),
                None => Ok(WriteOutcome::default()),
            };
        }
        if !remote.is_empty() && self.peers.is_none() {
            let r = routed
                .iter()
                .find(|r| r.owners.iter().any(|o| Some(*o) != here))
                .map(|r| (r.shard, r.owners.clone()))
                .unwrap_or_default();
            return Err(WriteError::NotOwner {
                shard: r.0,
                owners: r.1,
            });
        }
        let needed: BTreeMap<u64, usize> = routed
            .iter()
            .map(|r| (r.shard, consistency.required(r.owners.len())))
            .collect();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sent = remote.len();
        for (node, shards) in remote {
            let entry = Bytes::from(ingester::wal::encode_entry(db, rp, &shards));
            let ids: Vec<u64> = shards.iter().map(|(s, _)| *s).collect();
            let peers = self.peers.clone();
            let hinted = self.hinted.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let d = send_to(peers, hinted, node, index, entry).await;
                let _ = tx.send((node, ids, d));
            });
        }
        drop(tx);

        // This node's shards, written here while the others travel.
        let mine: Vec<(u64, Vec<Point<'_>>)> = routed
            .into_iter()
            .filter(|r| here.is_some_and(|h| r.owners.contains(&h)))
            .map(|r| (r.shard, r.points))
            .collect();
        let mine_ids: Vec<u64> = mine.iter().map(|(s, _)| *s).collect();
        let local = async {
            match (&self.local, mine.is_empty()) {
                (Some(l), false) => Some(l.write_shards(db, rp, mine, index).await),
                _ => None,
            }
        };
        let mut tally = Tally::new(needed, consistency);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut local = std::pin::pin!(local);
        let mut local_done = mine_ids.is_empty();
        let mut pending = sent;
        let mut timed_out = false;
        while !(local_done && (pending == 0 || (tally.satisfied() && !settle) || timed_out)) {
            tokio::select! {
                r = &mut local, if !local_done => {
                    local_done = true;
                    match r {
                        Some(Ok(o)) => tally.acked(&mine_ids, o),
                        Some(Err(e)) => tally.failed(WriteError::Shard(e)),
                        None => {}
                    }
                }
                d = rx.recv(), if pending > 0 => {
                    pending -= 1;
                    match d {
                        Some((_, ids, Delivery::Acked(o))) => tally.acked(&ids, o),
                        Some((_, ids, Delivery::Hinted(why))) => tally.hinted(&ids, why),
                        Some((_, _, Delivery::Failed(why))) => tally.failed(why),
                        // A sending task ended without an answer (it panicked).
                        None => {
                            pending = 0;
                            tally.failed(WriteError::Failed("a send to an owner was lost".into()));
                        }
                    }
                }
                // The owners' answers are waited for until the deadline; this node's own
                // write is always waited for (it cannot be taken back halfway).
                _ = tokio::time::sleep_until(deadline), if !timed_out && pending > 0 => {
                    timed_out = true;
                }
            }
        }
        tally.finish(timed_out)
    }
}

/// One shard's points, with its owners.
pub(crate) struct Routed<'a> {
    pub(crate) shard: u64,
    pub(crate) owners: Vec<u64>,
    pub(crate) points: Vec<Point<'a>>,
}

/// Sends one owner its entry; a failure that may pass is queued for the owner.
async fn send_to(
    peers: Option<Arc<dyn PeerWriter>>,
    hinted: Option<Arc<HintedHandoff>>,
    node: u64,
    index: u64,
    entry: Bytes,
) -> Delivery {
    let Some(peers) = peers else {
        return Delivery::Failed(WriteError::Failed(format!("no route to data node {node}")));
    };
    let queue = |why: WriteError| async {
        match &hinted {
            Some(h) => match h
                .enqueue(node, index, entry.clone(), &why.to_string())
                .await
            {
                Ok(()) => Delivery::Hinted(why),
                Err(HintedError::Full) => Delivery::Failed(WriteError::QueueFull),
                Err(e) => {
                    tracing::warn!(node, error = %e, "hinted handoff: could not queue points");
                    Delivery::Failed(WriteError::Failed(e.to_string()))
                }
            },
            None => Delivery::Failed(why),
        }
    };
    // Older points wait for this owner: these go behind them.
    if hinted.as_ref().is_some_and(|h| !h.is_empty(node)) {
        return queue(WriteError::QueueNotEmpty).await;
    }
    match peers.write(node, index, entry.clone()).await {
        Ok(o) => Delivery::Acked(o),
        Err(e @ PeerError::Refused { .. }) | Err(e @ PeerError::UnknownNode(_)) => {
            Delivery::Failed(WriteError::Failed(e.to_string()))
        }
        Err(e) => {
            tracing::debug!(node, error = %e, "write to an owner failed; queuing it");
            queue(WriteError::Failed(e.to_string())).await
        }
    }
}

/// Acknowledgements per shard against what the consistency level needs.
struct Tally {
    needed: BTreeMap<u64, usize>,
    acks: BTreeMap<u64, usize>,
    consistency: Consistency,
    /// Per shard, the drops of the first owner that acknowledged it.
    dropped: BTreeMap<u64, usize>,
    reason: Option<String>,
    written: usize,
    first_error: Option<WriteError>,
}

impl Tally {
    fn new(needed: BTreeMap<u64, usize>, consistency: Consistency) -> Self {
        Self {
            needed,
            acks: BTreeMap::new(),
            consistency,
            dropped: BTreeMap::new(),
            reason: None,
            written: 0,
            first_error: None,
        }
    }

    fn acked(&mut self, shards: &[u64], o: WriteOutcome) {
        let first = shards.iter().all(|s| !self.acks.contains_key(s));
        for s in shards {
            *self.acks.entry(*s).or_default() += 1;
        }
        for (s, n) in &o.dropped_in {
            self.dropped.entry(*s).or_insert(*n);
        }
        if self.reason.is_none() {
            self.reason = o.reason;
        }
        if first {
            self.written += o.written;
        }
    }

    fn hinted(&mut self, shards: &[u64], why: WriteError) {
        if self.consistency == Consistency::Any {
            for s in shards {
                *self.acks.entry(*s).or_default() += 1;
            }
        } else {
            self.failed(why);
        }
    }

    fn failed(&mut self, why: WriteError) {
        self.first_error.get_or_insert(why);
    }

    fn satisfied(&self) -> bool {
        self.needed
            .iter()
            .all(|(s, n)| self.acks.get(s).copied().unwrap_or(0) >= *n)
    }

    fn finish(self, timed_out: bool) -> Result<WriteOutcome, WriteError> {
        if self.satisfied() {
            let dropped = self.dropped.values().sum();
            return Ok(WriteOutcome {
                written: self.written,
                dropped,
                reason: if dropped > 0 { self.reason } else { None },
                dropped_in: self.dropped.into_iter().collect(),
            });
        }
        if timed_out {
            return Err(WriteError::Timeout);
        }
        if self.acks.values().any(|n| *n > 0) {
            return Err(WriteError::PartialWrite);
        }
        Err(match self.first_error {
            Some(WriteError::QueueNotEmpty) => WriteError::QueueNotEmpty,
            Some(WriteError::QueueFull) => WriteError::QueueFull,
            Some(WriteError::Failed(e)) => WriteError::Failed(e),
            Some(e) => WriteError::Failed(e.to_string()),
            None => WriteError::Failed("no owner answered".into()),
        })
    }
}
