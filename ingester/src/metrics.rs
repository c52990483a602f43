//! The storage engine's counters for `GET /metrics`: how often and how long the WAL fsyncs,
//! buffers persist and shards compact. One set per process (a `fletchd` is one node), read by
//! the gateway; nothing here decides anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many times something ran and how long it took in all (a Prometheus summary without
/// quantiles: `_count` and `_sum`).
#[derive(Debug, Default)]
pub struct Timer {
    count: AtomicU64,
    nanos: AtomicU64,
}

impl Timer {
    pub const fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    pub fn record(&self, took: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(
            took.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn seconds(&self) -> f64 {
        self.nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// WAL appends, each ending with its fsync (the time is the write and the fsync together).
pub static WAL_FSYNC: Timer = Timer::new();
/// Persists of the write buffer to Parquet (each a freeze and every frozen buffer written).
pub static PERSIST: Timer = Timer::new();
/// Compaction passes over the shards.
pub static COMPACTION: Timer = Timer::new();
