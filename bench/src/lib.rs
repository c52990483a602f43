//! # fletch-bench: the project's performance yardstick
//!
//! A load generator and query benchmark in the shape of the Time Series Benchmark Suite (TSBS)
//! "devops cpu-only" use case, for any server that speaks the InfluxDB 1.x HTTP API, so that
//! Fletch and InfluxDB are measured by the same client in the same run.
//!
//! ```text
//!   generate: seed ─▶ hosts (tags) ─▶ every 10 s per host: cpu row, 10 fields (random walks)
//!   load:     lines ─▶ batches ─▶ N connections ─▶ POST /write ─▶ points/s, latency percentiles
//!   query:    TSBS query types with seeded hosts and windows ─▶ GET /query, K times each
//!             ─▶ min/median/p95/p99, and the answers compared with a second server
//!             (--language sql: the same picks in SQL over Arrow Flight SQL, compared with
//!             the InfluxQL answers of the reference)
//!   flight:   a full-table SELECT over Flight SQL ─▶ rows/s, time to the first batch
//! ```
//!
//! What it must not do: link any of Fletch's crates. It is a client, like TSBS.

pub mod cpu;
pub mod generate;
pub mod load;
pub mod query;
pub mod sql;
pub mod stats;

/// A small deterministic PRNG (xorshift64*), so that a seed gives the same data with every
/// build and every version of every dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Parses `10s`, `1h`, `12h`, `30m` into nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// RFC3339 (seconds) for a nanosecond time.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Parses an RFC3339 time into nanoseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()?
        .timestamp_nanos_opt()
}
