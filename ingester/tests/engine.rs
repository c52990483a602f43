//! The storage engine end to end: WAL, buffer, Parquet, compaction, retention, restart.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use catalog::{MetaOptions, MetaService};
use ingester::{Ingester, IngesterConfig, WriteError, WriteOutcome};
use line_protocol::{ParseOptions, Point, parse_body};

const HOUR: i64 = 3_600_000_000_000;

struct Node {
    meta: Arc<MetaService>,
    ingester: Arc<Ingester>,
}

async fn open(dir: &Path, tune: impl FnOnce(&mut IngesterConfig)) -> Node {
    let meta = MetaService::open(MetaOptions::local(dir.join("meta")))
        .await
        .unwrap();
    let mut cfg = IngesterConfig::with_dirs(dir.join("data"), dir.join("wal"));
    tune(&mut cfg);
    let node_id = meta.identity().data_id.unwrap();
    let ingester = Ingester::open(cfg, meta.clone(), node_id).await.unwrap();
    Node { meta, ingester }
}

impl Node {
    async fn close(self) {
        self.ingester.shutdown().await.unwrap();
        self.meta.shutdown().await;
    }
}

fn points(body: &str) -> Vec<Point<'_>> {
    let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.points
}

/// Writes to `db`'s default policy, routed as the write coordinator routes on a one-node
/// cluster (where a shard group has one shard).
async fn write_points(n: &Node, points: Vec<Point<'_>>) -> Result<WriteOutcome, WriteError> {
    let rp = n
        .meta
        .catalog()
        .database("db")
        .unwrap()
        .rp("")
        .unwrap()
        .name
        .clone();
    let mut shards: Vec<(u64, Vec<Point<'_>>)> = Vec::new();
    for p in points {
        let group = n.meta.shard_group_for("db", &rp, p.time).await.unwrap();
        let id = group.shards[0].id;
        match shards.iter_mut().find(|(s, _)| *s == id) {
            Some((_, ps)) => ps.push(p),
            None => shards.push((id, vec![p])),
        }
    }
    n.ingester.write_shards("db", &rp, shards).await
}

async fn write(n: &Node, body: &str) -> WriteOutcome {
    write_points(n, points(body)).await.unwrap()
}

async fn read(n: &Node, measurement: &str) -> RecordBatch {
    let cat = n.meta.catalog();
    let mut out = Vec::new();
    for (_, _, _, s) in cat.shards_owned_by(n.ingester.node_id()) {
        if let Some(b) = n.ingester.read_table(s.id, measurement).await.unwrap() {
            out.push(b);
        }
    }
    assert_eq!(out.len(), 1, "expected one shard with {measurement}");
    out.pop().unwrap()
}

fn floats(b: &RecordBatch, col: &str) -> Vec<Option<f64>> {
    b.column_by_name(col)
        .unwrap()
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

fn times(b: &RecordBatch) -> Vec<i64> {
    b.column_by_name("time")
        .unwrap()
        .as_primitive::<TimestampNanosecondType>()
        .values()
        .to_vec()
}

fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir.join("data/shards")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn same_series_and_time_merge_across_buffer_files_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |c| c.compact_max_files = 3).await;
    n.meta.create_database("db", None).await.unwrap();
    write(&n, "cpu,host=a a=1,b=1 100\ncpu,host=b a=5 100").await;
    write(&n, "cpu,host=a b=2 100").await; // merges into the buffered point
    let b = read(&n, "cpu").await;
    assert_eq!(floats(&b, "a"), [Some(1.0), Some(5.0)]);
    assert_eq!(floats(&b, "b"), [Some(2.0), None]);

    n.ingester.persist().await.unwrap();
    write(&n, "cpu,host=a a=3 100\ncpu,host=a a=4 50").await; // newer than the file
    let b = read(&n, "cpu").await;
    assert_eq!(times(&b), [50, 100, 100]);
    assert_eq!(floats(&b, "a"), [Some(4.0), Some(3.0), Some(5.0)]);
    assert_eq!(floats(&b, "b"), [None, Some(2.0), None]);

    n.ingester.persist().await.unwrap();
    write(&n, "cpu,host=b a=6 100").await;
    n.ingester.persist().await.unwrap();
    assert_eq!(parquet_files(dir.path()).len(), 3);
    assert_eq!(n.ingester.compact(10 * HOUR).await.unwrap(), 1);
    assert_eq!(
        parquet_files(dir.path()).len(),
        1,
        "compaction leaves one file and deletes its inputs"
    );
    let b = read(&n, "cpu").await;
    assert_eq!(floats(&b, "a"), [Some(4.0), Some(3.0), Some(6.0)]);
    assert_eq!(floats(&b, "b"), [None, Some(2.0), None]);
    n.close().await;
}

#[tokio::test]
async fn parquet_files_are_plain_and_sorted_by_series_then_time() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |_| {}).await;
    n.meta.create_database("db", None).await.unwrap();
    write(
        &n,
        "m,host=b,dc=x v=1i,s=\"x\",ok=true 3\nm,host=a,dc=x v=2i 2\nm,host=a,dc=x v=3i 1",
    )
    .await;
    n.ingester.persist().await.unwrap();
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 1);
    let file = std::fs::File::open(&files[0]).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let meta = reader.metadata().clone();
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let schema = batch.schema();
    assert!(matches!(
        schema.field_with_name("host").unwrap().data_type(),
        DataType::Dictionary(_, _)
    ));
    assert_eq!(
        schema.field_with_name("v").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("s").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        schema.field_with_name("ok").unwrap().data_type(),
        &DataType::Boolean
    );
    assert!(matches!(
        schema.field_with_name("time").unwrap().data_type(),
        DataType::Timestamp(_, None)
    ));
    assert_eq!(times(&batch), [1, 2, 3]);
    let v: Vec<i64> = batch
        .column_by_name("v")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(v, [3, 2, 1]);
    let rg = meta.row_group(0);
    assert!(
        rg.sorting_columns().is_none(),
        "the series order is not declared (DataFusion would plan order-preserving aggregations)"
    );
    let time_idx = schema.index_of("time").unwrap();
    assert!(
        rg.column(time_idx)
            .statistics()
            .is_some_and(|s| s.min_bytes_opt().is_some())
    );
    n.close().await;
}

#[tokio::test]
async fn pages_hold_at_most_page_rows_so_time_prunes_within_a_series() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |_| {}).await;
    n.meta.create_database("db", None).await.unwrap();
    let body: String = (0..5000).map(|t| format!("m,host=a v={t} {t}\n")).collect();
    write(&n, &body).await;
    n.ingester.persist().await.unwrap();
    let files = parquet_files(dir.path());
    let file = std::fs::File::open(&files[0]).unwrap();
    let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new()
        .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required);
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new_with_options(
            file, options,
        )
        .unwrap();
    let meta = reader.metadata();
    let time_idx = reader.schema().index_of("time").unwrap();
    let offsets = meta.offset_index().expect("an offset index");
    let firsts: Vec<i64> = offsets[0][time_idx]
        .page_locations()
        .iter()
        .map(|p| p.first_row_index)
        .chain([meta.row_group(0).num_rows()])
        .collect();
    let rows: Vec<i64> = firsts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        rows.len() >= 5,
        "5000 rows in pages of at most 1024: {rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| *r as usize <= ingester::parquet_io::PAGE_ROWS),
        "{rows:?}"
    );
    n.close().await;
}

#[tokio::test]
async fn float_fields_time_and_tags_are_written_uncompressed_and_other_fields_with_zstd() {
    use parquet::basic::Compression;
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |_| {}).await;
    n.meta.create_database("db", None).await.unwrap();
    let body: String = (0..100)
        .map(|t| format!("m,host=h{} f={t}.5,i={t}i,s=\"x{t}\" {t}\n", t % 3))
        .collect();
    write(&n, &body).await;
    n.ingester.persist().await.unwrap();
    let files = parquet_files(dir.path());
    let file = std::fs::File::open(&files[0]).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let codecs: Vec<(String, Compression)> = reader
        .metadata()
        .row_group(0)
        .columns()
        .iter()
        .map(|c| (c.column_path().string(), c.compression()))
        .collect();
    for (column, codec) in &codecs {
        match column.as_str() {
            "f" | "host" | "time" => assert_eq!(*codec, Compression::UNCOMPRESSED, "{codecs:?}"),
            "i" | "s" => {
                assert!(matches!(codec, Compression::ZSTD(_)), "{codecs:?}")
            }
            other => panic!("unexpected column {other}: {codecs:?}"),
        }
    }
    assert_eq!(codecs.len(), 5, "{codecs:?}");
    n.close().await;
}

/// Every row of the one Parquet file under `dir`, as "host region time v".
fn file_rows(dir: &Path) -> Vec<String> {
    let files = parquet_files(dir);
    assert_eq!(files.len(), 1);
    let file = std::fs::File::open(&files[0]).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let tag = |name: &str| {
            let c = arrow::compute::cast(b.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
            c.as_string::<i32>()
                .iter()
                .map(|v| v.unwrap_or("").to_string())
                .collect::<Vec<_>>()
        };
        let (host, region) = (tag("host"), tag("region"));
        let (t, v) = (times(&b), floats(&b, "v"));
        for i in 0..b.num_rows() {
            out.push(format!(
                "{} {} {} {}",
                host[i],
                region[i],
                t[i],
                v[i].unwrap_or(f64::NAN)
            ));
        }
    }
    out
}

#[tokio::test]
async fn compaction_merges_files_sorted_by_different_tags() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |c| c.compact_max_files = 2).await;
    n.meta.create_database("db", None).await.unwrap();
    // More regions than hosts: this file is sorted by region first.
    write(
        &n,
        "m,host=h2,region=r3 v=1 1\nm,host=h2,region=r1 v=2 1\nm,host=h1,region=r2 v=3 1",
    )
    .await;
    n.ingester.persist().await.unwrap();
    // More hosts than regions (and more rows): sorted by host first, as the output will be.
    write(
        &n,
        "m,host=h3,region=r1 v=4 2\nm,host=h2,region=r1 v=5 1\nm,host=h1,region=r1 v=6 1\nm,host=h4,region=r1 v=7 3",
    )
    .await;
    n.ingester.persist().await.unwrap();
    assert_eq!(parquet_files(dir.path()).len(), 2);
    assert_eq!(n.ingester.compact(10 * HOUR).await.unwrap(), 1);
    assert_eq!(
        file_rows(dir.path()),
        [
            "h1 r1 1 6",
            "h1 r2 1 3",
            "h2 r1 1 5", // the later write of h2,r1 at 1 wins
            "h2 r3 1 1",
            "h3 r1 2 4",
            "h4 r1 3 7",
        ]
    );
    n.close().await;
}

#[tokio::test]
async fn type_conflicts_and_reserved_names_drop_points_not_requests() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |_| {}).await;
    n.meta.create_database("db", None).await.unwrap();
    let out = write(&n, "new f=1i 10\nnew f=2 11\nnew f=3i 12").await;
    assert_eq!((out.written, out.dropped), (2, 1));
    assert_eq!(
        out.reason.as_deref(),
        Some(
            "field type conflict: input field \"f\" on measurement \"new\" is type float, already exists as type integer"
        )
    );
    n.ingester.persist().await.unwrap();
    // The type is remembered from the Parquet file too.
    let out = write(&n, "new f=\"s\" 13").await;
    assert_eq!(out.dropped, 1);
    let out = write(&n, "cpu time=1").await;
    assert_eq!(
        out.reason.as_deref(),
        Some("invalid field name: input field \"time\" on measurement \"cpu\" is invalid")
    );
    let out = write(&n, "cpu,time=x v=1").await;
    assert_eq!(
        out.reason.as_deref(),
        Some("invalid tag key: input tag \"time\" on measurement \"cpu\" is invalid")
    );
    let out = write(&n, "cpu time=1,v=2 5").await;
    assert_eq!(
        (out.written, out.dropped),
        (1, 0),
        "a time field is removed, the rest is kept"
    );
    n.close().await;
}

#[tokio::test]
async fn wal_replay_restores_unpersisted_writes_and_persist_releases_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let n = open(dir.path(), |_| {}).await;
        n.meta.create_database("db", None).await.unwrap();
        write(&n, "cpu,host=a v=1 1\ncpu,host=a v=2 2").await;
        // No shutdown: the buffer is lost, the WAL is not.
        n.meta.shutdown().await;
        drop(n);
    }
    let n = open(dir.path(), |_| {}).await;
    assert_eq!(floats(&read(&n, "cpu").await, "v"), [Some(1.0), Some(2.0)]);
    n.ingester.persist().await.unwrap();
    let wal_bytes: u64 = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(wal_bytes, 0, "persisted segments are deleted");
    n.close().await;
    let n = open(dir.path(), |_| {}).await;
    assert_eq!(floats(&read(&n, "cpu").await, "v"), [Some(1.0), Some(2.0)]);
    n.close().await;
}

#[tokio::test]
async fn a_full_buffer_refuses_writes_until_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |c| c.cache_max_memory_size = 200).await;
    n.meta.create_database("db", None).await.unwrap();
    let body: String = (0..20).map(|i| format!("m v={i} {i}\n")).collect();
    write(&n, &body).await;
    let err = write_points(&n, points("m v=1 100")).await.unwrap_err();
    assert!(matches!(err, WriteError::BufferFull { .. }), "{err}");
    n.ingester.persist().await.unwrap();
    write(&n, "m v=1 100").await;
    n.close().await;
}

#[tokio::test]
async fn dropping_a_database_removes_its_shards() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |_| {}).await;
    n.meta.create_database("db", None).await.unwrap();
    write(&n, "m v=1 1").await;
    n.ingester.persist().await.unwrap();
    write(&n, "m v=2 2").await;
    n.meta.drop_database("db").await.unwrap();
    n.ingester.drop_removed_shards().await.unwrap();
    assert!(n.ingester.shard_ids().is_empty());
    assert_eq!(n.ingester.buffered_bytes(), 0);
    n.meta.create_database("db", None).await.unwrap();
    assert!(n.ingester.measurements(&[1, 2, 3]).is_empty());
    n.close().await;
}

#[tokio::test]
async fn files_a_snapshot_lists_outlive_dropping_their_database() {
    let dir = tempfile::tempdir().unwrap();
    let n = two_files_of_m(dir.path()).await;
    let shard = n.meta.catalog().shards_owned_by(n.ingester.node_id())[0]
        .3
        .id;
    let shard_dir = dir
        .path()
        .join("data")
        .join("shards")
        .join(shard.to_string());
    let snap = n.ingester.table_snapshot(shard, "m").unwrap().unwrap();
    n.meta.drop_database("db").await.unwrap();
    n.ingester.drop_removed_shards().await.unwrap();
    assert!(n.ingester.shard_ids().is_empty());
    // The shard is gone for new readers (no manifest); the snapshot's reader still reads.
    assert!(!shard_dir.join("manifest.json").exists());
    for f in &snap.files {
        let rows = ingester::parquet_io::read_file(&n.ingester.object_store(), &f.path)
            .await
            .unwrap();
        assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    }
    n.ingester.drop_removed_shards().await.unwrap();
    assert!(shard_dir.exists(), "kept while a reader holds its files");
    drop(snap);
    assert!(
        parquet_files(dir.path()).is_empty(),
        "removed with the last pin"
    );
    n.ingester.drop_removed_shards().await.unwrap();
    assert!(
        !shard_dir.exists(),
        "the directory goes once no reader holds its files"
    );
    n.close().await;
}

/// A node whose shard holds measurement `m` in two files (`v=1` at 1, `v=2` at 2), compacted
/// into one once the shard has been cold for an hour.
async fn two_files_of_m(dir: &Path) -> Node {
    let n = open(dir, |c| {
        c.compact_full_write_cold_duration = Duration::from_secs(3600)
    })
    .await;
    n.meta.create_database("db", None).await.unwrap();
    write(&n, "m v=1 1").await;
    n.ingester.persist().await.unwrap();
    write(&n, "m v=2 2").await;
    n.ingester.persist().await.unwrap();
    n
}

#[tokio::test]
async fn cold_shards_compact_to_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let n = two_files_of_m(dir.path()).await;
    // Its data is from 1970, but the shard was written just now: a backfill still running.
    let now = ingester::now_nanos();
    assert_eq!(
        n.ingester.compact(now).await.unwrap(),
        0,
        "a shard written within the cold duration is left alone, however old its data"
    );
    assert_eq!(n.ingester.compact(now + HOUR / 2).await.unwrap(), 0);
    assert_eq!(parquet_files(dir.path()).len(), 2);
    // An hour after the last write, it is cold.
    assert_eq!(n.ingester.compact(now + 2 * HOUR).await.unwrap(), 1);
    assert_eq!(parquet_files(dir.path()).len(), 1);
    assert_eq!(floats(&read(&n, "m").await, "v"), [Some(1.0), Some(2.0)]);
    n.close().await;
}

#[tokio::test]
async fn files_a_snapshot_lists_outlive_the_compaction_that_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let n = two_files_of_m(dir.path()).await;
    let shard = n.meta.catalog().shards_owned_by(n.ingester.node_id())[0]
        .3
        .id;
    let snap = n.ingester.table_snapshot(shard, "m").unwrap().unwrap();
    let listed: Vec<_> = snap
        .files
        .iter()
        .map(|f| dir.path().join("data").join(&f.path))
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(n.ingester.compact(i64::MAX).await.unwrap(), 1);
    // The compacted file is live; the two it replaced wait for the snapshot's reader.
    assert_eq!(parquet_files(dir.path()).len(), 3);
    for f in &snap.files {
        let rows = ingester::parquet_io::read_file(&n.ingester.object_store(), &f.path)
            .await
            .unwrap();
        assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    }
    let clone = snap.clone();
    drop(snap);
    assert!(
        listed.iter().all(|p| p.exists()),
        "a clone of the snapshot still pins them"
    );
    drop(clone);
    assert!(listed.iter().all(|p| !p.exists()));
    assert_eq!(parquet_files(dir.path()).len(), 1);
    assert_eq!(floats(&read(&n, "m").await, "v"), [Some(1.0), Some(2.0)]);
    n.close().await;
}

#[tokio::test]
async fn orphan_files_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let n = open(dir.path(), |_| {}).await;
        n.meta.create_database("db", None).await.unwrap();
        write(&n, "m v=1 1").await;
        n.close().await;
    }
    let shard_dir = parquet_files(dir.path())[0].parent().unwrap().to_path_buf();
    std::fs::write(shard_dir.join("99999999999999999999.parquet"), b"partial").unwrap();
    // A dropped shard's files left behind its manifest (the process stopped before their
    // last reader was done): the whole directory goes.
    let dropped = dir.path().join("data").join("shards").join("777");
    std::fs::create_dir_all(&dropped).unwrap();
    std::fs::write(dropped.join("00000000000000000001.parquet"), b"x").unwrap();
    let n = open(dir.path(), |_| {}).await;
    assert_eq!(parquet_files(dir.path()).len(), 1);
    assert!(!dropped.exists());
    assert_eq!(floats(&read(&n, "m").await, "v"), [Some(1.0)]);
    n.close().await;
}

#[test]
fn null_counts_are_what_a_reader_expects() {
    // Guard for the buffer's back-filling: a column that appears late is null before it.
    let mut t = ingester::table::TableBuffer::default();
    for p in points("m a=1 1\nm,h=x b=2 2") {
        t.push(&p);
    }
    let b = t.to_batch().unwrap();
    assert_eq!(b.column_by_name("h").unwrap().null_count(), 1);
    assert_eq!(b.column_by_name("a").unwrap().null_count(), 1);
    assert_eq!(b.column_by_name("b").unwrap().null_count(), 1);
}

fn scope(
    measurements: Option<Vec<&str>>,
    predicate: Option<ingester::TagPredicate>,
    min: i64,
    max: i64,
) -> ingester::DeleteScope {
    ingester::DeleteScope {
        database: "db".into(),
        retention_policy: None,
        measurements: measurements.map(|m| m.into_iter().map(String::from).collect()),
        predicate,
        min_time: min,
        max_time: max,
    }
}

fn hosts(b: &RecordBatch) -> Vec<String> {
    let c = arrow::compute::cast(b.column_by_name("host").unwrap(), &DataType::Utf8).unwrap();
    c.as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn deletes_hide_rows_at_once_and_compaction_reclaims_them() {
    use ingester::TagPredicate;
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |_| {}).await;
    n.meta.create_database("db", None).await.unwrap();
    write(
        &n,
        "cpu,host=a v=1 10\ncpu,host=b v=2 10\ncpu,host=a v=3 20\ncpu,host=b v=4 30",
    )
    .await;
    n.ingester.persist().await.unwrap();
    write(&n, "cpu,host=b v=5 40").await; // still buffered: the delete persists it first
    let p = TagPredicate::Eq("host".into(), "b".into());
    n.ingester
        .delete(&scope(Some(vec!["cpu"]), Some(p), 0, 35))
        .await
        .unwrap();
    let b = read(&n, "cpu").await;
    assert_eq!(
        (hosts(&b), times(&b)),
        (
            vec!["a".to_string(), "a".into(), "b".into()],
            vec![10, 20, 40]
        )
    );
    // A write after the delete is not deleted, even in its time range.
    write(&n, "cpu,host=b v=6 30").await;
    n.ingester.persist().await.unwrap();
    assert_eq!(
        floats(&read(&n, "cpu").await, "v"),
        [Some(1.0), Some(3.0), Some(6.0), Some(5.0)]
    );
    // Compaction applies the tombstone to the old files and forgets it.
    assert_eq!(n.ingester.compact(0).await.unwrap(), 1);
    let manifest = std::fs::read_to_string(
        parquet_files(dir.path())[0]
            .parent()
            .unwrap()
            .join("manifest.json"),
    )
    .unwrap();
    assert!(manifest.contains("\"tombstones\": []"), "{manifest}");
    assert_eq!(
        floats(&read(&n, "cpu").await, "v"),
        [Some(1.0), Some(3.0), Some(6.0), Some(5.0)]
    );
    assert_eq!(
        n.ingester.compact(0).await.unwrap(),
        0,
        "nothing left to do"
    );
    n.close().await;
}

/// Writes `body` to `db`'s default policy as routed with the catalog at Raft `index`.
async fn write_at(n: &Node, body: &str, index: u64) -> WriteOutcome {
    let rp = n
        .meta
        .catalog()
        .database("db")
        .unwrap()
        .rp("")
        .unwrap()
        .name
        .clone();
    let mut shards: Vec<(u64, Vec<Point<'_>>)> = Vec::new();
    for p in points(body) {
        let id = n
            .meta
            .shard_group_for("db", &rp, p.time)
            .await
            .unwrap()
            .shards[0]
            .id;
        match shards.iter_mut().find(|(s, _)| *s == id) {
            Some((_, ps)) => ps.push(p),
            None => shards.push((id, vec![p])),
        }
    }
    n.ingester
        .write_shards_at("db", &rp, shards, index)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_recorded_delete_applies_once_and_late_writes_routed_before_it_lose_its_points() {
    use ingester::TagPredicate;
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |_| {}).await;
    n.meta.create_database("db", None).await.unwrap();
    write(&n, "cpu,host=a v=1 10\ncpu,host=b v=2 10").await;
    let before = n.meta.applied_index();
    let s = scope(
        Some(vec!["cpu"]),
        Some(TagPredicate::Eq("host".into(), "b".into())),
        0,
        100,
    );
    let index = match n
        .meta
        .execute(catalog::Command::RecordDelete {
            database: "db".into(),
            scope: serde_json::to_string(&s).unwrap(),
            forget_columns: None,
        })
        .await
        .unwrap()
    {
        catalog::Outcome::Index(i) => i,
        other => panic!("{other:?}"),
    };
    assert!(index > before);
    n.ingester.delete_recorded(&s, index).await.unwrap();
    assert_eq!(hosts(&read(&n, "cpu").await), ["a"]);

    // A write routed before the delete (a hinted write arriving late, say) loses the points
    // the delete removes; one routed after it keeps them.
    write_at(
        &n,
        "cpu,host=b v=3 20\ncpu,host=a v=4 20\ncpu,host=b v=9 200",
        before,
    )
    .await;
    assert_eq!(times(&read(&n, "cpu").await), [10, 20, 200]);
    write_at(&n, "cpu,host=b v=5 30", index).await;
    // Applied again (a second pass of the applier), it removes nothing written since.
    n.ingester.delete_recorded(&s, index).await.unwrap();
    let b = read(&n, "cpu").await;
    assert_eq!(
        (hosts(&b), times(&b)),
        (
            vec!["a".to_string(), "a".into(), "b".into(), "b".into()],
            vec![10, 20, 30, 200]
        )
    );

    // After a restart, the shard still knows what it applied.
    n.ingester.shutdown().await.unwrap();
    let cfg = IngesterConfig::with_dirs(dir.path().join("data"), dir.path().join("wal"));
    let ing = Ingester::open(cfg, n.meta.clone(), n.ingester.node_id())
        .await
        .unwrap();
    let n = Node {
        meta: n.meta,
        ingester: ing,
    };
    write_at(&n, "cpu,host=b v=6 40", before).await;
    n.ingester.delete_recorded(&s, index).await.unwrap();
    assert_eq!(times(&read(&n, "cpu").await), [10, 20, 30, 200]);
    n.close().await;
}

#[tokio::test]
async fn dropping_a_measurement_removes_its_files_and_its_types() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |_| {}).await;
    n.meta.create_database("db", None).await.unwrap();
    write(&n, "gone v=1i 10\nkept v=1 10").await;
    n.ingester
        .delete(&scope(Some(vec!["gone"]), None, i64::MIN, i64::MAX))
        .await
        .unwrap();
    assert_eq!(parquet_files(dir.path()).len(), 1);
    let shards: Vec<u64> = n.ingester.shard_ids();
    assert_eq!(
        n.ingester
            .measurements(&shards)
            .into_iter()
            .collect::<Vec<_>>(),
        ["kept"]
    );
    // The measurement may come back with another type.
    let out = write(&n, "gone v=\"text\" 20").await;
    assert_eq!(out.dropped, 0, "{:?}", out.reason);
    n.close().await;
}

#[tokio::test]
async fn tag_predicates_treat_missing_tags_as_empty() {
    use ingester::TagPredicate;
    let batch = {
        let mut t = ingester::table::TableBuffer::default();
        for p in points("m,host=a v=1 1\nm v=2 2\nm,host=b v=3 3") {
            t.push(&p);
        }
        t.to_batch().unwrap()
    };
    let eval = |p: TagPredicate| {
        p.evaluate(&batch)
            .unwrap()
            .iter()
            .map(|b| b.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        eval(TagPredicate::Eq("host".into(), "".into())),
        [false, true, false]
    );
    assert_eq!(
        eval(TagPredicate::Regex("host".into(), "^[ab]$".into())),
        [true, false, true]
    );
    assert_eq!(
        eval(TagPredicate::NotEq("nosuch".into(), "".into())),
        [false, false, false]
    );
    let or = TagPredicate::Or(
        Box::new(TagPredicate::Eq("host".into(), "a".into())),
        Box::new(TagPredicate::NotRegex("host".into(), ".".into())),
    );
    assert_eq!(eval(or), [true, true, false]);
}

#[tokio::test]
async fn a_shard_that_needs_several_files_is_not_compacted_again_and_again() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path(), |c| {
        c.max_rows_per_file = 2;
        c.compact_max_files = 2;
    })
    .await;
    n.meta.create_database("db", None).await.unwrap();
    for i in 0..5 {
        write(&n, &format!("m,h=h{i} v={i} {i}")).await;
        n.ingester.persist().await.unwrap();
    }
    assert_eq!(n.ingester.compact(i64::MAX).await.unwrap(), 1);
    assert_eq!(
        parquet_files(dir.path()).len(),
        3,
        "five rows in files of at most two"
    );
    assert_eq!(
        n.ingester.compact(i64::MAX).await.unwrap(),
        0,
        "nothing left to gain"
    );
    assert_eq!(read(&n, "m").await.num_rows(), 5);
    n.close().await;
}

/// A data directory given relative to the working directory is opened as an absolute path:
/// readers name files by absolute paths (the querier keeps its series indexes by them).
#[tokio::test]
async fn a_relative_data_directory_is_opened_as_an_absolute_path() {
    let dir = tempfile::Builder::new().tempdir_in(".").unwrap();
    let relative = Path::new(".").join(dir.path().file_name().unwrap());
    assert!(relative.is_relative());
    let n = open(&relative, |_| {}).await;
    assert!(n.ingester.data_dir().is_absolute());
    assert_eq!(
        n.ingester.data_dir(),
        std::path::absolute(relative.join("data")).unwrap()
    );
    n.close().await;
}
