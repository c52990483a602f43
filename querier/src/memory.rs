//! Memory budgets for queries, on DataFusion's memory pool.
//!
//! Every DataFusion operator that holds data (hash aggregates, sorts, joins, repartition
//! buffers) reserves what it holds from its task's [`MemoryPool`] before it holds it. Fletch
//! gives each query a pool of its own ([`Budget::query`], `[coordinator] query-memory-bytes`)
//! whose reservations also count in the node's pool (`[coordinator] query-pool-bytes`), so one
//! query cannot take more than its budget and all queries together no more than the node's:
//!
//! ```text
//!   operator ──try_grow──▶ Budget::query (this query) ──try_grow──▶ node pool (every query)
//!                              │ over budget                        │ over the pool
//!                              ▼                                    ▼
//!                   ResourcesExhausted: a spilling operator (sort, grouped aggregate)
//!                   writes to `[data] dir/spill` and goes on; the others fail the statement
//!                   with `query-memory-bytes limit exceeded` / `query-pool-bytes ...`
//! ```
//!
//! The budget covers what DataFusion accounts for; the answer itself is bounded elsewhere
//! (`[http] max-response-memory` for whole answers, chunked answers stream). Writes never
//! reserve from these pools: a query out of budget fails, the node and its writes go on.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use datafusion::common::DataFusionError;
use datafusion::config::ConfigOptions;
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool, MemoryReservation};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::spill_file::{SpillFile, TempFileFactory};

/// A bounded pool: at most `limit` bytes reserved at once (0: no bound), each reservation also
/// made in `parent` (the node's pool for a query's budget).
pub struct Budget {
    /// The config key that sets the bound, named in the error past it.
    key: &'static str,
    limit: usize,
    used: AtomicUsize,
    parent: Option<Arc<Budget>>,
}

impl Budget {
    /// The node-wide pool of every query (`limit` 0: unbounded).
    pub fn node(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            key: "query-pool-bytes",
            limit,
            used: AtomicUsize::new(0),
            parent: None,
        })
    }

    /// One query's pool inside `node` (`limit` 0: bounded by the node's pool alone).
    pub fn query(node: &Arc<Budget>, limit: usize) -> Arc<Self> {
        Arc::new(Self {
            key: "query-memory-bytes",
            limit,
            used: AtomicUsize::new(0),
            parent: Some(Arc::clone(node)),
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn take(&self, consumer: &str, additional: usize) -> Result<(), DataFusionError> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let new = used.saturating_add(additional);
            if self.limit != 0 && new > self.limit {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "{} limit exceeded: ({new}/{}) bytes ({consumer} asked for {additional} more)",
                    self.key, self.limit
                )));
            }
            match self
                .used
                .compare_exchange_weak(used, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        if let Some(parent) = &self.parent {
            if let Err(e) = parent.take(consumer, additional) {
                self.used.fetch_sub(additional, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    }

    fn give(&self, n: usize) {
        // Saturating: a shrink is never larger than what its reservation grew.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
        if let Some(parent) = &self.parent {
            parent.give(n);
        }
    }

    fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
        if let Some(parent) = &self.parent {
            parent.add(n);
        }
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("key", &self.key)
            .field("limit", &self.limit)
            .field("used", &self.used())
            .finish()
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} of {} bytes)", self.key, self.used(), self.limit)
    }
}

impl MemoryPool for Budget {
    fn name(&self) -> &str {
        self.key
    }

    fn grow(&self, _reservation: &MemoryReservation, additional: usize) {
        // Infallible growth (memory an operator already holds) is counted, never refused.
        self.add(additional);
    }

    fn shrink(&self, _reservation: &MemoryReservation, shrink: usize) {
        self.give(shrink);
    }

    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::common::Result<()> {
        self.take(reservation.consumer().name(), additional)
    }

    fn reserved(&self) -> usize {
        self.used()
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.limit {
            0 => MemoryLimit::Infinite,
            n => MemoryLimit::Finite(n),
        }
    }
}

/// Where queries spill, counting the files they write (for `/metrics`).
pub struct SpillFiles {
    disk: Arc<DiskManager>,
    created: AtomicU64,
}

impl SpillFiles {
    /// Spill files written since the node started.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// Bytes in spill files now.
    pub fn bytes(&self) -> u64 {
        self.disk.used_disk_space()
    }
}

impl TempFileFactory for SpillFiles {
    fn create_temp_file(
        &self,
        description: &str,
    ) -> datafusion::common::Result<Arc<dyn SpillFile>> {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.disk.create_tmp_file(description)
    }
}

/// The node's runtime for queries: the node-wide pool and the spill directory (`None`: the
/// system's temporary directory, for nodes without a `[data] dir`).
pub fn node_runtime(
    pool: &Arc<Budget>,
    spill_dir: Option<PathBuf>,
) -> Result<(Arc<RuntimeEnv>, Arc<SpillFiles>), DataFusionError> {
    let mode = match spill_dir {
        Some(dir) => {
            // Spill files of a node that stopped are of no use to the next one (DataFusion
            // names its spill directories `datafusion-*`; nothing else is touched).
            std::fs::create_dir_all(&dir)?;
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("datafusion-")
                {
                    std::fs::remove_dir_all(entry.path())?;
                }
            }
            DiskManagerMode::Directories(vec![dir])
        }
        None => DiskManagerMode::OsTmpDirectory,
    };
    let spill = Arc::new(SpillFiles {
        disk: Arc::new(DiskManagerBuilder::default().with_mode(mode).build()?),
        created: AtomicU64::new(0),
    });
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::clone(pool) as Arc<dyn MemoryPool>)
        .with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Custom(Arc::clone(&spill) as _)),
        )
        .build_arc()?;
    Ok((runtime, spill))
}

/// `runtime` with `budget` as its pool (the rest, spill directory and caches, shared).
pub fn query_runtime(runtime: &RuntimeEnv, budget: Arc<Budget>) -> Arc<RuntimeEnv> {
    let mut rt = runtime.clone();
    rt.memory_pool = budget;
    Arc::new(rt)
}

/// Scales what DataFusion's operators reserve up front to `runtime`'s budget: a sort sets
/// 10 MiB aside to merge its spill files, which a budget of a few MiB could never grant.
pub fn fit_to_budget(options: &mut ConfigOptions, runtime: &RuntimeEnv) {
    if let MemoryLimit::Finite(n) = runtime.memory_pool.memory_limit() {
        let exec = &mut options.execution;
        exec.sort_spill_reservation_bytes = exec.sort_spill_reservation_bytes.min(n / 4);
    }
}

/// Whether `e` is a memory budget's refusal (the text users see is its message alone).
pub fn exhausted_message(e: &DataFusionError) -> Option<&str> {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(msg) => Some(msg),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::MemoryConsumer;

    fn reserve(pool: &Arc<dyn MemoryPool>, name: &str) -> MemoryReservation {
        MemoryConsumer::new(name).register(pool)
    }

    #[test]
    fn a_query_is_bounded_by_its_budget_and_the_node_by_its_pool() {
        let node = Budget::node(100);
        let a: Arc<dyn MemoryPool> = Budget::query(&node, 60);
        let b: Arc<dyn MemoryPool> = Budget::query(&node, 60);
        let ra = reserve(&a, "A");
        ra.try_grow(50).unwrap();
        let err = ra.try_grow(20).unwrap_err().to_string();
        assert!(
            err.contains("query-memory-bytes limit exceeded: (70/60) bytes (A asked for 20 more)"),
            "{err}"
        );
        assert_eq!(node.used(), 50, "a refused reservation takes nothing");
        let rb = reserve(&b, "B");
        let err = rb.try_grow(51).unwrap_err().to_string();
        assert!(
            err.contains("query-pool-bytes limit exceeded: (101/100)"),
            "{err}"
        );
        let err = rb.try_grow(61).unwrap_err().to_string();
        assert!(
            err.contains("query-memory-bytes limit exceeded: (61/60)"),
            "{err}"
        );
        rb.try_grow(50).unwrap();
        assert_eq!(node.used(), 100);
        drop(ra);
        assert_eq!(node.used(), 50);
        rb.try_grow(10).unwrap();
        rb.try_grow(1).unwrap_err();
        drop(rb);
        assert_eq!(node.used(), 0, "dropped reservations give everything back");
    }

    #[test]
    fn the_node_pool_refuses_when_queries_together_exceed_it() {
        let node = Budget::node(100);
        let a: Arc<dyn MemoryPool> = Budget::query(&node, 0);
        let b: Arc<dyn MemoryPool> = Budget::query(&node, 0);
        let ra = reserve(&a, "A");
        ra.try_grow(80).unwrap();
        let rb = reserve(&b, "B");
        let err = rb.try_grow(30).unwrap_err();
        assert_eq!(
            exhausted_message(&err),
            Some("query-pool-bytes limit exceeded: (110/100) bytes (B asked for 30 more)")
        );
        assert_eq!(b.reserved(), 0, "the query's own count is given back");
        rb.try_grow(20).unwrap();
        assert_eq!(node.used(), 100);
    }

    #[test]
    fn unbounded_pools_count_and_never_refuse() {
        let node = Budget::node(0);
        let q: Arc<dyn MemoryPool> = Budget::query(&node, 0);
        let r = reserve(&q, "R");
        r.try_grow(usize::MAX / 4).unwrap();
        r.grow(10);
        assert_eq!(node.used(), usize::MAX / 4 + 10);
        r.shrink(10);
        assert_eq!(q.reserved(), usize::MAX / 4);
    }
}
