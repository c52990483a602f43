//! Kill -9 during a stream of acknowledged writes, restart, repeat; then every acknowledged
//! point must be in the Parquet files, read back with DataFusion (nothing from Fletch).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::TimestampNanosecondType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use fletch_tests::Fletchd;
use fletch_tests::http::{post, query, send};
use rand::Rng;

const ROUNDS: usize = 6;
const POINTS_PER_BATCH: usize = 50;

/// Small buffers so that persistence and compaction run (and get killed) during the rounds.
const ENV: &[(&str, &str)] = &[
    ("FLETCH_DATA_CACHE_SNAPSHOT_MEMORY_SIZE", "20000"),
    ("FLETCH_DATA_COMPACT_MAX_FILES", "3"),
];

fn batch_body(round: usize, batch: usize) -> String {
    (0..POINTS_PER_BATCH)
        .map(|i| {
            format!(
                "load,round=r{round},host=h{} value={batch}i,n={i}i {}\n",
                i % 5,
                point_time(round, batch, i)
            )
        })
        .collect()
}

fn point_time(round: usize, batch: usize, i: usize) -> i64 {
    1_700_000_000_000_000_000 + (round * 1_000_000 + batch * 1_000 + i) as i64
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut acked: Vec<(usize, usize)> = Vec::new();
    let started = Instant::now();

    for round in 0..ROUNDS {
        let node = Fletchd::start(dir.path(), ENV);
        if round == 0 {
            assert_eq!(
                query(&node.url(""), "CREATE DATABASE crash", "").status,
                200
            );
        }
        // Write batches until a random moment, then SIGKILL while writes are in flight.
        let kill_after = Duration::from_millis(rng.random_range(100..900));
        let url = node.url("/write?db=crash");
        let writer = std::thread::spawn(move || {
            let mut ok = Vec::new();
            let begin = Instant::now();
            for batch in 0..1000 {
                if begin.elapsed() > Duration::from_secs(20) {
                    break;
                }
                match send("POST", &url, &[], batch_body(round, batch).into_bytes()) {
                    Ok(r) if r.status == 204 => ok.push((round, batch)),
                    Ok(r) => panic!("write refused: {} {}", r.status, r.body),
                    Err(_) => break, // the process is gone: this batch was not acknowledged
                }
            }
            ok
        });
        std::thread::sleep(kill_after);
        node.kill9();
        acked.extend(writer.join().unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "crash test ran too long"
        );
    }
    let rounds_with_writes = (0..ROUNDS)
        .filter(|r| acked.iter().any(|(round, _)| round == r))
        .count();
    eprintln!(
        "{} batches acknowledged over {ROUNDS} rounds ({rounds_with_writes} rounds wrote)",
        acked.len()
    );
    assert!(
        rounds_with_writes >= ROUNDS / 2,
        "too few rounds got writes acknowledged before the kill"
    );

    // A last start replays the WAL; a clean stop persists everything.
    let node = Fletchd::start(dir.path(), ENV);
    let r = post(
        &node.url("/write?db=crash"),
        "load,round=final,host=h0 value=1i,n=0i 1",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let status = node.terminate();
    assert!(status.success(), "SIGTERM must exit 0, got {status}");

    let found = read_all_points(dir.path());
    let mut missing = 0;
    for &(round, batch) in &acked {
        for i in 0..POINTS_PER_BATCH {
            if !found.contains(&point_time(round, batch, i)) {
                missing += 1;
            }
        }
    }
    assert_eq!(
        missing,
        0,
        "{missing} acknowledged points of {} batches are missing",
        acked.len()
    );
}

/// Reads the live files named by every shard manifest, with DataFusion.
fn read_all_points(dir: &std::path::Path) -> HashSet<i64> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut files = Vec::new();
    let shards = dir.join("data/shards");
    for shard in std::fs::read_dir(&shards).unwrap() {
        let manifest = shard.unwrap().path().join("manifest.json");
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        for f in m["tables"]["load"]["files"]
            .as_array()
            .into_iter()
            .flatten()
        {
            files.push(
                dir.join("data")
                    .join(f["path"].as_str().unwrap())
                    .display()
                    .to_string(),
            );
        }
    }
    assert!(!files.is_empty());
    let ctx = SessionContext::new();
    let batches: Vec<RecordBatch> = rt.block_on(async {
        let df = ctx
            .read_parquet(files, ParquetReadOptions::default())
            .await
            .unwrap();
        df.select_columns(&["time"])
            .unwrap()
            .collect()
            .await
            .unwrap()
    });
    let mut out = HashSet::new();
    for b in batches {
        // A point may sit in two files until compaction merges them (a crash between a
        // manifest update and the WAL release replays it); queries deduplicate.
        out.extend(
            b.column(0)
                .as_primitive::<TimestampNanosecondType>()
                .values()
                .iter()
                .copied(),
        );
    }
    out
}
