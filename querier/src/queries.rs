//! The queries running on this node, as InfluxDB 1.x's task manager keeps them: `SHOW
//! QUERIES`, `KILL QUERY`, `[coordinator] max-concurrent-queries` and `log-queries-after`.
//!
//! ```text
//!  a request (all its statements) ─▶ Queries::attach: a qid, or
//!       "max-concurrent-queries limit exceeded(n, limit)" when `limit` are running
//!    ├─ each statement runs raced with Attached::killed (KILL QUERY qid): "query interrupted"
//!    └─ Attached dropped (the request is done, or its reader went away): forgotten, and
//!       logged as a slow query if it ran past log-queries-after
//! ```
//!
//! What it must not do: hold a query's data, or answer for another node's queries (`KILL
//! QUERY ... ON "host"` names this node or none).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::executor::ExecError;

/// One running query.
#[derive(Debug)]
struct Running {
    text: String,
    database: String,
    started: Instant,
    kill: watch::Sender<bool>,
}

/// What `SHOW QUERIES` lists of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfo {
    pub id: u64,
    pub text: String,
    pub database: String,
    pub duration: Duration,
}

/// The node's running queries.
#[derive(Debug)]
pub struct Queries {
    next: AtomicU64,
    running: Mutex<BTreeMap<u64, Running>>,
    /// `max-concurrent-queries` (0: no limit).
    max: usize,
    /// `log-queries-after` (`None`: never).
    log_after: Option<Duration>,
    /// Requests logged as slow so far.
    slow: AtomicU64,
    /// Requests started and finished so far, and how long the finished ones ran in all.
    executed: AtomicU64,
    finished: AtomicU64,
    duration_ns: AtomicU64,
}

impl Default for Queries {
    fn default() -> Self {
        Self::new(0, Duration::ZERO)
    }
}

impl Queries {
    pub fn new(max_concurrent: usize, log_after: Duration) -> Self {
        Self {
            next: AtomicU64::new(1),
            running: Mutex::default(),
            max: max_concurrent,
            log_after: (!log_after.is_zero()).then_some(log_after),
            slow: AtomicU64::new(0),
            executed: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            duration_ns: AtomicU64::new(0),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A query starting: its handle, or 1.x's error when `max-concurrent-queries` are running.
    pub fn attach(self: &Arc<Self>, text: String, database: String) -> Result<Attached, ExecError> {
        let mut running = self.running();
        if self.max > 0 && running.len() >= self.max {
            return Err(ExecError::Query(format!(
                "max-concurrent-queries limit exceeded({}, {})",
                running.len(),
                self.max
            )));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.executed.fetch_add(1, Ordering::Relaxed);
        let (kill, killed) = watch::channel(false);
        running.insert(
            id,
            Running {
                text,
                database,
                started: Instant::now(),
                kill,
            },
        );
        Ok(Attached {
            id,
            queries: Arc::clone(self),
            killed,
        })
    }

    /// The running queries, oldest first.
    pub fn list(&self) -> Vec<QueryInfo> {
        self.running()
            .iter()
            .map(|(id, r)| QueryInfo {
                id: *id,
                text: r.text.clone(),
                database: r.database.clone(),
                duration: r.started.elapsed(),
            })
            .collect()
    }

    /// Requests started, requests finished, and the nanoseconds the finished ones ran in all
    /// (InfluxQL over HTTP, SQL over HTTP and Flight alike).
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.executed.load(Ordering::Relaxed),
            self.finished.load(Ordering::Relaxed),
            self.duration_ns.load(Ordering::Relaxed),
        )
    }

    /// 1.x's `queryExecutor` module of `SHOW STATS` and `/debug/vars`.
    pub fn stat(&self) -> crate::stats::Stat {
        let n = |a: &AtomicU64| serde_json::Value::from(a.load(Ordering::Relaxed));
        crate::stats::Stat {
            module: "queryExecutor".into(),
            tags: Default::default(),
            values: vec![
                ("queriesActive".into(), self.running().len().into()),
                ("queriesExecuted".into(), n(&self.executed)),
                ("queriesFinished".into(), n(&self.finished)),
                ("queryDurationNs".into(), n(&self.duration_ns)),
            ],
        }
    }

    /// How many requests have been logged as slow (`log-queries-after`).
    pub fn slow_queries(&self) -> u64 {
        self.slow.load(Ordering::Relaxed)
    }

    /// Interrupts query `id` (its running statement answers `query interrupted`).
    pub fn kill(&self, id: u64) -> Result<(), ExecError> {
        match self.running().get(&id) {
            Some(r) => {
                let _ = r.kill.send(true);
                Ok(())
            }
            None => Err(ExecError::Query(format!("no such query id: {id}"))),
        }
    }
}

/// A query running on another node, as that node lists it (`SHOW QUERIES` in a cluster).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RemoteQuery {
    pub id: u64,
    pub text: String,
    pub database: String,
    pub duration_ns: u64,
}

impl From<QueryInfo> for RemoteQuery {
    fn from(q: QueryInfo) -> Self {
        Self {
            id: q.id,
            text: q.text,
            database: q.database,
            duration_ns: u64::try_from(q.duration.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

/// The other nodes' running queries, reached over the internal port (the gateway implements
/// it): what `SHOW QUERIES` lists and `KILL QUERY ... ON "host"` stops in a cluster.
#[async_trait::async_trait]
pub trait ClusterQueries: Send + Sync + std::fmt::Debug {
    /// The queries running on the node whose internal address is `tcp_addr`.
    async fn list(&self, tcp_addr: &str) -> Result<Vec<RemoteQuery>, String>;
    /// Stops query `id` there (its error text when it cannot, 1.x's `no such query id: n`).
    async fn kill(&self, tcp_addr: &str, id: u64) -> Result<(), String>;
}

/// A running query's place in [`Queries`]; dropping it ends the query there.
#[derive(Debug)]
pub struct Attached {
    id: u64,
    queries: Arc<Queries>,
    killed: watch::Receiver<bool>,
}

impl Attached {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Resolves once the query is killed (never otherwise).
    pub async fn killed(&self) {
        let mut rx = self.killed.clone();
        if rx.wait_for(|k| *k).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let done = self.queries.running().remove(&self.id);
        if let Some(r) = &done {
            let took = u64::try_from(r.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.queries.finished.fetch_add(1, Ordering::Relaxed);
            self.queries.duration_ns.fetch_add(took, Ordering::Relaxed);
        }
        if let (Some(r), Some(after)) = (done, self.queries.log_after) {
            let took = r.started.elapsed();
            if took >= after {
                self.queries.slow.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(qid = self.id, query = %r.text, database = %r.database, duration = %go_duration(took), "Detected slow query");
            }
        }
    }
}

/// `d` as Go's `time.Duration` prints it (`29µs`, `1.5ms`, `2.003s`, `1m30s`), as 1.x's
/// `SHOW QUERIES` shows durations.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let trim = |whole: u128, frac: u128, digits: usize, unit: &str| {
        let mut f = format!("{frac:0digits$}");
        while f.ends_with('0') {
            f.pop();
        }
        if f.is_empty() {
            format!("{whole}{unit}")
        } else {
            format!("{whole}.{f}{unit}")
        }
    };
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return trim(ns / 1_000, ns % 1_000, 3, "µs");
    }
    if ns < 1_000_000_000 {
        return trim(ns / 1_000_000, ns % 1_000_000, 6, "ms");
    }
    let (h, rest) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = trim(rest / 1_000_000_000, rest % 1_000_000_000, 9, "s");
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        for (d, want) in [
            (Duration::from_nanos(0), "0s"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_micros(29), "29µs"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_micros(1_500), "1.5ms"),
            (Duration::from_millis(2_003), "2.003s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3_600), "1h0m0s"),
        ] {
            assert_eq!(go_duration(d), want);
        }
    }

    #[test]
    fn requests_past_log_queries_after_are_logged_as_slow() {
        let q = Arc::new(Queries::new(0, Duration::from_nanos(1)));
        let a = q.attach("SELECT 1".into(), "db".into()).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        drop(a);
        assert_eq!(q.slow_queries(), 1);
        let never = Arc::new(Queries::new(0, Duration::ZERO));
        drop(never.attach("SELECT 1".into(), "db".into()).unwrap());
        assert_eq!(never.slow_queries(), 0, "0 = never");
        let patient = Arc::new(Queries::new(0, Duration::from_secs(3600)));
        drop(patient.attach("SELECT 1".into(), "db".into()).unwrap());
        assert_eq!(patient.slow_queries(), 0);
    }

    #[tokio::test]
    async fn attach_list_kill_and_the_concurrency_limit() {
        let q = Arc::new(Queries::new(2, Duration::ZERO));
        let a = q.attach("SELECT 1".into(), "db".into()).unwrap();
        let b = q.attach("SELECT 2".into(), "db".into()).unwrap();
        assert_eq!((a.id(), b.id()), (1, 2));
        let e = q.attach("SELECT 3".into(), "db".into()).unwrap_err();
        assert_eq!(e.to_string(), "max-concurrent-queries limit exceeded(2, 2)");
        let listed: Vec<u64> = q.list().iter().map(|i| i.id).collect();
        assert_eq!(listed, vec![1, 2]);
        assert_eq!(q.kill(9).unwrap_err().to_string(), "no such query id: 9");
        q.kill(2).unwrap();
        tokio::time::timeout(Duration::from_secs(5), b.killed())
            .await
            .expect("killed");
        drop(b);
        assert_eq!(q.list().len(), 1);
        // A slot is free again; a refused request took no id.
        assert_eq!(q.attach("SELECT 4".into(), "".into()).unwrap().id(), 3);
        // Not killed: does not resolve.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), a.killed())
                .await
                .is_err()
        );
    }
}
