//! `[[udp]]`: line protocol over UDP (1.x's UDP service, what collectd-style senders and the
//! Python client's `use_udp` / `send_packet` use).
//!
//! ```text
//!  datagram ─▶ parse (the listener's precision; a bad line is dropped and logged)
//!     ─▶ batch (batch-size points, or batch-timeout) ─▶ PointsWriter::write(database, rp)
//! ```
//!
//! UDP has no answer: points that cannot be written are logged and counted, never reported to
//! the sender (as in 1.x). The listener creates its database if it is missing, as 1.x does.
//!
//! What it must not touch: the write path's internals (it is one more client of the
//! coordinator's `PointsWriter`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use catalog::MetaService;
use coordinator::PointsWriter;
use line_protocol::{ParseOptions, Point, Precision, parse_body};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::config::UdpConfig;

/// What the UDP listeners did (per process), for `/metrics`.
pub static POINTS_RECEIVED: AtomicU64 = AtomicU64::new(0);
pub static POINTS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Binds the listener (an error here stops the node at start, as a bad `[http]` address does).
pub async fn bind(cfg: &UdpConfig) -> Result<UdpSocket, std::io::Error> {
    let addr = crate::config::parse_addr(&cfg.bind_address)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let sock = UdpSocket::bind(addr).await?;
    tracing::info!(addr = %cfg.bind_address, database = %cfg.database, "UDP listener bound");
    Ok(sock)
}

/// Receives datagrams until `stop`, writing them in batches.
pub async fn serve(
    sock: UdpSocket,
    cfg: UdpConfig,
    meta: Arc<MetaService>,
    writer: PointsWriter,
    mut stop: watch::Receiver<bool>,
) {
    let precision = Precision::from_param(&cfg.precision);
    let batch_size = cfg.batch_size.max(1);
    let timeout = cfg.batch_timeout.0.max(Duration::from_millis(1));
    let mut buf = vec![0u8; 65536];
    let mut batch: Vec<Point<'static>> = Vec::new();
    let mut tick = tokio::time::interval(timeout);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                flush(&cfg, &meta, &writer, &mut batch).await;
                return;
            }
            _ = tick.tick() => flush(&cfg, &meta, &writer, &mut batch).await,
            got = sock.recv_from(&mut buf) => {
                let Ok((n, _)) = got else { continue };
                let opts = ParseOptions {
                    precision,
                    default_time: ingester::now_nanos(),
                    allow_unsigned: false,
                };
                let parsed = parse_body(&buf[..n], &opts);
                if let Some(e) = parsed.error_text() {
                    POINTS_DROPPED.fetch_add(parsed.errors.len() as u64, Ordering::Relaxed);
                    tracing::info!(database = %cfg.database, "UDP: lines dropped: {e}");
                }
                POINTS_RECEIVED.fetch_add(parsed.points.len() as u64, Ordering::Relaxed);
                batch.extend(parsed.points.into_iter().map(Point::into_owned));
                if batch.len() >= batch_size {
                    flush(&cfg, &meta, &writer, &mut batch).await;
                }
            }
        }
    }
}

async fn flush(
    cfg: &UdpConfig,
    meta: &MetaService,
    writer: &PointsWriter,
    batch: &mut Vec<Point<'static>>,
) {
    if batch.is_empty() {
        return;
    }
    let points = std::mem::take(batch);
    let n = points.len() as u64;
    if meta.catalog().database(&cfg.database).is_none() {
        if let Err(e) = meta.create_database(&cfg.database, None).await {
            POINTS_DROPPED.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(database = %cfg.database, "UDP: cannot create the database: {e}");
            return;
        }
    }
    match writer
        .write(
            &cfg.database,
            &cfg.retention_policy,
            points,
            ingester::now_nanos(),
        )
        .await
    {
        Ok(outcome) if outcome.dropped > 0 => {
            POINTS_DROPPED.fetch_add(outcome.dropped as u64, Ordering::Relaxed);
            tracing::info!(
                database = %cfg.database,
                "UDP: {} points dropped: {}",
                outcome.dropped,
                outcome.reason.unwrap_or_default()
            );
        }
        Ok(_) => {}
        Err(e) => {
            POINTS_DROPPED.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(database = %cfg.database, "UDP: write failed: {e}");
        }
    }
}
