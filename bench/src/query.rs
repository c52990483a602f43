//! The TSBS "devops" query types in InfluxQL, with seeded hosts and windows inside the loaded
//! range, timed K times each and compared with a second server's answers.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cpu::{CpuReading, wait_quiet};
use crate::generate::{FIELDS, hostname};
use crate::stats::Summary;
use crate::{Rng, rfc3339};

const HOUR: i64 = 3_600_000_000_000;

/// The query types, in TSBS's names, then two earlier forms of Fletch's benchmark kept for
/// comparison: `lastpoint-last` (`last(*)` per host) and `groupby-orderby-limit-desc` (the
/// newest five minutes of a bounded hour).
pub const TYPES: [&str; 12] = [
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
    "lastpoint-last",
    "groupby-orderby-limit-desc",
];

/// Query types of the high-cardinality data set (many hosts, few rows each), InfluxQL only:
/// the series count, one host's values of a tag, and one host's rows.
pub const CARDINALITY_TYPES: [&str; 3] = ["series-cardinality", "tag-values-1", "single-host-1"];

/// Whether `kind` is a query type [`run`] knows.
pub fn known(kind: &str) -> bool {
    TYPES.contains(&kind) || CARDINALITY_TYPES.contains(&kind)
}

/// What the queries may range over.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub scale: u64,
    pub start: i64,
    pub end: i64,
}

const SECOND: i64 = 1_000_000_000;

/// A random window of `len` inside the data set (the whole set if it is shorter).
fn window(rng: &mut Rng, ds: &Dataset, len: i64) -> (i64, i64) {
    let span = ds.end - ds.start;
    if span <= len {
        return (ds.start, ds.end);
    }
    // Whole seconds: TSBS draws a nanosecond and writes it in RFC 3339 without a fraction.
    let start = ds.start + (rng.below(((span - len) / SECOND) as u64) as i64) * SECOND;
    (start, start + len)
}

/// `f(field)` for the first `n` fields, joined by `sep` (TSBS joins with `", "` in most types
/// and with `","` in `cpu-max-all`).
fn calls(f: &str, n: usize, sep: &str) -> String {
    FIELDS[..n]
        .iter()
        .map(|field| format!("{f}({field})"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// What one query of a type asks about: its hosts and its window, drawn from the type's
/// seeded stream. [`influxql`] and [`sql`] write the same pick in each language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub kind: String,
    pub hosts: Vec<u64>,
    pub start: i64,
    pub end: i64,
}

fn pick_hosts(rng: &mut Rng, ds: &Dataset, n: usize) -> Vec<u64> {
    let mut picked: Vec<u64> = Vec::new();
    while picked.len() < n.min(ds.scale as usize) {
        let h = rng.below(ds.scale);
        if !picked.contains(&h) {
            picked.push(h);
        }
    }
    picked
}

/// The next pick of a type (`None`: not a type).
pub fn pick(kind: &str, rng: &mut Rng, ds: &Dataset) -> Option<Pick> {
    let (hosts, (start, end)) = match kind {
        "single-groupby-1-1-1" | "single-groupby-1-8-1" | "single-groupby-5-1-12" => {
            let (hosts, hours) = match kind {
                "single-groupby-1-1-1" => (1, 1),
                "single-groupby-1-8-1" => (8, 1),
                _ => (1, 12),
            };
            let w = window(rng, ds, hours * HOUR);
            (pick_hosts(rng, ds, hosts), w)
        }
        "cpu-max-all-1" => {
            let w = window(rng, ds, 8 * HOUR);
            (pick_hosts(rng, ds, 1), w)
        }
        "double-groupby-1" | "double-groupby-all" | "high-cpu-all" => {
            (Vec::new(), window(rng, ds, 12 * HOUR))
        }
        "high-cpu-1" => {
            let w = window(rng, ds, 12 * HOUR);
            (pick_hosts(rng, ds, 1), w)
        }
        "series-cardinality" => (Vec::new(), (ds.start, ds.end)),
        "tag-values-1" | "single-host-1" => (pick_hosts(rng, ds, 1), (ds.start, ds.end)),
        "lastpoint" | "lastpoint-last" => (Vec::new(), (ds.start, ds.end)),
        // TSBS's form is bounded above only; the kept form is bounded below by the data set.
        "groupby-orderby-limit" | "groupby-orderby-limit-desc" => {
            (Vec::new(), (ds.start, window(rng, ds, HOUR).1))
        }
        _ => return None,
    };
    Some(Pick {
        kind: kind.to_string(),
        hosts,
        start,
        end,
    })
}

fn metrics_of(kind: &str) -> usize {
    match kind {
        "single-groupby-5-1-12" => 5,
        "cpu-max-all-1" | "double-groupby-all" => 10,
        _ => 1,
    }
}

/// `p` in InfluxQL, exactly as TSBS's InfluxDB query generator
/// (`cmd/tsbs_generate_queries/databases/influx/devops.go`) writes it, case and spacing included.
pub fn influxql(p: &Pick) -> String {
    let hosts = || {
        let parts: Vec<String> = p
            .hosts
            .iter()
            .map(|h| format!("hostname = '{}'", hostname(*h)))
            .collect();
        format!("({})", parts.join(" or "))
    };
    let (a, b) = (rfc3339(p.start), rfc3339(p.end));
    let n = metrics_of(&p.kind);
    match p.kind.as_str() {
        "single-groupby-1-1-1" | "single-groupby-1-8-1" | "single-groupby-5-1-12" => format!(
            "SELECT {} from cpu where {} and time >= '{a}' and time < '{b}' group by time(1m)",
            calls("max", n, ", "),
            hosts()
        ),
        "cpu-max-all-1" => format!(
            "SELECT {} from cpu where {} and time >= '{a}' and time < '{b}' group by time(1h)",
            calls("max", n, ","),
            hosts()
        ),
        "double-groupby-1" | "double-groupby-all" => format!(
            "SELECT {} from cpu where time >= '{a}' and time < '{b}' group by time(1h),hostname",
            calls("mean", n, ", ")
        ),
        "high-cpu-1" => format!(
            "SELECT * from cpu where usage_user > 90.0 and {} and time >= '{a}' and time < '{b}'",
            hosts()
        ),
        // Two spaces: TSBS fills an empty host clause in.
        "high-cpu-all" => {
            format!("SELECT * from cpu where usage_user > 90.0  and time >= '{a}' and time < '{b}'")
        }
        "lastpoint" => "SELECT * from cpu group by \"hostname\" order by time desc limit 1".into(),
        "lastpoint-last" => "SELECT last(*) FROM cpu GROUP BY hostname".into(),
        "groupby-orderby-limit" => {
            format!("SELECT max(usage_user) from cpu WHERE time < '{b}' group by time(1m) limit 5")
        }
        "series-cardinality" => "SHOW SERIES CARDINALITY".into(),
        "tag-values-1" => format!(
            "SHOW TAG VALUES FROM cpu WITH KEY = \"rack\" WHERE {}",
            hosts()
        ),
        "single-host-1" => format!("SELECT * FROM cpu WHERE {}", hosts()),
        _ => format!(
            "SELECT max(usage_user) FROM cpu WHERE time < '{b}' AND time >= '{a}' GROUP BY time(1m) ORDER BY time DESC LIMIT 5"
        ),
    }
}

/// InfluxQL's name for the `i`th of several calls of `f` (`max`, `max_1`, ...).
fn column_name(f: &str, i: usize) -> String {
    if i == 0 {
        f.to_string()
    } else {
        format!("{f}_{i}")
    }
}

fn sql_calls(f: &str, sql_f: &str, n: usize) -> String {
    FIELDS[..n]
        .iter()
        .enumerate()
        .map(|(i, field)| format!("{sql_f}({field}) AS {}", column_name(f, i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `p` in SQL, over Flight SQL: the same numbers as [`influxql`], under InfluxQL's column
/// names (so the two answers compare row by row). Empty `GROUP BY time` buckets, which
/// InfluxQL fills with nulls, have no row in SQL.
pub fn sql(p: &Pick) -> String {
    let hosts = || {
        let parts: Vec<String> = p
            .hosts
            .iter()
            .map(|h| format!("'{}'", hostname(*h)))
            .collect();
        format!("hostname IN ({})", parts.join(", "))
    };
    let (a, b) = (rfc3339(p.start), rfc3339(p.end));
    let n = metrics_of(&p.kind);
    match p.kind.as_str() {
        "single-groupby-1-1-1" | "single-groupby-1-8-1" | "single-groupby-5-1-12" => format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS time, {} FROM cpu \
             WHERE {} AND time >= '{a}' AND time < '{b}' GROUP BY 1 ORDER BY 1",
            sql_calls("max", "max", n),
            hosts()
        ),
        "cpu-max-all-1" => format!(
            "SELECT date_bin(INTERVAL '1 hour', time) AS time, {} FROM cpu \
             WHERE {} AND time >= '{a}' AND time < '{b}' GROUP BY 1 ORDER BY 1",
            sql_calls("max", "max", n),
            hosts()
        ),
        "double-groupby-1" | "double-groupby-all" => format!(
            "SELECT date_bin(INTERVAL '1 hour', time) AS time, hostname, {} FROM cpu \
             WHERE time >= '{a}' AND time < '{b}' GROUP BY 1, 2 ORDER BY 2, 1",
            sql_calls("mean", "avg", n)
        ),
        "high-cpu-1" => format!(
            "SELECT * FROM cpu WHERE usage_user > 90.0 AND time >= '{a}' AND time < '{b}' AND {} \
             ORDER BY time",
            hosts()
        ),
        "high-cpu-all" => format!(
            "SELECT * FROM cpu WHERE usage_user > 90.0 AND time >= '{a}' AND time < '{b}' ORDER BY time, hostname"
        ),
        // The newest row of each host: its fields are last(*)'s (every field is set on every
        // row of this data set).
        // Each host's newest row, every column.
        "lastpoint" => {
            "SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC".to_string()
        }
        "lastpoint-last" => format!(
            "SELECT DISTINCT ON (hostname) hostname, {} FROM cpu ORDER BY hostname, time DESC",
            FIELDS
                .iter()
                .map(|f| format!("{f} AS last_{f}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "groupby-orderby-limit" => format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS time, max(usage_user) AS max FROM cpu \
             WHERE time < '{b}' GROUP BY 1 ORDER BY 1 LIMIT 5"
        ),
        _ => format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS time, max(usage_user) AS max FROM cpu \
             WHERE time < '{b}' AND time >= '{a}' GROUP BY 1 ORDER BY 1 DESC LIMIT 5"
        ),
    }
}

/// One query of a type, in InfluxQL.
pub fn generate(kind: &str, rng: &mut Rng, ds: &Dataset) -> Option<String> {
    pick(kind, rng, ds).map(|p| influxql(&p))
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
    run_with(client, url, &[("db", db), ("q", q)]).await
}

async fn run_with(
    client: &reqwest::Client,
    url: &str,
    params: &[(&str, &str)],
) -> Result<(Duration, Value), String> {
    let t0 = Instant::now();
    let resp = client
        .get(format!("{url}/query"))
        .query(params)
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
    picks(kind, seed, ds).map(|p| influxql(&p))
}

/// The seeded picks of one type, endless ([`stream`] writes them in InfluxQL).
pub fn picks<'a>(kind: &'a str, seed: u64, ds: &'a Dataset) -> impl Iterator<Item = Pick> + 'a {
    let type_seed = kind
        .bytes()
        .fold(seed, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    let mut rng = Rng::new(type_seed);
    std::iter::from_fn(move || pick(kind, &mut rng, ds))
}

/// The language queries are timed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// InfluxQL over HTTP `/query` (JSON).
    #[default]
    InfluxQl,
    /// SQL over Arrow Flight SQL on the same port; the reference answers the InfluxQL form.
    Sql,
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
    /// The language timed. In SQL, `reference` answers each query's InfluxQL form and the
    /// numbers must agree ([`crate::sql::same_rows`]).
    pub language: Language,
}

/// Runs `iterations` queries of each type against `url` (and, unchanged, against `reference`
/// to compare the answers, after the timed ones).
pub async fn run(o: &QueryOptions<'_>) -> Result<Vec<TypeReport>, String> {
    let client = reqwest::Client::new();
    let (url, ds, quiet, server_pid, reference) =
        (o.url, &o.ds, o.quiet, o.server_pid, o.reference);
    let mut sql_client = match o.language {
        Language::Sql => Some(crate::sql::SqlClient::connect(url, o.db).await?),
        Language::InfluxQl => None,
    };
    let mut out = Vec::new();
    for kind in o.types {
        if !known(kind) {
            return Err(format!("unknown query type {kind}"));
        }
        if o.language == Language::Sql && CARDINALITY_TYPES.contains(kind) {
            return Err(format!("{kind} has no SQL form"));
        }
        let mut latencies = Vec::new();
        let (mut errors, mut mismatches, mut example) = (0, 0, None);
        let was_quiet = (!quiet.is_empty()).then_some(wait_quiet(quiet).await);
        let cpu_before = server_pid.map(CpuReading::of).transpose()?;
        let mut answers = Vec::new();
        let mut sql_answers = Vec::new();
        for p in picks(kind, o.seed, ds).skip(o.skip).take(o.iterations) {
            let answer = match (&mut sql_client, o.language) {
                (Some(c), Language::Sql) => {
                    let q = sql(&p);
                    c.run(&q)
                        .await
                        .map(|(t, batches)| {
                            if reference.is_some() {
                                sql_answers.push((p.clone(), q.clone(), batches));
                            }
                            t
                        })
                        .map_err(|e| format!("{q}: {e}"))
                }
                _ => {
                    let q = influxql(&p);
                    run_one(&client, url, o.db, &q)
                        .await
                        .map(|(t, answer)| {
                            if reference.is_some() {
                                answers.push((q.clone(), answer));
                            }
                            t
                        })
                        .map_err(|e| format!("{q}: {e}"))
                }
            };
            match answer {
                Ok(t) => latencies.push(t),
                Err(e) => {
                    errors += 1;
                    example.get_or_insert(e);
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
            for (p, q, batches) in sql_answers {
                let iql = influxql(&p);
                let expected = run_with(&client, r, &[("db", o.db), ("q", &iql), ("epoch", "ns")])
                    .await
                    .map(|(_, v)| crate::sql::influxql_rows(&v));
                let got = crate::sql::sql_rows(&batches);
                let verdict = match (got, expected) {
                    (Ok(g), Ok(e)) => crate::sql::same_rows(&g, &e),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
                if let Err(why) = verdict {
                    mismatches += 1;
                    example.get_or_insert(format!("{q} vs {iql}: {why}"));
                }
            }
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
        for kind in CARDINALITY_TYPES {
            assert!(known(kind));
            let q = generate(kind, &mut rng, &ds).unwrap();
            assert!(
                q.starts_with("SHOW") || q.contains("hostname = 'host_"),
                "{q}"
            );
        }
        // TSBS's own texts, byte for byte.
        assert_eq!(
            generate("lastpoint", &mut rng, &ds).unwrap(),
            "SELECT * from cpu group by \"hostname\" order by time desc limit 1"
        );
        let q = generate("groupby-orderby-limit", &mut rng, &ds).unwrap();
        assert!(
            q.starts_with("SELECT max(usage_user) from cpu WHERE time < '2016-01-01T")
                && q.ends_with("Z' group by time(1m) limit 5"),
            "{q}"
        );
        let q = generate("high-cpu-all", &mut rng, &ds).unwrap();
        assert!(
            q.starts_with("SELECT * from cpu where usage_user > 90.0  and time >= '"),
            "{q}"
        );
        let q = generate("single-groupby-1-8-1", &mut rng, &ds).unwrap();
        assert_eq!(q.matches("hostname = 'host_").count(), 8, "{q}");
        assert_eq!(q.matches(" or ").count(), 7, "{q}");
    }
}
