//! `fletch-bench`: TSBS-shaped data, load and queries. Everything happens in the library.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use fletch_bench::generate::{FIELDS, Spec};
use fletch_bench::query::{Dataset, TYPES};
use fletch_bench::stats::ms;
use fletch_bench::{load, parse_duration, parse_time, query};
use tokio::signal::unix::SignalKind;

/// Benchmark an InfluxDB-1.x-compatible server with TSBS "devops cpu-only" data and queries.
#[derive(Debug, Parser)]
#[command(name = "fletch-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, clap::Args)]
struct Data {
    /// Number of hosts.
    #[arg(long, default_value_t = 100)]
    scale: u64,
    /// First timestamp (RFC3339).
    #[arg(long, default_value = "2016-01-01T00:00:00Z")]
    start: String,
    /// Length of the data set (`12h`, `1h`, ...).
    #[arg(long, default_value = "12h")]
    duration: String,
    #[arg(long, default_value_t = 123)]
    seed: u64,
    /// The first host's number (`host_<n>`): a load of other hosts over the same times.
    #[arg(long, default_value_t = 0)]
    host_offset: u64,
}

impl Data {
    fn spec(&self) -> Result<Spec, String> {
        let start =
            parse_time(&self.start).ok_or_else(|| format!("bad --start {:?}", self.start))?;
        let duration = parse_duration(&self.duration)
            .ok_or_else(|| format!("bad --duration {:?}", self.duration))?;
        Ok(Spec {
            scale: self.scale,
            start,
            duration,
            seed: self.seed,
            host_offset: self.host_offset,
        })
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the query types `query` runs, one per line.
    Types,
    /// Write the data set as line protocol to stdout (or --out).
    Generate {
        #[command(flatten)]
        data: Data,
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Generate the data set in memory, then post it to /write and report the throughput
    /// (with --rate: generated while posted, at that rate at most).
    Load {
        #[command(flatten)]
        data: Data,
        /// Server base URL; several, comma-separated (a cluster's nodes), share the
        /// connections round robin.
        #[arg(long, default_value = "http://127.0.0.1:8086", value_delimiter = ',')]
        url: Vec<String>,
        #[arg(long, default_value = "benchmark")]
        db: String,
        /// Create the database `WITH REPLICATION n` (each shard on n data nodes).
        #[arg(long)]
        replication: Option<u32>,
        /// Concurrent connections.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Lines per request.
        #[arg(long, default_value_t = 5000)]
        batch_size: usize,
        /// Process ids on this machine (another server still compacting what it was loaded
        /// with, say) that must be idle before the load starts: the bench waits, at most 2 min,
        /// until they use under 2% of a core.
        #[arg(long, value_delimiter = ',')]
        quiet_pid: Vec<u32>,
        /// Post at most this many points per second, generating the data set while posting
        /// (it need not fit in memory): a steady load beside queries.
        #[arg(long)]
        rate: Option<f64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the TSBS query types against --url (and --reference, to compare the answers).
    Query {
        #[command(flatten)]
        data: Data,
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        /// A second server holding the same data: every answer must equal its answer.
        #[arg(long)]
        reference: Option<String>,
        #[arg(long, default_value = "benchmark")]
        db: String,
        /// Queries of each type.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        /// Queries of each type's seeded stream to pass over first: rounds with --skip 0, 5,
        /// 10, ... and --iterations 5 ask the same queries as one run of 5 x rounds.
        #[arg(long, default_value_t = 0)]
        skip: usize,
        /// Comma-separated query types (default: all).
        #[arg(long)]
        types: Option<String>,
        /// The process id of the server behind --url, on this machine: also report its CPU time
        /// per query (from /proc), which varies far less than latency on a busy machine.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Process ids on this machine (the servers, say) that must be idle before each type is
        /// timed: the bench waits, at most 20 s per type, until they use under 2% of a core.
        #[arg(long, value_delimiter = ',')]
        quiet_pid: Vec<u32>,
        /// `influxql` (HTTP /query) or `sql` (Arrow Flight SQL on the same port; --reference
        /// then answers each query's InfluxQL form and the numbers must agree).
        #[arg(long, default_value = "influxql")]
        language: String,
        #[arg(long)]
        json: bool,
    },
    /// Time a statement over Arrow Flight SQL: rows per second and the time to the first batch.
    Flight {
        /// The server's HTTP API (Fletch serves gRPC on the same port).
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        #[arg(long, default_value = "benchmark")]
        db: String,
        #[arg(long, default_value = "SELECT * FROM cpu")]
        sql: String,
        /// Runs (each reads the whole answer).
        #[arg(long, default_value_t = 3)]
        iterations: usize,
        #[arg(long)]
        json: bool,
    },
}

async fn main_async(cli: Cli) -> Result<(), String> {
    match cli.command {
        Cmd::Types => {
            for t in TYPES {
                println!("{t}");
            }
        }
        Cmd::Generate { data, out } => {
            let spec = data.spec()?;
            let rows = match out {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    let mut w = std::io::BufWriter::new(f);
                    let n = fletch_bench::generate::write_lines(&spec, &mut w)
                        .map_err(|e| e.to_string())?;
                    w.flush().map_err(|e| e.to_string())?;
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    fletch_bench::generate::write_lines(&spec, &mut w).map_err(|e| e.to_string())?
                }
            };
            eprintln!("{rows} rows, {} field values", rows * FIELDS.len() as u64);
        }
        Cmd::Load {
            data,
            url,
            db,
            replication,
            workers,
            batch_size,
            quiet_pid,
            rate,
            json,
        } => {
            let spec = data.spec()?;
            let batches = match rate {
                Some(_) => Vec::new(),
                None => {
                    let mut text = Vec::with_capacity((spec.rows() * 330) as usize);
                    fletch_bench::generate::write_lines(&spec, &mut text)
                        .map_err(|e| e.to_string())?;
                    load::batches(&text, batch_size)
                }
            };
            if !fletch_bench::cpu::wait_quiet_for(&quiet_pid, Duration::from_secs(120)).await {
                eprintln!(
                    "the processes in --quiet-pid were still busy after 2 min; loading anyway"
                );
            }
            let opts = load::LoadOptions {
                urls: url,
                database: db,
                replication,
                workers,
                batch_size,
                fields_per_line: FIELDS.len() as u64,
            };
            let r = match rate {
                Some(rate) => {
                    // SIGTERM ends a paced load early; what went through is still reported.
                    let stop = Arc::new(AtomicBool::new(false));
                    let flag = Arc::clone(&stop);
                    let mut term = tokio::signal::unix::signal(SignalKind::terminate())
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(async move {
                        term.recv().await;
                        flag.store(true, Ordering::Relaxed);
                    });
                    load::run_paced(&opts, spec, rate, stop).await?
                }
                None => load::run(&opts, batches).await?,
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "points": r.points, "failed_batches": r.failed_batches, "seconds": r.elapsed.as_secs_f64(),
                        "points_per_sec": r.points_per_sec(), "fields_per_sec": r.fields_per_sec(), "bytes_per_sec": r.bytes_per_sec(),
                        "latency_ms": {"min": ms(r.latency.min), "median": ms(r.latency.median), "p95": ms(r.latency.p95), "p99": ms(r.latency.p99)}
                    })
                );
            } else {
                println!("points          {}", r.points);
                println!("failed batches  {}", r.failed_batches);
                println!("elapsed         {:.2} s", r.elapsed.as_secs_f64());
                println!("points/s        {:.0}", r.points_per_sec());
                println!("field values/s  {:.0}", r.fields_per_sec());
                println!("bytes/s         {:.0}", r.bytes_per_sec());
                println!(
                    "batch latency   min {} ms, median {} ms, p95 {} ms, p99 {} ms",
                    ms(r.latency.min),
                    ms(r.latency.median),
                    ms(r.latency.p95),
                    ms(r.latency.p99)
                );
            }
            if r.failed_batches > 0 {
                return Err(format!("{} batches failed", r.failed_batches));
            }
        }
        Cmd::Query {
            data,
            url,
            reference,
            db,
            iterations,
            skip,
            types,
            server_pid,
            quiet_pid,
            language,
            json,
        } => {
            let language = match language.as_str() {
                "influxql" => query::Language::InfluxQl,
                "sql" => query::Language::Sql,
                other => return Err(format!("--language {other}: influxql or sql")),
            };
            let spec = data.spec()?;
            let ds = Dataset {
                scale: spec.scale,
                start: spec.start,
                end: spec.start + spec.duration,
            };
            let wanted: Vec<String> = match types {
                Some(t) => t.split(',').map(|s| s.trim().to_string()).collect(),
                None => TYPES.iter().map(|s| s.to_string()).collect(),
            };
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            let reports = query::run(&query::QueryOptions {
                url: &url,
                reference: reference.as_deref(),
                db: &db,
                ds,
                types: &wanted,
                iterations,
                skip,
                seed: spec.seed,
                server_pid,
                quiet: &quiet_pid,
                language,
            })
            .await?;
            let mut bad = 0;
            if json {
                let rows: Vec<serde_json::Value> = reports
                    .iter()
                    .map(|r| serde_json::json!({
                        "type": r.kind, "count": r.latency.count, "errors": r.errors, "mismatches": r.mismatches,
                        "min_ms": ms(r.latency.min), "median_ms": ms(r.latency.median), "p95_ms": ms(r.latency.p95), "p99_ms": ms(r.latency.p99),
                        "example": r.example_mismatch,
                        "server_cpu_ms": r.server_cpu.map(ms),
                        "quiet": r.quiet,
                        "latencies_ms": r.latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
                    }))
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!(
                    "{:<24} {:>6} {:>10} {:>10} {:>10} {:>10} {:>7} {:>10}{}",
                    "query",
                    "count",
                    "min ms",
                    "median ms",
                    "p95 ms",
                    "p99 ms",
                    "errors",
                    "mismatches",
                    if server_pid.is_some() {
                        "  server CPU ms/query"
                    } else {
                        ""
                    }
                );
            }
            for r in &reports {
                if r.quiet == Some(false) {
                    eprintln!(
                        "{}: the processes in --quiet-pid were still busy after 20 s; timed anyway",
                        r.kind
                    );
                }
                if !json {
                    println!(
                        "{:<24} {:>6} {:>10} {:>10} {:>10} {:>10} {:>7} {:>10}{}",
                        r.kind,
                        r.latency.count,
                        ms(r.latency.min),
                        ms(r.latency.median),
                        ms(r.latency.p95),
                        ms(r.latency.p99),
                        r.errors,
                        r.mismatches,
                        r.server_cpu
                            .map(|c| format!(" {:>20}", ms(c)))
                            .unwrap_or_default()
                    );
                }
                if r.errors > 0 || r.mismatches > 0 {
                    bad += 1;
                    eprintln!(
                        "{}: {} errors, {} answers differ, e.g. {}",
                        r.kind,
                        r.errors,
                        r.mismatches,
                        r.example_mismatch.as_deref().unwrap_or("")
                    );
                }
            }
            if bad > 0 {
                return Err(format!("{bad} query types had errors or different answers"));
            }
        }
        Cmd::Flight {
            url,
            db,
            sql,
            iterations,
            json,
        } => {
            let mut c = fletch_bench::sql::SqlClient::connect(&url, &db).await?;
            let mut runs = Vec::new();
            for _ in 0..iterations {
                runs.push(c.count(&sql).await?);
            }
            let best = runs
                .iter()
                .max_by(|a, b| {
                    let rate = |r: &(Duration, Duration, u64)| r.2 as f64 / r.1.as_secs_f64();
                    rate(a).total_cmp(&rate(b))
                })
                .ok_or("--iterations 0")?;
            let median = {
                let mut t: Vec<Duration> = runs.iter().map(|r| r.1).collect();
                t.sort();
                t[t.len() / 2]
            };
            let rows = best.2;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "rows": rows, "runs": runs.len(),
                        "median_seconds": median.as_secs_f64(),
                        "rows_per_sec_median": rows as f64 / median.as_secs_f64(),
                        "rows_per_sec_best": rows as f64 / best.1.as_secs_f64(),
                        "first_batch_ms": runs.iter().map(|r| r.0.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!("rows             {rows}");
                println!(
                    "median           {:.3} s ({:.0} rows/s)",
                    median.as_secs_f64(),
                    rows as f64 / median.as_secs_f64()
                );
                println!(
                    "best             {:.3} s ({:.0} rows/s)",
                    best.1.as_secs_f64(),
                    rows as f64 / best.1.as_secs_f64()
                );
                for (i, r) in runs.iter().enumerate() {
                    println!(
                        "run {i}: first batch after {} ms, all after {} ms",
                        ms(r.0),
                        ms(r.1)
                    );
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fletch-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main_async(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fletch-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
