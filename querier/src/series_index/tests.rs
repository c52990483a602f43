//! Tests of the series indexes: selections equal to evaluating the predicate, runs and pages,
//! scans that get selections, in-place reads.

use super::*;
use datafusion::arrow::array::{DictionaryArray, Float64Array, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{Int32Type, TimeUnit};
use datafusion::object_store::memory::InMemory;
use datafusion::object_store::{ObjectMeta, ObjectStoreExt};
use datafusion::physical_expr::expressions::{binary, col, in_list, is_not_null, is_null, lit};

fn tag_lit(v: &str) -> Arc<dyn PhysicalExpr> {
    lit(ScalarValue::Dictionary(
        Box::new(DataType::Int32),
        Box::new(ScalarValue::Utf8(Some(v.into()))),
    ))
}

fn ts(v: i64) -> Arc<dyn PhysicalExpr> {
    lit(ScalarValue::TimestampNanosecond(Some(v), None))
}

/// `batch` written as the ingester writes files, to `f.parquet` in a store of its own.
async fn written(batch: &RecordBatch) -> (Arc<dyn ObjectStore>, ObjectMeta) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let size = ingester::parquet_io::write_file(&store, "f.parquet", batch, "m")
        .await
        .unwrap();
    let meta = store.head(&Path::from("f.parquet")).await.unwrap();
    assert_eq!(meta.size, size.size_bytes);
    (store, meta)
}

/// Hosts a, b, c with 3000 rows each (times 0..3000), sorted by host then time.
fn hosts() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("host", tag_type(), true),
        Field::new("v", DataType::Float64, true),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
    ]));
    let hosts: DictionaryArray<Int32Type> = ["a", "b", "c"]
        .iter()
        .flat_map(|h| std::iter::repeat_n(Some(*h), 3000))
        .collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(hosts),
            Arc::new(Float64Array::from_iter_values((0..9000).map(f64::from))),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                (0..3).flat_map(|_| 0..3000i64),
            )),
        ],
    )
    .unwrap()
}

/// [`hosts`] written as the ingester writes files (pages of at most 1024 rows), its index,
/// and the scan's schema, which also has a tag `zone` this file lacks.
async fn file() -> (FileIndex, Schema) {
    let batch = hosts();
    let file_schema = batch.schema();
    let (store, meta) = written(&batch).await;
    let index = FileIndex::load(store, PartitionedFile::from(meta))
        .await
        .unwrap();
    let mut fields: Vec<Field> = file_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("zone", tag_type(), true));
    (index, Schema::new(fields))
}

fn rows(s: &Selected) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    for sel in s.selection.iter() {
        if !sel.skip {
            out.push(at..at + sel.row_count);
        }
        at += sel.row_count;
    }
    out
}

/// The index of a file of tags `host` and `rack` (and `time`), one row per element.
async fn hosts_and_racks(hosts: &[Option<&str>], racks: &[Option<&str>]) -> FileIndex {
    let schema = Arc::new(Schema::new(vec![
        Field::new("host", tag_type(), true),
        Field::new("rack", tag_type(), true),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
    ]));
    let hosts: DictionaryArray<Int32Type> = hosts.iter().copied().collect();
    let racks: DictionaryArray<Int32Type> = racks.iter().copied().collect();
    // Each series' times count from 0.
    let mut times = Vec::new();
    for i in 0..hosts.len() {
        let same = i > 0 && hosts.key(i) == hosts.key(i - 1) && racks.key(i) == racks.key(i - 1);
        times.push(if same { times[i - 1] + 1 } else { 0 });
    }
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(hosts),
            Arc::new(racks),
            Arc::new(TimestampNanosecondArray::from_iter_values(times)),
        ],
    )
    .unwrap();
    let (store, meta) = written(&batch).await;
    FileIndex::load(store, PartitionedFile::from(meta))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_equality_on_the_tag_runs_are_in_order_of_narrows_them_by_binary_search() {
    // Hosts in order, each in two runs (two racks, not in order), a host missing in between.
    let names = ["h01", "h02", "h04", "h05", "h07"];
    let hosts: Vec<Option<&str>> = names.iter().flat_map(|h| [Some(*h); 4]).collect();
    let racks: Vec<Option<&str>> = (0..hosts.len())
        .map(|i| Some(if (i / 2) % 2 == 0 { "r9" } else { "r1" }))
        .collect();
    let index = hosts_and_racks(&hosts, &racks).await;
    let table = index.schema.as_ref().clone();
    assert_eq!(index.series.ordered, [true, false]);
    let eq = |tag: &str, v: &str| {
        binary(col(tag, &table).unwrap(), Operator::Eq, tag_lit(v), &table).unwrap()
    };
    for (v, runs) in [
        ("h01", 0..2),
        ("h04", 4..6),
        ("h07", 8..10),
        ("h00", 0..0),
        ("h03", 4..4),
        ("h08", 10..10),
    ] {
        let p = eq("host", v);
        assert_eq!(index.series.span(&[&p], &table), runs, "host = {v}");
        // The selection is the one evaluating the equality on every run gives.
        let mask = index
            .series
            .runs_evaluated(&p, &table, index.series.all())
            .unwrap();
        let rows: usize = mask.iter().filter(|m| **m).count() * 2;
        assert_eq!(
            index.series.select(&p, &table).selection.row_count(),
            rows,
            "host = {v}"
        );
        let with_rack = binary(p, Operator::And, eq("rack", "r1"), &table).unwrap();
        assert_eq!(
            index
                .series
                .select(&with_rack, &table)
                .selection
                .row_count(),
            rows / 2
        );
        let found = index
            .series
            .tag_rows_matching(Some(&with_rack), &table)
            .unwrap();
        assert_eq!(found.rows.num_rows(), rows / 4);
        assert!(found.exact, "both conjuncts are of tags");
        // A conjunct the runs cannot judge (time) leaves them as the tags select them, for
        // the caller to evaluate the whole condition again.
        let since = ScalarValue::TimestampNanosecond(Some(1), None);
        let timed = binary(
            col("time", &table).unwrap(),
            Operator::GtEq,
            lit(since),
            &table,
        );
        let with_time = binary(
            Arc::clone(&with_rack),
            Operator::And,
            timed.unwrap(),
            &table,
        );
        let found = index
            .series
            .tag_rows_matching(Some(&with_time.unwrap()), &table)
            .unwrap();
        assert_eq!(found.rows.num_rows(), rows / 4);
        assert!(!found.exact, "time is not judged on the runs");
    }
    // A tag the runs are not in order of, or a list of values: every run is judged.
    assert_eq!(index.series.span(&[&eq("rack", "r1")], &table), 0..10);
    let two = binary(eq("host", "h01"), Operator::Or, eq("host", "h05"), &table).unwrap();
    assert_eq!(index.series.span(&[&two], &table), 0..10);
    assert_eq!(index.series.select(&two, &table).selection.row_count(), 8);
}

#[tokio::test]
async fn an_equality_finds_its_runs_as_evaluating_it_would() {
    // Hosts in order, racks not: the dictionary of racks is not in value order.
    let hosts = ["a", "b", "c", "d", "e"].map(Some);
    let racks = [Some("r9"), Some("r1"), None, Some("r5"), Some("r1")];
    let index = hosts_and_racks(&hosts, &racks).await;
    let schema = Arc::clone(&index.schema);
    let mut table = schema.as_ref().clone();
    table = Schema::new(
        table
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .chain([Field::new("zone", tag_type(), true)])
            .collect::<Vec<_>>(),
    );
    let eq = |tag: &str, v: &str, flipped: bool| {
        let (c, l) = (col(tag, &table).unwrap(), tag_lit(v));
        let (a, b) = if flipped { (l, c) } else { (c, l) };
        binary(a, Operator::Eq, b, &table).unwrap()
    };
    for tag in ["host", "rack", "zone"] {
        for v in ["a", "c", "e", "r1", "r5", "r9", "r0", "zz", ""] {
            for flipped in [false, true] {
                let p = eq(tag, v, flipped);
                let fast = index
                    .series
                    .runs_equal(&p, &table, index.series.all())
                    .expect("an equality");
                assert_eq!(
                    Some(fast),
                    index.series.runs_evaluated(&p, &table, index.series.all()),
                    "{tag} = {v}"
                );
            }
        }
    }
    let r1 = index
        .series
        .runs_equal(&eq("rack", "r1", false), &table, index.series.all());
    assert_eq!(r1, Some(vec![false, true, false, false, true]));
    // ORs of equalities of one tag, and IN lists.
    let or = |a, b| binary(a, Operator::Or, b, &table).unwrap();
    let listed = |tag: &str, vs: &[&str]| {
        let list = vs.iter().map(|v| tag_lit(v)).collect();
        in_list(col(tag, &table).unwrap(), list, &false, &table).unwrap()
    };
    let cases = [
        or(eq("rack", "r1", false), eq("rack", "r5", true)),
        or(
            or(eq("host", "a", false), eq("host", "zz", false)),
            eq("host", "e", false),
        ),
        listed("rack", &["r9", "r5", "r0"]),
        listed("host", &["b", "d"]),
        listed("zone", &["x"]),
    ];
    for p in &cases {
        let fast = index
            .series
            .runs_equal(p, &table, index.series.all())
            .expect("equalities of one tag");
        assert_eq!(
            Some(fast),
            index.series.runs_evaluated(p, &table, index.series.all()),
            "{p}"
        );
    }
    assert_eq!(
        index
            .series
            .runs_equal(&cases[0], &table, index.series.all()),
        Some(vec![false, true, false, true, true])
    );
    // Equalities of two tags, or a negated list: evaluated.
    let two = or(eq("rack", "r1", false), eq("host", "a", false));
    assert_eq!(
        index.series.runs_equal(&two, &table, index.series.all()),
        None
    );
    let not_in = in_list(
        col("rack", &table).unwrap(),
        vec![tag_lit("r1")],
        &true,
        &table,
    )
    .unwrap();
    assert_eq!(
        index.series.runs_equal(&not_in, &table, index.series.all()),
        None
    );
    // Not an equality of a tag and a value: evaluated.
    let ne = binary(
        col("rack", &table).unwrap(),
        Operator::NotEq,
        tag_lit("r1"),
        &table,
    )
    .unwrap();
    assert_eq!(
        index.series.runs_equal(&ne, &table, index.series.all()),
        None
    );
    let tags = binary(
        col("rack", &table).unwrap(),
        Operator::Eq,
        col("host", &table).unwrap(),
        &table,
    )
    .unwrap();
    assert_eq!(
        index.series.runs_equal(&tags, &table, index.series.all()),
        None
    );
}

#[tokio::test]
async fn a_run_per_series_and_the_time_pages() {
    let (index, _) = file().await;
    assert_eq!(index.runs(), 3);
    assert_eq!(index.series.starts, [0, 3000, 6000, 9000]);
    let firsts: Vec<usize> = index.series.pages.iter().map(|p| p.0).collect();
    assert_eq!(firsts, (0..9).map(|p| p * 1024).collect::<Vec<_>>());
    // The page holding b's last rows and c's first ones.
    assert_eq!(index.series.pages[5], (5120, 0, 2999));
}

#[tokio::test]
async fn tag_conditions_select_runs_and_time_bounds_select_pages() {
    let (index, table) = file().await;
    let host_b = binary(
        col("host", &table).unwrap(),
        Operator::Eq,
        tag_lit("b"),
        &table,
    )
    .unwrap();
    let s = index.select(&host_b, &table);
    assert_eq!(rows(&s), [3000..6000]);
    assert_eq!((s.uses.as_slice(), s.runs), ([Use::Runs].as_slice(), 1));

    // b's times 2500..=2600 are at rows 5500..=5600, in the page of rows 5120..6144; the
    // page of rows 2048..3072 (a's 2048..2999 and b's 0..71) spans them too.
    let time = |op, t| binary(col("time", &table).unwrap(), op, ts(t), &table).unwrap();
    let and = |a, b| binary(a, Operator::And, b, &table).unwrap();
    let p = and(
        and(Arc::clone(&host_b), time(Operator::GtEq, 2500)),
        time(Operator::Lt, 2601),
    );
    let s = index.select(&p, &table);
    assert_eq!(rows(&s), [3000..3072, 5120..6000]);
    assert_eq!(s.uses, [Use::Runs, Use::Pages, Use::Pages]);

    // Bounds every page read lies within (b's times, 0..=2999, and those of a's rows in
    // its first page): every row read satisfies them.
    let p = and(
        and(Arc::clone(&host_b), time(Operator::GtEq, 0)),
        time(Operator::Lt, 3000),
    );
    let s = index.select(&p, &table);
    assert_eq!(rows(&s), [3000..6000]);
    assert_eq!(s.uses, [Use::Runs, Use::Within, Use::Within]);

    // Bounds that exclude each other select nothing.
    let p = and(time(Operator::Gt, 10), time(Operator::LtEq, 10));
    assert_eq!(rows(&index.select(&p, &table)), Vec::<Range<usize>>::new());

    // A condition on a field is left to the scan: every row.
    let field = binary(
        col("v", &table).unwrap(),
        Operator::Gt,
        lit(ScalarValue::Float64(Some(1.0))),
        &table,
    )
    .unwrap();
    let s = index.select(&and(Arc::clone(&host_b), field), &table);
    assert_eq!(rows(&s), [3000..6000]);
    assert_eq!(s.uses, [Use::Runs, Use::None]);
    // A raw query's `v IS NOT NULL` is left to the scan's row filter.
    let not_null = is_not_null(col("v", &table).unwrap()).unwrap();
    let s = index.select(&and(Arc::clone(&host_b), not_null), &table);
    assert_eq!(s.uses, [Use::Runs, Use::Rows]);

    // `host != 'b' OR host = 'c'`, and `IN`: evaluated per run.
    let not_b = binary(
        col("host", &table).unwrap(),
        Operator::NotEq,
        tag_lit("b"),
        &table,
    )
    .unwrap();
    assert_eq!(rows(&index.select(&not_b, &table)), [0..3000, 6000..9000]);
}

#[tokio::test]
async fn runs_differ_by_a_missing_tag_and_continue_across_batches() {
    // (a, r1), (a, no rack), (b, no rack): 25k rows each, so the reader's 64k-row batch
    // ends inside the third series.
    let n = 25_000;
    let hosts: Vec<Option<&str>> = ["a", "a", "b"]
        .iter()
        .flat_map(|h| std::iter::repeat_n(Some(*h), n))
        .collect();
    let racks: Vec<Option<&str>> = [Some("r1"), None, None]
        .iter()
        .flat_map(|r| std::iter::repeat_n(*r, n))
        .collect();
    let index = hosts_and_racks(&hosts, &racks).await;
    assert_eq!(index.series.starts, [0, n, 2 * n, 3 * n]);
    let table = index.series.runs.schema();
    let no_rack = is_null(col("rack", &table).unwrap()).unwrap();
    let s = index.select(&no_rack, &table);
    assert_eq!(rows(&s), [n..3 * n]);
}

#[tokio::test]
async fn scans_get_selections_and_files_past_the_capacity_are_left_as_planned() {
    let (store, _) = written(&hosts()).await;
    let ctx = crate::scan::session(1);
    let url = ObjectStoreUrl::parse("memory://").unwrap();
    ctx.register_object_store(url.as_ref(), store);
    let plan = ctx
        .read_parquet("memory:///f.parquet", Default::default())
        .await
        .unwrap()
        .filter(datafusion::prelude::col("host").eq(datafusion::prelude::lit("b")))
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let task = ctx.task_ctx();
    let indexes = SeriesIndexes::default();
    let (attached, shown) = indexes.attach(Arc::clone(&plan), &task).await.unwrap();
    // A selection this small: no pruning by statistics, and no predicate cache (it would
    // widen the reads of the columns the row filter shares with the projection).
    let mut options = Vec::new();
    attached
        .apply(|node| {
            if let Some(scan) = node.downcast_ref::<DataSourceExec>()
                && let Some((_, source)) = scan.downcast_to_file_source::<ParquetSource>()
            {
                let global = &source.table_parquet_options().global;
                options.push((global.pruning, source.max_predicate_cache_size()));
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
    assert_eq!(options, [(false, Some(0))]);
    let expected = ScanSelection {
        files: 1,
        runs: 3,
        runs_selected: 1,
        rows: 9000,
        rows_selected: 3000,
        pruning: false,
    };
    assert_eq!(shown, [expected]);
    assert_eq!(indexes.len(), 1);
    // What the runs and pages decide exactly leaves the scan's row filter: the tag
    // condition, and time bounds every page read lies within (b's times, 0..=2999); bounds
    // that cut through a page stay.
    let predicate = async |from: i64| {
        let time = |t| datafusion::prelude::lit(ScalarValue::TimestampNanosecond(Some(t), None));
        let plan = ctx
            .read_parquet("memory:///f.parquet", Default::default())
            .await
            .unwrap()
            .filter(
                datafusion::prelude::col("host")
                    .eq(datafusion::prelude::lit("b"))
                    .and(datafusion::prelude::col("time").gt_eq(time(from)))
                    .and(datafusion::prelude::col("time").lt(time(3000))),
            )
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let (attached, _) = indexes.attach(plan, &task).await.unwrap();
        let mut shown = Vec::new();
        attached
            .apply(|node| {
                if let Some(scan) = node.downcast_ref::<DataSourceExec>()
                    && let Some((_, source)) = scan.downcast_to_file_source::<ParquetSource>()
                {
                    shown.push(source.filter().map(|p| p.to_string()));
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
        shown
    };
    assert_eq!(predicate(0).await, [Some("true".to_string())]);
    let cut = predicate(2500).await;
    assert!(
        cut[0]
            .as_deref()
            .is_some_and(|p| p.contains("time") && !p.contains("host")),
        "{cut:?}"
    );
    // Three runs do not fit in two: the scan stays as planned, and the file is not read
    // again by the next query.
    let small = SeriesIndexes::with_capacity(2);
    for _ in 0..2 {
        let (_, shown) = small.attach(Arc::clone(&plan), &task).await.unwrap();
        assert_eq!(shown, []);
        assert!(small.is_empty());
        assert!(small.skipped(&Path::from("f.parquet")));
    }
}

#[tokio::test]
async fn scans_of_local_files_read_in_place_and_keep_their_dictionary_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
    let file = dir.path().join("f.parquet");
    let location = Path::from_absolute_path(&file).unwrap();
    ingester::parquet_io::write_file(&store, location.as_ref(), &hosts(), "m")
        .await
        .unwrap();
    let ctx = crate::scan::session(1);
    let task = ctx.task_ctx();
    let indexes = SeriesIndexes::default();
    let mut scanned = Vec::new();
    for _ in 0..2 {
        // Planned for each run: a plan's scan counts its bytes over all its runs.
        let plan = ctx
            .read_parquet(file.to_str().unwrap(), Default::default())
            .await
            .unwrap()
            .filter(datafusion::prelude::col("host").eq(datafusion::prelude::lit("b")))
            .unwrap()
            .select_columns(&["v"])
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let (run, _) = indexes.attach(plan, &task).await.unwrap();
        let batches = datafusion::physical_plan::collect(Arc::clone(&run), Arc::clone(&task))
            .await
            .unwrap();
        let values: Vec<f64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, (3000..6000).map(f64::from).collect::<Vec<_>>());
        let mut bytes = 0;
        run.apply(|node| {
            if let Some(m) = node.metrics() {
                bytes += m.sum_by_name("bytes_scanned").map_or(0, |v| v.as_usize());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        scanned.push(bytes);
    }
    let index = indexes.get(&location).unwrap();
    // Every dictionary page (`v`'s holds 9000 distinct values) was read and kept when the
    // file was indexed, before the first scan: both scans read only data pages.
    let kept = index.dictionaries.kept_bytes();
    assert!(kept > 9000 * 8, "{kept} bytes kept");
    let all: u64 = index
        .dictionaries
        .ranges()
        .iter()
        .map(|r| r.end - r.start)
        .sum();
    assert_eq!(kept as u64, all);
    assert_eq!(scanned[0], scanned[1], "{scanned:?}");
    assert!(scanned[0] > 0 && scanned[0] < kept, "{scanned:?}");
}

#[tokio::test]
async fn the_share_of_rows_tag_equalities_leave() {
    let (index, _) = file().await;
    let share = |e: &[(&str, usize)]| {
        index.share(
            &e.iter()
                .map(|(t, n)| (t.to_string(), *n))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(share(&[]), 1.0);
    assert_eq!(share(&[("host", 1)]), 1.0 / 3.0);
    assert_eq!(share(&[("host", 5)]), 1.0);
    assert_eq!(share(&[("host", 1), ("zone", 1)]), 0.0);
}

#[tokio::test]
async fn a_tag_the_file_lacks_is_null_in_every_run() {
    let (index, table) = file().await;
    let zone = || col("zone", &table).unwrap();
    let s = index.select(&is_null(zone()).unwrap(), &table);
    assert_eq!(rows(&s), [0..9000]);
    let s = index.select(
        &binary(zone(), Operator::Eq, tag_lit("x"), &table).unwrap(),
        &table,
    );
    assert_eq!((rows(&s), s.runs), (vec![], 0));
}
