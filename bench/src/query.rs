//! The TSBS "devops" query types in InfluxQL, with seeded hosts and windows inside the loaded
//! range, timed K times each and compared with a second server's answers.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cpu::{CpuReading, wait_quiet};
use crate::generate::{FIELDS, hostname};
use crate::stats::Summary;
use crate::{Rng, rfc3339};

const HOUR: i64 = 3_600_000_000_000;

/// The query types, in TSBS's names.
pub const TYPES: [&str; 10] = [
    "single-groupby-1-1-1",
    "single-groupby-1-8-1",
    "single-groupby-5-1-12",
    "cpu-max-all-1",
    "double-groupby-1",
    "double-groupby-all",
    "high-cpu-1",
    "high-cpu-all",
    "lastpoint",
    "groupby-orderby-limit",
];

/// What the queries may range over.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub scale: u64,
    pub start: i64,
    pub end: i64,
}

fn hosts_clause(rng: &mut Rng, ds: &Dataset, n: usize) -> String {
    let mut picked: Vec<u64> = Vec::new();
    while picked.len() < n.min(ds.scale as usize) {
        let h = rng.below(ds.scale);
        if !picked.contains(&h) {
            picked.push(h);
        }
    }
    let parts: Vec<String> = picked
        .iter()
        .map(|h| format!("hostname = '{}'", hostname(*h)))
        .collect();
    format!("({})", parts.join(" OR "))
}

/// A random window of `len` inside the data set (the whole set if it is shorter).
fn window(rng: &mut Rng, ds: &Dataset, len: i64) -> (i64, i64) {
    let span = ds.end - ds.start;
    if span <= len {
        return (ds.start, ds.end);
    }
    // Whole minutes, as TSBS does.
    let start =
        ds.start + (rng.below(((span - len) / 60_000_000_000) as u64) as i64) * 60_000_000_000;
    (start, start + len)
}

fn maxes(n: usize) -> String {
    FIELDS[..n]
        .iter()
        .map(|f| format!("max({f})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn means(n: usize) -> String {
    FIELDS[..n]
        .iter()
        .map(|f| format!("mean({f})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One query of a type.
pub fn generate(kind: &str, rng: &mut Rng, ds: &Dataset) -> Option<String> {
    let q = match kind {
        "single-groupby-1-1-1" | "single-groupby-1-8-1" | "single-groupby-5-1-12" => {
            let (metrics, hosts, hours) = match kind {
                "single-groupby-1-1-1" => (1, 1, 1),
                "single-groupby-1-8-1" => (1, 8, 1),
                _ => (5, 1, 12),
            };
            let (a, b) = window(rng, ds, hours * HOUR);
            format!(
                "SELECT {} FROM cpu WHERE {} AND time >= '{}' AND time < '{}' GROUP BY time(1m)",
                maxes(metrics),
                hosts_clause(rng, ds, hosts),
                rfc3339(a),
                rfc3339(b)
            )
        }
        "cpu-max-all-1" => {
            let (a, b) = window(rng, ds, 8 * HOUR);
            format!(
                "SELECT {} FROM cpu WHERE {} AND time >= '{}' AND time < '{}' GROUP BY time(1h)",
                maxes(10),
                hosts_clause(rng, ds, 1),
                rfc3339(a),
                rfc3339(b)
            )
        }
        "double-groupby-1" | "double-groupby-all" => {
            let n = if kind == "double-groupby-1" { 1 } else { 10 };
            let (a, b) = window(rng, ds, 12 * HOUR);
            format!(
                "SELECT {} FROM cpu WHERE time >= '{}' AND time < '{}' GROUP BY time(1h), hostname",
                means(n),
                rfc3339(a),
                rfc3339(b)
            )
        }
        "high-cpu-1" | "high-cpu-all" => {
            let (a, b) = window(rng, ds, 12 * HOUR);
            let hosts = if kind == "high-cpu-1" {
                format!(" AND {}", hosts_clause(rng, ds, 1))
            } else {
                String::new()
            };
            format!(
                "SELECT * FROM cpu WHERE usage_user > 90.0 AND time >= '{}' AND time < '{}'{hosts}",
                rfc3339(a),
                rfc3339(b)
            )
        }
        "lastpoint" => "SELECT last(*) FROM cpu GROUP BY hostname".to_string(),
        "groupby-orderby-limit" => {
            let (_, end) = window(rng, ds, HOUR);
            // Bounded below as well: an unbounded GROUP BY time makes 1.x count buckets from 1677.
            format!(
                "SELECT max(usage_user) FROM cpu WHERE time < '{}' AND time >= '{}' GROUP BY time(1m) ORDER BY time DESC LIMIT 5",
                rfc3339(end),
                rfc3339(ds.start)
            )
        }
        _ => return None,
    };
    Some(q)
}

/// Per query type: the latencies and how many answers differed from the reference server.
#[derive(Debug, Clone)]
pub struct TypeReport {
    pub kind: String,
    pub latency: Summary,
    /// Every timed query's latency, in the order asked.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub mismatches: usize,
    pub example_mismatch: Option<String>,
    /// The server's CPU time per query (user + system, all threads), when its process id was
    /// given: steadier than latency on a shared machine, and what this machine's measurements
    /// of one build against another rest on.
    pub server_cpu: Option<Duration>,
    /// Whether the processes watched were quiet before the type was timed (`None`: none were
    /// watched).
    pub quiet: Option<bool>,
}

async fn run_one(
    client: &reqwest::Client,
    url: &str,
    db: &str,
    q: &str,
) -> Result<(Duration, Value), String> {
    let t0 = Instant::now();
    let resp = client
        .get(format!("{url}/query"))
        .query(&[("db", db), ("q", q)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let elapsed = t0.elapsed();
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    if !status.is_success() || v.get("error").is_some() || v["results"][0].get("error").is_some() {
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok((elapsed, v))
}

/// Equal as JSON, numbers within a relative 1e-9.
pub fn same_answer(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_answer(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_answer(v, w)))
        }
        _ => a == b,
    }
}

/// The seeded queries of one type, endless. Each type has its own stream, so adding a type
/// changes no other type's queries.
pub fn stream<'a>(kind: &'a str, seed: u64, ds: &'a Dataset) -> impl Iterator<Item = String> + 'a {
    let type_seed = kind
        .bytes()
        .fold(seed, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    let mut rng = Rng::new(type_seed);
    std::iter::from_fn(move || generate(kind, &mut rng, ds))
}

/// What [`run`] runs, and against what.
#[derive(Debug, Clone)]
pub struct QueryOptions<'a> {
    /// The server timed.
    pub url: &'a str,
    /// A server holding the same data whose answers Fletch's must equal (not timed).
    pub reference: Option<&'a str>,
    pub db: &'a str,
    pub ds: Dataset,
    pub types: &'a [&'a str],
    /// Queries timed per type.
    pub iterations: usize,
    /// Queries of each type's stream passed over before those timed, so that a run split into
    /// rounds (`skip` 0, 5, 10, ... with `iterations` 5) asks the same queries as one run.
    pub skip: usize,
    /// The data set's seed, from which each type's stream of queries is derived.
    pub seed: u64,
    /// The process serving `url` on this machine: each type also reports its CPU time per query.
    pub server_pid: Option<u32>,
    /// Processes that must be idle before each type is timed ([`wait_quiet`], bounded).
    pub quiet: &'a [u32],
}

/// Runs `iterations` queries of each type against `url` (and, unchanged, against `reference`
/// to compare the answers, after the timed ones).
pub async fn run(o: &QueryOptions<'_>) -> Result<Vec<TypeReport>, String> {
    let client = reqwest::Client::new();
    let (url, ds, quiet, server_pid, reference) =
        (o.url, &o.ds, o.quiet, o.server_pid, o.reference);
    let mut out = Vec::new();
    for kind in o.types {
        if !TYPES.contains(kind) {
            return Err(format!("unknown query type {kind}"));
        }
        let mut latencies = Vec::new();
        let (mut errors, mut mismatches, mut example) = (0, 0, None);
        let was_quiet = (!quiet.is_empty()).then_some(wait_quiet(quiet).await);
        let cpu_before = server_pid.map(CpuReading::of).transpose()?;
        let mut answers = Vec::new();
        for q in stream(kind, o.seed, ds).skip(o.skip).take(o.iterations) {
            match run_one(&client, url, o.db, &q).await {
                Ok((t, answer)) => {
                    latencies.push(t);
                    if reference.is_some() {
                        answers.push((q, answer));
                    }
                }
                Err(e) => {
                    errors += 1;
                    example.get_or_insert(format!("{q}: {e}"));
                }
            }
        }
        let server_cpu = match (server_pid, cpu_before) {
            (Some(pid), Some(before)) if o.iterations > 0 => {
                Some(CpuReading::of(pid)?.since(&before) / o.iterations as u32)
            }
            _ => None,
        };
        // The reference answers the same queries after the timed ones, so that its work (and
        // what it leaves running, such as a collector) does not overlap them.
        if let Some(r) = reference {
            for (q, answer) in answers {
                let expected = run_one(&client, r, o.db, &q).await.map(|(_, v)| v);
                if !expected.as_ref().is_ok_and(|e| same_answer(e, &answer)) {
                    mismatches += 1;
                    example.get_or_insert(q);
                }
            }
        }
        out.push(TypeReport {
            server_cpu,
            kind: kind.to_string(),
            latency: Summary::of(&latencies),
            latencies,
            errors,
            mismatches,
            example_mismatch: example,
            quiet: was_quiet,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_that_skip_ask_the_queries_of_one_run() {
        let ds = Dataset {
            scale: 4000,
            start: 1_451_606_400_000_000_000,
            end: 1_451_606_400_000_000_000 + HOUR,
        };
        for kind in TYPES {
            let whole: Vec<String> = stream(kind, 123, &ds).take(20).collect();
            let rounds: Vec<String> = (0..4)
                .flat_map(|r| stream(kind, 123, &ds).skip(5 * r).take(5))
                .collect();
            assert_eq!(whole, rounds, "{kind}");
        }
        // Different types, different streams.
        assert_ne!(
            stream("single-groupby-1-1-1", 123, &ds).next(),
            stream("single-groupby-1-8-1", 123, &ds).next()
        );
    }

    #[test]
    fn every_type_generates_inside_the_data_set() {
        let ds = Dataset {
            scale: 100,
            start: 1_451_606_400_000_000_000,
            end: 1_451_606_400_000_000_000 + 12 * HOUR,
        };
        let mut rng = Rng::new(1);
        for kind in TYPES {
            let q = generate(kind, &mut rng, &ds).unwrap();
            assert!(q.starts_with("SELECT"), "{q}");
        }
        let q = generate("single-groupby-1-8-1", &mut rng, &ds).unwrap();
        assert_eq!(q.matches("hostname = 'host_").count(), 8, "{q}");
    }
}
