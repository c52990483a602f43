//! `GET /metrics`: the node's counters in Prometheus' text format (0.0.4).
//!
//! ```text
//!   HTTP API requests ──record()──▶ REQUESTS (by endpoint and status), durations, points
//!   ingester::metrics (WAL fsync, persist, compaction), buffer bytes      ┐
//!   queries running / slow, hinted-handoff queues, Raft metrics            ├─▶ render() ─▶ text
//! ```
//!
//! Counters are per process (one `fletchd` is one node). Every name is listed in
//! docs/operations.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the request duration histogram's buckets.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Requests {
    /// (endpoint, status) → count.
    by_status: BTreeMap<(&'static str, u16), u64>,
    /// endpoint → durations.
    durations: BTreeMap<&'static str, Histogram>,
}

static REQUESTS: Mutex<Option<Requests>> = Mutex::new(None);
/// Points `/write` (and the v2/v3 writes) accepted.
static POINTS_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// The endpoint a path counts under; `None` for paths not counted.
pub fn endpoint(path: &str) -> Option<&'static str> {
    Some(match path {
        "/write" => "write",
        "/api/v2/write" => "write_v2",
        "/api/v3/write_lp" => "write_v3",
        "/query" => "query",
        "/api/v3/query_sql" => "query_sql",
        "/api/v3/query_influxql" => "query_influxql",
        _ => return None,
    })
}

/// One finished request of `endpoint`.
pub fn record(endpoint: &'static str, status: u16, took: Duration) {
    let mut guard = REQUESTS.lock().unwrap_or_else(|p| p.into_inner());
    let r = guard.get_or_insert_with(Requests::default);
    *r.by_status.entry((endpoint, status)).or_default() += 1;
    let h = r.durations.entry(endpoint).or_default();
    let secs = took.as_secs_f64();
    for (i, le) in BUCKETS.iter().enumerate() {
        if secs <= *le {
            h.buckets[i] += 1;
        }
    }
    h.count += 1;
    h.sum += secs;
}

/// The HTTP API's totals as 1.x's `httpd` statistics name them.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct HttpdTotals {
    pub query_req: u64,
    pub write_req: u64,
    /// Answers with a 4xx status, and 5xx.
    pub client_error: u64,
    pub server_error: u64,
    /// Requests refused for missing or wrong credentials (401).
    pub auth_fail: u64,
    pub query_ns: u64,
    pub write_ns: u64,
    pub points_written: u64,
}

/// What the counted endpoints have answered so far.
pub fn httpd_totals() -> HttpdTotals {
    let guard = REQUESTS.lock().unwrap_or_else(|p| p.into_inner());
    let mut t = HttpdTotals {
        points_written: POINTS_WRITTEN.load(Ordering::Relaxed),
        ..HttpdTotals::default()
    };
    let Some(r) = guard.as_ref() else {
        return t;
    };
    let is_write = |e: &str| e.starts_with("write");
    for ((endpoint, status), n) in &r.by_status {
        match is_write(endpoint) {
            true => t.write_req += n,
            false => t.query_req += n,
        }
        match status {
            401 => {
                t.auth_fail += n;
                t.client_error += n;
            }
            400..=499 => t.client_error += n,
            500..=599 => t.server_error += n,
            _ => {}
        }
    }
    for (endpoint, h) in &r.durations {
        let ns = (h.sum * 1e9) as u64;
        match is_write(endpoint) {
            true => t.write_ns += ns,
            false => t.query_ns += ns,
        }
    }
    t
}

/// Points a write accepted.
pub fn points_written(n: u64) {
    POINTS_WRITTEN.fetch_add(n, Ordering::Relaxed);
}

/// What the exposition reads from the node's services.
#[derive(Debug, Default)]
pub struct Gauges {
    pub buffer_bytes: Option<u64>,
    pub queries_running: u64,
    pub slow_queries: u64,
    /// Query requests started and finished on this node, and the seconds the finished ones
    /// took in all (every protocol: InfluxQL, SQL over HTTP and Flight SQL).
    pub queries: (u64, u64, f64),
    /// Bytes query operators hold now, and the node's pool (0: unbounded).
    pub query_memory: (u64, u64),
    /// Spill files queries wrote since start, and bytes in spill files now.
    pub spill: (u64, u64),
    /// Per destination node: queued bytes, queued writes.
    pub hinted_handoff: Vec<(u64, u64, u64)>,
    pub raft_term: u64,
    pub raft_leader: Option<u64>,
    pub raft_applied_index: Option<u64>,
    pub raft_last_log_index: Option<u64>,
    pub node_id: u64,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition.
pub fn render(g: &Gauges) -> String {
    let mut out = String::new();
    {
        let guard = REQUESTS.lock().unwrap_or_else(|p| p.into_inner());
        let empty = Requests::default();
        let r = guard.as_ref().unwrap_or(&empty);
        family(
            &mut out,
            "fletch_http_requests_total",
            "counter",
            "HTTP API requests answered, by endpoint and status.",
        );
        for ((endpoint, status), n) in &r.by_status {
            let _ = writeln!(
                out,
                "fletch_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        family(
            &mut out,
            "fletch_http_request_duration_seconds",
            "histogram",
            "How long HTTP API requests took until their answer began, by endpoint.",
        );
        for (endpoint, h) in &r.durations {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "fletch_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{le}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "fletch_http_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "fletch_http_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "fletch_http_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}",
                h.count
            );
        }
    }
    family(
        &mut out,
        "fletch_points_written_total",
        "counter",
        "Points the write endpoints accepted.",
    );
    let _ = writeln!(
        out,
        "fletch_points_written_total {}",
        POINTS_WRITTEN.load(Ordering::Relaxed)
    );
    let subs = &coordinator::subscriber::METRICS;
    for (name, help, v) in [
        (
            "fletch_udp_points_received_total",
            "Points the [[udp]] listeners received.",
            &crate::udp::POINTS_RECEIVED,
        ),
        (
            "fletch_udp_points_dropped_total",
            "Points the [[udp]] listeners could not write (bad lines, refused points, failed writes).",
            &crate::udp::POINTS_DROPPED,
        ),
        (
            "fletch_subscriber_points_written_total",
            "Points a subscription's destination accepted.",
            &subs.points_written,
        ),
        (
            "fletch_subscriber_write_failures_total",
            "Sends to a subscription's destination that failed, and writes dropped because a subscription's queue was full.",
            &subs.write_failures,
        ),
        (
            "fletch_subscriber_create_failures_total",
            "Subscriptions this node could not start.",
            &subs.create_failures,
        ),
    ] {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
    }
    for (name, help, t) in [
        (
            "fletch_wal_fsync_seconds",
            "WAL appends (write and fsync), before a write is acknowledged.",
            &ingester::metrics::WAL_FSYNC,
        ),
        (
            "fletch_persist_seconds",
            "Persists of the write buffer to Parquet.",
            &ingester::metrics::PERSIST,
        ),
        (
            "fletch_compaction_seconds",
            "Compaction passes over the shards.",
            &ingester::metrics::COMPACTION,
        ),
    ] {
        family(&mut out, name, "summary", help);
        let _ = writeln!(out, "{name}_sum {}", t.seconds());
        let _ = writeln!(out, "{name}_count {}", t.count());
    }
    if let Some(b) = g.buffer_bytes {
        family(
            &mut out,
            "fletch_write_buffer_bytes",
            "gauge",
            "Bytes buffered in memory and not yet persisted.",
        );
        let _ = writeln!(out, "fletch_write_buffer_bytes {b}");
    }
    family(
        &mut out,
        "fletch_queries_running",
        "gauge",
        "Query requests running on this node (SHOW QUERIES).",
    );
    let _ = writeln!(out, "fletch_queries_running {}", g.queries_running);
    family(
        &mut out,
        "fletch_slow_queries_total",
        "counter",
        "Query requests that ran past [coordinator] log-queries-after.",
    );
    let _ = writeln!(out, "fletch_slow_queries_total {}", g.slow_queries);
    family(
        &mut out,
        "fletch_queries_total",
        "counter",
        "Query requests started on this node: InfluxQL, SQL over HTTP and Flight SQL.",
    );
    let _ = writeln!(out, "fletch_queries_total {}", g.queries.0);
    family(
        &mut out,
        "fletch_query_seconds",
        "summary",
        "Query requests that finished, and how long they took in all (every protocol).",
    );
    let _ = writeln!(out, "fletch_query_seconds_sum {}", g.queries.2);
    let _ = writeln!(out, "fletch_query_seconds_count {}", g.queries.1);
    for (name, kind, help, v) in [
        (
            "fletch_query_memory_bytes",
            "gauge",
            "Bytes query operators hold now ([coordinator] query-pool-bytes bounds them).",
            g.query_memory.0,
        ),
        (
            "fletch_query_memory_limit_bytes",
            "gauge",
            "The node's query memory pool (0: unbounded).",
            g.query_memory.1,
        ),
        (
            "fletch_query_spill_files_total",
            "counter",
            "Files queries spilled to [data] dir/spill since the node started.",
            g.spill.0,
        ),
        (
            "fletch_query_spill_bytes",
            "gauge",
            "Bytes in query spill files now.",
            g.spill.1,
        ),
    ] {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(
        &mut out,
        "fletch_hinted_handoff_queue_bytes",
        "gauge",
        "Bytes queued for another data node, by destination.",
    );
    for (node, bytes, _) in &g.hinted_handoff {
        let _ = writeln!(
            out,
            "fletch_hinted_handoff_queue_bytes{{node=\"{node}\"}} {bytes}"
        );
    }
    family(
        &mut out,
        "fletch_hinted_handoff_queue_writes",
        "gauge",
        "Writes queued for another data node, by destination.",
    );
    for (node, _, writes) in &g.hinted_handoff {
        let _ = writeln!(
            out,
            "fletch_hinted_handoff_queue_writes{{node=\"{node}\"}} {writes}"
        );
    }
    family(
        &mut out,
        "fletch_raft_term",
        "gauge",
        "The catalog's current Raft term as this node knows it.",
    );
    let _ = writeln!(out, "fletch_raft_term {}", g.raft_term);
    family(
        &mut out,
        "fletch_raft_leader",
        "gauge",
        "The Raft leader's node id (0: none known).",
    );
    let _ = writeln!(out, "fletch_raft_leader {}", g.raft_leader.unwrap_or(0));
    family(
        &mut out,
        "fletch_raft_is_leader",
        "gauge",
        "1 when this node is the Raft leader.",
    );
    let _ = writeln!(
        out,
        "fletch_raft_is_leader {}",
        u8::from(g.raft_leader == Some(g.node_id))
    );
    family(
        &mut out,
        "fletch_raft_applied_index",
        "gauge",
        "The last Raft log index this node applied to its catalog.",
    );
    let _ = writeln!(
        out,
        "fletch_raft_applied_index {}",
        g.raft_applied_index.unwrap_or(0)
    );
    family(
        &mut out,
        "fletch_raft_last_log_index",
        "gauge",
        "The last index in this node's Raft log.",
    );
    let _ = writeln!(
        out,
        "fletch_raft_last_log_index {}",
        g.raft_last_log_index.unwrap_or(0)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_prometheus_text() {
        record("write", 204, Duration::from_millis(2));
        record("write", 400, Duration::from_millis(20));
        points_written(3);
        let text = render(&Gauges {
            raft_leader: Some(1),
            node_id: 1,
            hinted_handoff: vec![(4, 100, 2)],
            ..Default::default()
        });
        assert!(text.contains("fletch_http_requests_total{endpoint=\"write\",status=\"204\"}"));
        assert!(text.contains(
            "fletch_http_request_duration_seconds_bucket{endpoint=\"write\",le=\"0.005\"}"
        ));
        assert!(text.contains("fletch_raft_is_leader 1\n"));
        assert!(text.contains("fletch_hinted_handoff_queue_bytes{node=\"4\"} 100\n"));
        // Every sample belongs to a family declared with HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} "))
                    || text.contains(&format!("# TYPE {name} ")),
                "{line}"
            );
        }
    }
}
