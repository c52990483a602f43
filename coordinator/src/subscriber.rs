//! The subscriber: copies acknowledged writes to the destinations of the retention policy's
//! subscriptions (1.x's `services/subscriber`).
//!
//! ```text
//!  PointsWriter::write(db, rp, points)
//!     Subscriber::prepare ── db.rp has subscriptions? ─▶ the points as line protocol (ns)
//!     ... the write is routed and acknowledged (a refused write is not forwarded) ...
//!     Subscriber::forward ─▶ per subscription: a bounded queue (write-buffer-size; a write
//!                             that finds it full is dropped and counted, as 1.x drops it)
//!                             ─▶ up to write-concurrency sends at a time
//!                                ALL: every destination; ANY: the next in turn, the others
//!                                tried when it fails
//!        http(s)://h:p ─▶ POST /write?db=&rp=&precision=ns (userinfo as basic auth)
//!        udp://h:p     ─▶ a datagram per point, as 1.x sends them
//! ```
//!
//! Forwarding is best effort, as in 1.x: nothing is retried, and what a destination missed is
//! counted in [`METRICS`]. The node that accepted a write forwards it, so each write leaves the
//! cluster once whatever its replication factor; replicas' copies between owners are not
//! writes and are not forwarded.
//!
//! What it must not touch: the catalog (it reads the subscriptions the statements made), or
//! the write's outcome (a destination's failure never fails the write).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::MetaService;
use catalog::subscription::{SubscriptionInfo, SubscriptionMode};
use line_protocol::Point;
use tokio::sync::{Semaphore, mpsc};

/// `[subscriber]`: 1.x's keys and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberConfig {
    pub enabled: bool,
    /// How long a send to an HTTP destination may take.
    pub http_timeout: Duration,
    /// Accept any certificate from an `https` destination.
    pub insecure_skip_verify: bool,
    /// PEM CA certificates for `https` destinations (instead of the system's roots).
    pub ca_certs: Option<PathBuf>,
    /// Sends in flight at a time, per subscription.
    pub write_concurrency: usize,
    /// Writes queued per subscription before further ones are dropped.
    pub write_buffer_size: usize,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            http_timeout: Duration::from_secs(30),
            insecure_skip_verify: false,
            ca_certs: None,
            write_concurrency: 40,
            write_buffer_size: 1000,
        }
    }
}

/// Why the subscriber cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    #[error("[subscriber] ca-certs {path}: {source}")]
    CaCerts {
        path: String,
        source: std::io::Error,
    },
    #[error("[subscriber] ca-certs {path}: no certificate could be read: {reason}")]
    BadCaCerts { path: String, reason: String },
    #[error("[subscriber] http client: {0}")]
    Client(String),
}

/// What the subscriber did, for `/metrics` (per process: one `fletchd` is one node).
#[derive(Debug, Default)]
pub struct SubscriberMetrics {
    /// Points a destination accepted.
    pub points_written: AtomicU64,
    /// Sends that failed, and writes dropped because a subscription's queue was full.
    pub write_failures: AtomicU64,
    /// Subscriptions that could not be started (a destination this node cannot use).
    pub create_failures: AtomicU64,
}

pub static METRICS: SubscriberMetrics = SubscriberMetrics {
    points_written: AtomicU64::new(0),
    write_failures: AtomicU64::new(0),
    create_failures: AtomicU64::new(0),
};

/// One write on its way to a retention policy's subscriptions.
#[derive(Debug)]
pub struct Prepared {
    db: String,
    rp: String,
    subscriptions: Vec<SubscriptionInfo>,
    batch: Arc<Batch>,
}

#[derive(Debug)]
struct Batch {
    db: String,
    rp: String,
    /// One line per point, without newlines.
    lines: Vec<String>,
}

/// A destination, ready to send to.
#[derive(Debug)]
enum Destination {
    Http {
        /// `.../write` with the query string still to add.
        write_url: reqwest::Url,
        auth: Option<(String, String)>,
    },
    Udp {
        addr: String,
    },
}

/// One subscription being served: its queue's sender (dropping it ends the worker once the
/// queue is drained).
#[derive(Debug)]
struct Running {
    info: SubscriptionInfo,
    tx: mpsc::Sender<Arc<Batch>>,
}

#[derive(Debug)]
pub struct Subscriber {
    cfg: SubscriberConfig,
    http: reqwest::Client,
    /// (database, retention policy) → its subscriptions being served.
    running: Mutex<HashMap<(String, String), Vec<Running>>>,
}

impl Subscriber {
    /// `None` when `[subscriber] enabled = false`.
    pub fn start(cfg: SubscriberConfig) -> Result<Option<Arc<Self>>, SubscriberError> {
        if !cfg.enabled {
            return Ok(None);
        }
        let mut http = reqwest::Client::builder()
            .timeout(cfg.http_timeout)
            .user_agent("InfluxDBClient")
            .danger_accept_invalid_certs(cfg.insecure_skip_verify);
        if let Some(path) = &cfg.ca_certs {
            let pem = std::fs::read(path).map_err(|source| SubscriberError::CaCerts {
                path: path.display().to_string(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                SubscriberError::BadCaCerts {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }
            })?;
            if certs.is_empty() {
                return Err(SubscriberError::BadCaCerts {
                    path: path.display().to_string(),
                    reason: "the file has no PEM certificate".into(),
                });
            }
            http = http.tls_built_in_root_certs(false);
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        let http = http
            .build()
            .map_err(|e| SubscriberError::Client(e.to_string()))?;
        Ok(Some(Arc::new(Self {
            cfg,
            http,
            running: Mutex::new(HashMap::new()),
        })))
    }

    /// The write's points as line protocol when `db`.`rp` (the default policy when `rp` is
    /// empty) has subscriptions; `None` (and no work) when it has none.
    pub fn prepare(
        &self,
        meta: &MetaService,
        db: &str,
        rp: &str,
        points: &[Point<'_>],
    ) -> Option<Prepared> {
        let catalog = meta.catalog();
        let rpi = catalog.database(db)?.rp(rp)?;
        if rpi.subscriptions.is_empty() || points.is_empty() {
            return None;
        }
        let lines = points.iter().map(line_protocol::format_point).collect();
        Some(Prepared {
            db: db.to_string(),
            rp: rpi.name.clone(),
            subscriptions: rpi.subscriptions.clone(),
            batch: Arc::new(Batch {
                db: db.to_string(),
                rp: rpi.name.clone(),
                lines,
            }),
        })
    }

    /// Queues an acknowledged write for each of its subscriptions; never waits.
    pub fn forward(&self, p: Prepared) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let subs = running.entry((p.db, p.rp)).or_default();
        // The catalog's subscriptions of this policy now: dropped ones stop (after their
        // queue), new or changed ones start.
        if subs.len() != p.subscriptions.len()
            || subs.iter().zip(&p.subscriptions).any(|(r, s)| &r.info != s)
        {
            let mut kept: Vec<Running> = Vec::with_capacity(p.subscriptions.len());
            let mut old: Vec<Running> = std::mem::take(subs);
            for info in &p.subscriptions {
                match old.iter().position(|r| &r.info == info) {
                    Some(i) => kept.push(old.swap_remove(i)),
                    None => {
                        if let Some(r) = self.run(info, &p.batch) {
                            kept.push(r);
                        }
                    }
                }
            }
            *subs = kept;
        }
        for r in subs.iter() {
            if r.tx.try_send(p.batch.clone()).is_err() {
                METRICS.write_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    subscription = %r.info.name,
                    "subscription queue full: write dropped"
                );
            }
        }
    }

    /// Starts serving a subscription: its destinations, its queue and its worker.
    fn run(&self, info: &SubscriptionInfo, batch: &Batch) -> Option<Running> {
        let destinations: Result<Vec<Destination>, String> =
            info.destinations.iter().map(|d| destination(d)).collect();
        let destinations = match destinations {
            Ok(d) if !d.is_empty() => d,
            Ok(_) => return None,
            Err(why) => {
                METRICS.create_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    database = %batch.db,
                    retention_policy = %batch.rp,
                    subscription = %info.name,
                    "subscription not started: {why}"
                );
                return None;
            }
        };
        tracing::info!(
            database = %batch.db,
            retention_policy = %batch.rp,
            subscription = %info.name,
            "subscription started"
        );
        let (tx, rx) = mpsc::channel(self.cfg.write_buffer_size.max(1));
        let worker = Worker {
            mode: info.mode,
            destinations,
            next: AtomicUsize::new(0),
            http: self.http.clone(),
        };
        tokio::spawn(Arc::new(worker).serve(rx, self.cfg.write_concurrency.max(1)));
        Some(Running {
            info: info.clone(),
            tx,
        })
    }
}

/// A destination URL (checked by the catalog already) made ready to send to.
fn destination(url: &str) -> Result<Destination, String> {
    if let Some(addr) = url.strip_prefix("udp://") {
        let addr = addr.split(['/', '?', '#']).next().unwrap_or_default();
        return Ok(Destination::Udp {
            addr: addr.to_string(),
        });
    }
    let mut u = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let auth = (!u.username().is_empty()).then(|| {
        (
            u.username().to_string(),
            u.password().unwrap_or_default().to_string(),
        )
    });
    let _ = u.set_username("");
    let _ = u.set_password(None);
    // 1.x's client joins `write` to the URL's path.
    let path = format!("{}/write", u.path().trim_end_matches('/'));
    u.set_path(&path);
    u.set_query(None);
    Ok(Destination::Http { write_url: u, auth })
}

#[derive(Debug)]
struct Worker {
    mode: SubscriptionMode,
    destinations: Vec<Destination>,
    /// ANY: the destination whose turn is next.
    next: AtomicUsize,
    http: reqwest::Client,
}

impl Worker {
    async fn serve(self: Arc<Self>, mut rx: mpsc::Receiver<Arc<Batch>>, concurrency: usize) {
        let slots = Arc::new(Semaphore::new(concurrency));
        while let Some(batch) = rx.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.send(&batch).await;
                drop(slot);
            });
        }
    }

    async fn send(&self, batch: &Batch) {
        let n = self.destinations.len();
        let first = match self.mode {
            SubscriptionMode::All => 0,
            SubscriptionMode::Any => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        for i in 0..n {
            let d = &self.destinations[(first + i) % n];
            match self.send_to(d, batch).await {
                Ok(()) => {
                    METRICS
                        .points_written
                        .fetch_add(batch.lines.len() as u64, Ordering::Relaxed);
                    if self.mode == SubscriptionMode::Any {
                        return;
                    }
                }
                Err(why) => {
                    METRICS.write_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(database = %batch.db, "subscription send failed: {why}");
                }
            }
        }
    }

    async fn send_to(&self, d: &Destination, batch: &Batch) -> Result<(), String> {
        match d {
            Destination::Http { write_url, auth } => {
                let mut body = String::with_capacity(batch.lines.iter().map(|l| l.len() + 1).sum());
                for l in &batch.lines {
                    body.push_str(l);
                    body.push('\n');
                }
                let mut req = self
                    .http
                    .post(write_url.clone())
                    .query(&[
                        ("db", batch.db.as_str()),
                        ("rp", batch.rp.as_str()),
                        ("precision", "ns"),
                    ])
                    .body(body);
                if let Some((user, password)) = auth {
                    req = req.basic_auth(user, Some(password));
                }
                let resp = req.send().await.map_err(|e| e.to_string())?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("{write_url}: {}", resp.status()))
                }
            }
            Destination::Udp { addr } => {
                let target = tokio::net::lookup_host(addr.as_str())
                    .await
                    .map_err(|e| format!("{addr}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{addr}: no address"))?;
                let local = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let sock = tokio::net::UdpSocket::bind(local)
                    .await
                    .map_err(|e| e.to_string())?;
                sock.connect(target).await.map_err(|e| e.to_string())?;
                for l in &batch.lines {
                    sock.send(l.as_bytes()).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }
}
