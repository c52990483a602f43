//! Posts line protocol to `/write` over N connections and measures what went through.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Base URLs, e.g. `http://127.0.0.1:8086`: the connections are spread over them (the
    /// nodes of a cluster), connection `i` to URL `i mod n`.
    pub urls: Vec<String>,
    pub database: String,
    /// `WITH REPLICATION n` when the database is created (a cluster's replication factor).
    pub replication: Option<u32>,
    pub workers: usize,
    pub batch_size: usize,
    pub fields_per_line: u64,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub points: u64,
    pub bytes: u64,
    pub failed_batches: u64,
    pub elapsed: Duration,
    pub latency: Summary,
    pub fields_per_line: u64,
}

impl LoadReport {
    pub fn points_per_sec(&self) -> f64 {
        self.points as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn fields_per_sec(&self) -> f64 {
        self.points_per_sec() * self.fields_per_line as f64
    }

    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Splits line protocol into bodies of `batch_size` lines.
pub fn batches(text: &[u8], batch_size: usize) -> Vec<(Bytes, u64)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut lines = 0u64;
    for (i, b) in text.iter().enumerate() {
        if *b == b'\n' {
            lines += 1;
            if lines as usize == batch_size {
                out.push((Bytes::copy_from_slice(&text[start..=i]), lines));
                start = i + 1;
                lines = 0;
            }
        }
    }
    if start < text.len() {
        out.push((Bytes::copy_from_slice(&text[start..]), lines.max(1)));
    }
    out
}

/// Creates the database (a no-op if it exists), with `replication` owners per shard if given.
pub async fn create_database(
    client: &reqwest::Client,
    url: &str,
    db: &str,
    replication: Option<u32>,
) -> Result<(), String> {
    let with = replication
        .map(|n| format!(" WITH REPLICATION {n}"))
        .unwrap_or_default();
    let resp = client
        .post(format!("{url}/query"))
        .form(&[("q", format!("CREATE DATABASE \"{db}\"{with}"))])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("CREATE DATABASE: HTTP {}", resp.status()));
    }
    // A just-started InfluxDB 1.6.7 can answer CREATE DATABASE and still refuse the first
    // writes with "database not found": wait (at most 10 s) until SHOW DATABASES lists it.
    let quoted = serde_json::Value::String(db.to_string()).to_string();
    for _ in 0..200 {
        let listed = client
            .post(format!("{url}/query"))
            .form(&[("q", "SHOW DATABASES")])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        if listed.contains(&format!("[{quoted}]")) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "database {db} not listed by SHOW DATABASES after 10 s"
    ))
}

/// Batches for the workers to post, in order.
type Feed = Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<(Bytes, u64)>>>;

/// Posts `batches` as fast as the server takes them.
pub async fn run(opts: &LoadOptions, batches: Vec<(Bytes, u64)>) -> Result<LoadReport, String> {
    let total_points: u64 = batches.iter().map(|(_, n)| n).sum();
    let (tx, rx) = tokio::sync::mpsc::channel(opts.workers.max(1) * 2);
    tokio::spawn(async move {
        for b in batches {
            if tx.send(b).await.is_err() {
                break;
            }
        }
    });
    post(opts, Arc::new(tokio::sync::Mutex::new(rx)), total_points).await
}

/// Posts `spec`'s data set, generated while it is posted (it need not fit in memory), at
/// `rate` points per second at most: batch `k` is not handed out before `k * batch_size /
/// rate` seconds from the start. A load that runs beside queries (a "mixed" benchmark); it ends
/// early, with what went through so far reported, once `stop` is set.
pub async fn run_paced(
    opts: &LoadOptions,
    spec: crate::generate::Spec,
    rate: f64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<LoadReport, String> {
    if rate.is_nan() || rate <= 0.0 {
        return Err(format!("--rate must be positive, not {rate}"));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(opts.workers.max(1) * 2);
    let batch_size = opts.batch_size.max(1);
    let started = Instant::now();
    std::thread::spawn(move || {
        let mut lines = crate::generate::Lines::new(&spec);
        let mut text = String::new();
        for k in 0u64.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            text.clear();
            let mut n = 0u64;
            while (n as usize) < batch_size && lines.next_into(&mut text) {
                n += 1;
            }
            if n == 0 {
                break;
            }
            let due = started + Duration::from_secs_f64(k as f64 * batch_size as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if tx.blocking_send((Bytes::from(text.clone()), n)).is_err() {
                break;
            }
        }
    });
    post(opts, Arc::new(tokio::sync::Mutex::new(rx)), spec.rows()).await
}

/// Posts what `feed` hands out over the workers' connections.
async fn post(opts: &LoadOptions, feed: Feed, total_points: u64) -> Result<LoadReport, String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.workers)
        .build()
        .map_err(|e| e.to_string())?;
    let first = opts.urls.first().ok_or("no --url")?;
    create_database(&client, first, &opts.database, opts.replication).await?;
    let points = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let urls: Vec<String> = opts
        .urls
        .iter()
        .map(|u| format!("{u}/write?db={}&precision=ns", opts.database))
        .collect();
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let mut tasks = Vec::new();
    for w in 0..opts.workers.max(1) {
        let (client, feed, points, failed, bytes, url) = (
            client.clone(),
            feed.clone(),
            points.clone(),
            failed.clone(),
            bytes.clone(),
            urls[w % urls.len()].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = feed.lock().await.recv().await;
                let Some((body, n)) = next else {
                    break;
                };
                let t0 = Instant::now();
                let ok = match client.post(&url).body(body.clone()).send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::NO_CONTENT => true,
                    // The reason of each failed batch, on stderr: a load that fails says why.
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        eprintln!("fletch-bench: {url}: HTTP {status}: {}", text.trim());
                        false
                    }
                    Err(e) => {
                        eprintln!("fletch-bench: {url}: {e}");
                        false
                    }
                };
                latencies.push(t0.elapsed());
                if ok {
                    points.fetch_add(n, Ordering::Relaxed);
                    bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let ticker = progress.then(|| {
        let points = points.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let done = points.load(Ordering::Relaxed);
                let pct = done as f64 * 100.0 / total_points.max(1) as f64;
                let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
                eprint!("\r{done}/{total_points} points ({pct:.1}%), {rate:.0} points/s   ");
            }
        })
    });
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(|e| e.to_string())?);
    }
    let elapsed = started.elapsed();
    if let Some(t) = ticker {
        t.abort();
        eprintln!();
    }
    Ok(LoadReport {
        points: points.load(Ordering::Relaxed),
        bytes: bytes.load(Ordering::Relaxed),
        failed_batches: failed.load(Ordering::Relaxed),
        elapsed,
        latency: Summary::of(&latencies),
        fields_per_line: opts.fields_per_line,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_keep_whole_lines() {
        let b = super::batches(b"a\nb\nc\nd\ne\n", 2);
        let texts: Vec<&[u8]> = b.iter().map(|(t, _)| t.as_ref()).collect();
        assert_eq!(texts, [&b"a\nb\n"[..], b"c\nd\n", b"e\n"]);
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 5);
    }
}
