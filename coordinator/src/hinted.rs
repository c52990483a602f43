//! Hinted handoff: points an owner of their shard could not take, kept on disk for it until it
//! can, as InfluxDB Enterprise's `hh_processor` does.
//!
//! ```text
//!  [hinted-handoff] dir/
//!    <node id>/00000000000000000001.hh   segments of frames [len u32][crc32 u32][payload]
//!    <node id>/00000000000000000002.hh   (the WAL's frame format), the last one appended to
//!    <node id>/cursor                     the first frame not yet delivered: segment, offset
//!  payload = enqueued at (i64 ns) ++ catalog index (u64) ++ WAL entry   (little-endian)
//! ```
//!
//! A frame is fsynced before [`HintedHandoff::enqueue`] answers, so it can count as an ack of
//! consistency `any`. [`HintedHandoff::run`] drains each queue in order: the oldest frame is
//! sent to its node ([`PeerWriter`]); once the node has it in its WAL the cursor moves past it
//! (a frame delivered twice after a crash is written twice, which changes nothing: a point
//! with the same series and time replaces itself). A node that does not answer is retried
//! after `retry-interval`, doubling up to `retry-max-interval`; `retry-rate-limit` bounds the
//! bytes per second sent. Frames older than `max-age` are dropped (every `purge-interval`), and
//! a queue past `max-size` refuses new frames with `queue is full`. Nothing is held in memory
//! but each queue's position and sizes.
//!
//! While a node's queue is not empty, new writes for that node join the queue instead of
//! going to it directly, so that it receives writes in the order they were accepted.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ingester::wal::{Frame, frame_len, put_frame, read_frame};
use tokio::sync::watch;

use crate::peer::PeerWriter;

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 16 << 20;

/// `[hinted-handoff]`: Enterprise's keys and defaults.
#[derive(Debug, Clone)]
pub struct HintedConfig {
    pub dir: PathBuf,
    /// Bytes one node's queue may hold.
    pub max_size: u64,
    /// Frames older than this are dropped.
    pub max_age: Duration,
    /// Bytes per second sent while draining; 0 = unlimited.
    pub retry_rate_limit: u64,
    pub retry_interval: Duration,
    pub retry_max_interval: Duration,
    pub purge_interval: Duration,
}

impl HintedConfig {
    pub fn with_dir(dir: PathBuf) -> Self {
        Self {
            dir,
            max_size: 10 << 30,
            max_age: Duration::from_secs(168 * 3600),
            retry_rate_limit: 0,
            retry_interval: Duration::from_secs(1),
            retry_max_interval: Duration::from_secs(200),
            purge_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum HintedError {
    /// Enterprise's text.
    #[error("queue is full")]
    Full,
    #[error("hinted handoff queue for data node {node}: {message}")]
    Io { node: u64, message: String },
}

/// What an operator sees of one queue (`SHOW STATS` module `hh_processor`, `GET /status`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueStats {
    pub node: u64,
    /// Bytes not yet delivered.
    pub bytes: u64,
    /// Frames not yet delivered.
    pub frames: u64,
    /// Age of the oldest frame not yet delivered, in nanoseconds (0 when empty).
    pub oldest_age_ns: i64,
    pub delivered: u64,
    pub dropped_old: u64,
    pub last_error: Option<String>,
}

/// One destination's queue on disk.
#[derive(Debug)]
struct Queue {
    node: u64,
    dir: PathBuf,
    /// Segment ids, oldest first; the last one is appended to.
    segments: Vec<u64>,
    /// The first frame not yet delivered.
    head: Position,
    tail: Option<File>,
    tail_size: u64,
    bytes: u64,
    frames: u64,
    delivered: u64,
    dropped_old: u64,
    last_error: Option<String>,
    /// When the drainer may try again, after a failure.
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// A place in a queue: segment id, byte offset.
type Position = (u64, u64);

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.hh"))
}

impl Queue {
    fn io(&self, what: &str, e: impl std::fmt::Display) -> HintedError {
        HintedError::Io {
            node: self.node,
            message: format!("{what}: {e}"),
        }
    }

    /// Opens (or creates) node `node`'s queue under `dir`: frames after the cursor are counted,
    /// a torn tail cut off.
    fn open(dir: PathBuf, node: u64) -> Result<Self, HintedError> {
        let err = |what: &str, e: std::io::Error| HintedError::Io {
            node,
            message: format!("{what} {}: {e}", dir.display()),
        };
        fs::create_dir_all(&dir).map_err(|e| err("creating", e))?;
        let mut segments = Vec::new();
        for ent in fs::read_dir(&dir).map_err(|e| err("listing", e))? {
            let ent = ent.map_err(|e| err("listing", e))?;
            if let Some(id) = ent
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".hh"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                segments.push(id);
            }
        }
        segments.sort_unstable();
        let cursor = fs::read_to_string(dir.join("cursor")).ok().and_then(|s| {
            let (a, b) = s.trim().split_once(' ')?;
            Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
        });
        // Segments wholly before the cursor were delivered.
        if let Some((seg, _)) = cursor {
            for id in segments.iter().filter(|id| **id < seg) {
                let _ = fs::remove_file(segment_path(&dir, *id));
            }
            segments.retain(|id| *id >= seg);
        }
        if segments.is_empty() {
            segments.push(cursor.map_or(1, |(seg, _)| seg + 1));
        }
        let head = match cursor {
            Some((seg, off)) if segments.first() == Some(&seg) => (seg, off),
            _ => (segments[0], 0),
        };
        let mut q = Self {
            node,
            dir,
            segments,
            head,
            tail: None,
            tail_size: 0,
            bytes: 0,
            frames: 0,
            delivered: 0,
            dropped_old: 0,
            last_error: None,
            retry_at: None,
            backoff: Duration::ZERO,
        };
        // Count what is left, and cut a torn tail of any segment.
        for id in q.segments.clone() {
            let start = if id == q.head.0 { q.head.1 } else { 0 };
            let (frames, end) = q.scan(id, start)?;
            q.frames += frames;
            q.bytes += end.saturating_sub(start);
            let path = segment_path(&q.dir, id);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| q.io("opening segment", e))?;
            let len = f.metadata().map_err(|e| q.io("reading segment", e))?.len();
            if len > end {
                tracing::warn!(segment = %path.display(), len, end, "hinted handoff segment has a torn tail; truncating it");
                f.set_len(end).map_err(|e| q.io("truncating segment", e))?;
                f.sync_all().map_err(|e| q.io("syncing segment", e))?;
            }
            if Some(&id) == q.segments.last() {
                q.tail_size = end;
                q.tail = Some(f);
            }
        }
        Ok(q)
    }

    /// Whole frames of segment `id` from `start`: how many, and where they end.
    fn scan(&self, id: u64, start: u64) -> Result<(u64, u64), HintedError> {
        let path = segment_path(&self.dir, id);
        let Ok(f) = File::open(&path) else {
            return Ok((0, start));
        };
        let len = f
            .metadata()
            .map_err(|e| self.io("reading segment", e))?
            .len();
        let mut r = BufReader::new(f);
        r.seek(SeekFrom::Start(start))
            .map_err(|e| self.io("seeking segment", e))?;
        let (mut frames, mut at) = (0, start);
        while at < len {
            match read_frame(&mut r, len - at).map_err(|e| self.io("reading segment", e))? {
                Frame::Entry(p) => {
                    frames += 1;
                    at += frame_len(p.len());
                }
                Frame::End | Frame::Torn(_) => break,
            }
        }
        Ok((frames, at))
    }

    /// Appends one frame and fsyncs it.
    fn append(&mut self, payload: &[u8], max_size: u64) -> Result<(), HintedError> {
        let n = frame_len(payload.len());
        if self.bytes + n > max_size {
            return Err(HintedError::Full);
        }
        if self.tail_size >= SEGMENT_BYTES || self.tail.is_none() {
            let id = match (self.tail.is_some(), self.segments.last()) {
                (true, Some(last)) => last + 1,
                (false, Some(last)) => *last,
                (_, None) => 1,
            };
            let path = segment_path(&self.dir, id);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| self.io("creating segment", e))?;
            if File::open(&self.dir).and_then(|d| d.sync_all()).is_err() {
                tracing::warn!(dir = %self.dir.display(), "could not sync the hinted handoff directory");
            }
            if self.segments.last() != Some(&id) {
                self.segments.push(id);
                self.tail_size = 0;
            }
            self.tail = Some(f);
        }
        let mut buf = Vec::with_capacity(n as usize);
        put_frame(&mut buf, payload);
        let Some(f) = self.tail.as_mut() else {
            return Err(self.io("appending", "no open segment"));
        };
        let res = f.write_all(&buf).and_then(|_| f.sync_data());
        if let Err(e) = res {
            // Cut back what may have been written, so that the segment stays whole.
            let _ = f.set_len(self.tail_size);
            return Err(self.io("appending", e));
        }
        self.tail_size += n;
        self.bytes += n;
        self.frames += 1;
        Ok(())
    }

    /// The oldest frame not yet delivered, and the position after it; `None` when empty.
    fn peek(&mut self) -> Result<Option<(Vec<u8>, Position)>, HintedError> {
        loop {
            let (seg, off) = self.head;
            let path = segment_path(&self.dir, seg);
            let is_tail = self.segments.last() == Some(&seg);
            let mut f = match File::open(&path) {
                Ok(f) => f,
                Err(_) if !is_tail => {
                    self.next_segment();
                    continue;
                }
                Err(_) => return Ok(None),
            };
            let len = f
                .metadata()
                .map_err(|e| self.io("reading segment", e))?
                .len();
            f.seek(SeekFrom::Start(off))
                .map_err(|e| self.io("seeking segment", e))?;
            match read_frame(&mut BufReader::new(f), len.saturating_sub(off))
                .map_err(|e| self.io("reading segment", e))?
            {
                Frame::Entry(p) => {
                    let next = (seg, off + frame_len(p.len()));
                    return Ok(Some((p, next)));
                }
                Frame::End | Frame::Torn(_) if !is_tail => self.next_segment(),
                Frame::End | Frame::Torn(_) => return Ok(None),
            }
        }
    }

    /// Moves the head to the start of the next segment, removing the one it leaves.
    fn next_segment(&mut self) {
        let (seg, _) = self.head;
        let _ = fs::remove_file(segment_path(&self.dir, seg));
        self.segments.retain(|id| *id != seg);
        self.head = (self.segments.first().copied().unwrap_or(seg + 1), 0);
        self.save_cursor();
    }

    /// Moves the head past one frame of `len` bytes that ended at `next`.
    fn advance(&mut self, next: Position, len: u64) {
        self.head = next;
        self.bytes = self.bytes.saturating_sub(len);
        self.frames = self.frames.saturating_sub(1);
        if self.frames == 0 {
            // Empty: every segment but the tail can go.
            let tail = self.segments.last().copied();
            for id in self.segments.clone() {
                if Some(id) != tail {
                    let _ = fs::remove_file(segment_path(&self.dir, id));
                }
            }
            self.segments.retain(|id| Some(*id) == tail);
        }
        self.save_cursor();
    }

    /// Writes the cursor (not fsynced: a frame delivered again after a crash is harmless).
    fn save_cursor(&self) {
        let tmp = self.dir.join("cursor.tmp");
        let text = format!("{} {}\n", self.head.0, self.head.1);
        if fs::write(&tmp, text)
            .and_then(|_| fs::rename(&tmp, self.dir.join("cursor")))
            .is_err()
        {
            tracing::warn!(node = self.node, "could not save the hinted handoff cursor");
        }
    }
}

/// A frame's payload: when it was queued, the catalog index it was routed with, the entry.
fn payload(enqueued_at: i64, index: u64, entry: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entry.len());
    out.extend_from_slice(&enqueued_at.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(entry);
    out
}

fn split_payload(p: &[u8]) -> Option<(i64, u64, &[u8])> {
    if p.len() < 16 {
        return None;
    }
    let t = i64::from_le_bytes(p[..8].try_into().ok()?);
    let i = u64::from_le_bytes(p[8..16].try_into().ok()?);
    Some((t, i, &p[16..]))
}

/// Every destination's queue.
#[derive(Debug)]
pub struct HintedHandoff {
    cfg: HintedConfig,
    queues: Mutex<BTreeMap<u64, Arc<Mutex<Queue>>>>,
}

impl HintedHandoff {
    /// Opens the queues under `cfg.dir` (one directory per destination node).
    pub fn open(cfg: HintedConfig) -> Result<Arc<Self>, HintedError> {
        let io = |e: std::io::Error| HintedError::Io {
            node: 0,
            message: format!("{}: {e}", cfg.dir.display()),
        };
        fs::create_dir_all(&cfg.dir).map_err(io)?;
        let mut queues = BTreeMap::new();
        for ent in fs::read_dir(&cfg.dir).map_err(io)? {
            let ent = ent.map_err(io)?;
            let Some(node) = ent.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            let q = Queue::open(ent.path(), node)?;
            if q.frames > 0 {
                tracing::info!(
                    node,
                    frames = q.frames,
                    bytes = q.bytes,
                    "hinted handoff queue opened"
                );
            }
            queues.insert(node, Arc::new(Mutex::new(q)));
        }
        Ok(Arc::new(Self {
            cfg,
            queues: Mutex::new(queues),
        }))
    }

    fn queue(&self, node: u64) -> Result<Arc<Mutex<Queue>>, HintedError> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = queues.get(&node) {
            return Ok(Arc::clone(q));
        }
        let q = Arc::new(Mutex::new(Queue::open(
            self.cfg.dir.join(node.to_string()),
            node,
        )?));
        queues.insert(node, Arc::clone(&q));
        Ok(q)
    }

    /// Whether frames for `node` wait in its queue.
    pub fn is_empty(&self, node: u64) -> bool {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .get(&node)
            .is_none_or(|q| q.lock().map(|q| q.frames == 0).unwrap_or(false))
    }

    /// Queues `entry` (routed with catalog `index`) for `node`, which could not take it
    /// because of `why` (kept as the queue's last error); durable on disk when `Ok`.
    pub async fn enqueue(
        self: &Arc<Self>,
        node: u64,
        index: u64,
        entry: Bytes,
        why: &str,
    ) -> Result<(), HintedError> {
        let this = Arc::clone(self);
        let why = why.to_string();
        tokio::task::spawn_blocking(move || {
            let q = this.queue(node)?;
            let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
            q.append(
                &payload(ingester::now_nanos(), index, &entry),
                this.cfg.max_size,
            )?;
            q.last_error = Some(why);
            Ok(())
        })
        .await
        .map_err(|e| HintedError::Io {
            node,
            message: e.to_string(),
        })?
    }

    /// Each queue's state.
    pub fn stats(&self) -> Vec<QueueStats> {
        let queues: Vec<_> = {
            let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.values().cloned().collect()
        };
        let now = ingester::now_nanos();
        queues
            .into_iter()
            .map(|q| {
                let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
                let oldest = match q.frames {
                    0 => 0,
                    _ => q
                        .peek()
                        .ok()
                        .flatten()
                        .and_then(|(p, _)| split_payload(&p).map(|(t, _, _)| now - t))
                        .unwrap_or(0),
                };
                QueueStats {
                    node: q.node,
                    bytes: q.bytes,
                    frames: q.frames,
                    oldest_age_ns: oldest.max(0),
                    delivered: q.delivered,
                    dropped_old: q.dropped_old,
                    last_error: q.last_error.clone(),
                }
            })
            .collect()
    }

    /// Drains every queue into its node and drops frames past `max-age`, until `stop`.
    pub async fn run(self: Arc<Self>, peers: Arc<dyn PeerWriter>, mut stop: watch::Receiver<bool>) {
        let mut purge = tokio::time::interval(self.cfg.purge_interval);
        let mut tick = tokio::time::interval(self.cfg.retry_interval.min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watching = stop.clone();
        loop {
            tokio::select! {
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
                _ = purge.tick() => self.purge().await,
                _ = tick.tick() => {
                    let nodes: Vec<u64> = {
                        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                        queues.keys().copied().collect()
                    };
                    for node in nodes {
                        let stopped = *watching.borrow();
                        if stopped {
                            return;
                        }
                        self.drain(node, peers.as_ref(), &watching).await;
                    }
                }
            }
        }
    }

    /// Sends node `node`'s frames in order until its queue is empty, a send fails, or `stop`.
    pub async fn drain(&self, node: u64, peers: &dyn PeerWriter, stop: &watch::Receiver<bool>) {
        let Ok(queue) = self.queue(node) else { return };
        loop {
            let stopped = *stop.borrow();
            if stopped {
                return;
            }
            let next = {
                let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                if q.frames == 0 || q.retry_at.is_some_and(|t| Instant::now() < t) {
                    return;
                }
                match q.peek() {
                    Ok(Some(next)) => next,
                    Ok(None) => {
                        // The count says frames are left but none can be read: start over.
                        q.frames = 0;
                        q.bytes = 0;
                        return;
                    }
                    Err(e) => {
                        q.last_error = Some(e.to_string());
                        return;
                    }
                }
            };
            let (frame, after) = next;
            let len = frame_len(frame.len());
            let result = match split_payload(&frame) {
                Some((_, index, entry)) => peers
                    .write(node, index, Bytes::copy_from_slice(entry))
                    .await
                    .map(|_| ()),
                None => Ok(()), // unreadable payload: nothing to deliver
            };
            let delivered = {
                let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                match result {
                    Ok(()) => {
                        q.advance(after, len);
                        q.delivered += 1;
                        q.backoff = Duration::ZERO;
                        q.retry_at = None;
                        true
                    }
                    Err(e) if e.is_retryable() => {
                        q.backoff = (q.backoff * 2)
                            .max(self.cfg.retry_interval)
                            .min(self.cfg.retry_max_interval);
                        q.retry_at = Some(Instant::now() + q.backoff);
                        q.last_error = Some(e.to_string());
                        false
                    }
                    Err(e) => {
                        tracing::warn!(node, error = %e, "hinted handoff: the node refused queued points for good; dropping them");
                        q.last_error = Some(e.to_string());
                        q.advance(after, len);
                        true
                    }
                }
            };
            if !delivered {
                return;
            }
            if self.cfg.retry_rate_limit > 0 {
                let secs = len as f64 / self.cfg.retry_rate_limit as f64;
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            }
        }
    }

    /// Drops frames older than `max-age` from the head of every queue.
    async fn purge(&self) {
        let queues: Vec<_> = {
            let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.values().cloned().collect()
        };
        let oldest_allowed = ingester::now_nanos() - self.cfg.max_age.as_nanos() as i64;
        for q in queues {
            let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
            while q.frames > 0 {
                let Ok(Some((frame, after))) = q.peek() else {
                    break;
                };
                match split_payload(&frame) {
                    Some((t, _, _)) if t < oldest_allowed => {
                        q.advance(after, frame_len(frame.len()));
                        q.dropped_old += 1;
                    }
                    _ => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::PeerError;
    use async_trait::async_trait;
    use ingester::WriteOutcome;

    /// A node that takes frames while `up`, recording them in order.
    #[derive(Debug, Default)]
    struct Node {
        up: std::sync::atomic::AtomicBool,
        got: Mutex<Vec<(u64, Vec<u8>)>>,
    }

    #[async_trait]
    impl PeerWriter for Node {
        async fn write(
            &self,
            node: u64,
            index: u64,
            entry: Bytes,
        ) -> Result<WriteOutcome, PeerError> {
            if !self.up.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(PeerError::Unreachable {
                    node,
                    message: "connection refused".into(),
                });
            }
            self.got.lock().unwrap().push((index, entry.to_vec()));
            Ok(WriteOutcome::default())
        }
    }

    fn config(dir: &Path) -> HintedConfig {
        HintedConfig {
            retry_interval: Duration::from_millis(1),
            retry_max_interval: Duration::from_millis(1),
            ..HintedConfig::with_dir(dir.to_path_buf())
        }
    }

    fn entry(i: u32) -> Bytes {
        Bytes::from(format!("entry {i}").into_bytes())
    }

    #[tokio::test]
    async fn retry_rate_limit_bounds_how_fast_a_queue_drains() {
        let dir = tempfile::tempdir().unwrap();
        // 2000 bytes per second: the queue's bytes take at least bytes/2000 seconds to send.
        let cfg = HintedConfig {
            retry_rate_limit: 2000,
            ..config(dir.path())
        };
        let hh = HintedHandoff::open(cfg).unwrap();
        for i in 0..4 {
            hh.enqueue(4, 7, entry(i), "down").await.unwrap();
        }
        let bytes = hh.stats()[0].bytes;
        assert!(bytes > 0);
        let node = Node::default();
        node.up.store(true, std::sync::atomic::Ordering::SeqCst);
        let (_tx, stop) = watch::channel(false);
        let started = std::time::Instant::now();
        hh.drain(4, &node, &stop).await;
        let took = started.elapsed();
        assert!(hh.is_empty(4));
        assert_eq!(node.got.lock().unwrap().len(), 4);
        let least = Duration::from_secs_f64(bytes as f64 / 2000.0 * 0.99);
        assert!(
            took >= least,
            "{bytes} bytes drained in {took:?}, under {least:?}"
        );
    }

    #[tokio::test]
    async fn frames_survive_a_restart_and_drain_in_order_once_the_node_answers() {
        let dir = tempfile::tempdir().unwrap();
        let hh = HintedHandoff::open(config(dir.path())).unwrap();
        assert!(hh.is_empty(4));
        for i in 0..5 {
            hh.enqueue(4, 100 + i as u64, entry(i), "down")
                .await
                .unwrap();
        }
        assert!(!hh.is_empty(4));
        let node = Node::default();
        let (_tx, stop) = watch::channel(false);
        // Down: nothing moves, and the queue says why.
        hh.drain(4, &node, &stop).await;
        let st = &hh.stats()[0];
        assert_eq!((st.node, st.frames, st.delivered), (4, 5, 0));
        assert_eq!(
            st.last_error.as_deref(),
            Some("data node 4: connection refused")
        );
        assert!(st.oldest_age_ns >= 0 && st.bytes > 0);
        drop(hh);

        // Reopened from disk, with a torn frame at the end (a crash mid-append).
        let seg = segment_path(&dir.path().join("4"), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let hh = HintedHandoff::open(config(dir.path())).unwrap();
        assert_eq!(hh.stats()[0].frames, 5);
        node.up.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        hh.drain(4, &node, &stop).await;
        let got = node.got.lock().unwrap().clone();
        let want: Vec<(u64, Vec<u8>)> = (0..5)
            .map(|i| (100 + i as u64, entry(i).to_vec()))
            .collect();
        assert_eq!(got, want);
        assert!(hh.is_empty(4));
        assert_eq!(hh.stats()[0].bytes, 0);

        // Delivered frames are not sent again after another restart; new ones are.
        hh.enqueue(4, 200, entry(9), "down").await.unwrap();
        drop(hh);
        let hh = HintedHandoff::open(config(dir.path())).unwrap();
        hh.drain(4, &node, &stop).await;
        assert_eq!(node.got.lock().unwrap().len(), 6);
        assert_eq!(node.got.lock().unwrap()[5], (200, entry(9).to_vec()));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_old_frames_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.max_size = 3 * frame_len(16 + entry(0).len());
        let hh = HintedHandoff::open(cfg.clone()).unwrap();
        for i in 0..3 {
            hh.enqueue(6, 1, entry(i), "down").await.unwrap();
        }
        let err = hh.enqueue(6, 1, entry(3), "down").await.unwrap_err();
        assert_eq!(err.to_string(), "queue is full");
        assert_eq!(hh.stats()[0].frames, 3);

        // Past max-age, frames are dropped and the room is back.
        drop(hh);
        cfg.max_age = Duration::ZERO;
        let hh = HintedHandoff::open(cfg).unwrap();
        hh.purge().await;
        let st = &hh.stats()[0];
        assert_eq!((st.frames, st.bytes, st.dropped_old), (0, 0, 3));
        hh.enqueue(6, 1, entry(4), "down").await.unwrap();
    }

    #[tokio::test]
    async fn segments_roll_and_drained_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let hh = HintedHandoff::open(config(dir.path())).unwrap();
        let big = Bytes::from(vec![7u8; (SEGMENT_BYTES / 2) as usize]);
        for _ in 0..5 {
            hh.enqueue(2, 1, big.clone(), "down").await.unwrap();
        }
        let segments = || {
            fs::read_dir(dir.path().join("2"))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_str()
                        .unwrap()
                        .ends_with(".hh")
                })
                .count()
        };
        assert!(segments() >= 2, "{}", segments());
        let node = Node::default();
        node.up.store(true, std::sync::atomic::Ordering::SeqCst);
        let (_tx, stop) = watch::channel(false);
        hh.drain(2, &node, &stop).await;
        assert_eq!(node.got.lock().unwrap().len(), 5);
        assert_eq!(segments(), 1, "only the segment appended to is left");
    }
}
