//! Persisting a buffer: Arrow builders to a sorted, merged batch, encoded as Parquet (in memory,
//! so that the disk does not take part); and compaction's k-way merge of sorted inputs.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ingester::table::TableBuffer;
use line_protocol::{ParseOptions, parse_body};
use parquet::arrow::ArrowWriter;

fn buffer(rows: usize) -> TableBuffer {
    let mut body = String::new();
    for i in 0..rows {
        body.push_str(&format!(
            "cpu,hostname=host_{},region=r{} usage_user={}.5,usage_system=12.25,usage_idle={}.1 {}\n",
            i % 100,
            i % 7,
            i % 97,
            i % 89,
            i as i64 / 100 * 10_000_000_000
        ));
    }
    let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
    let mut t = TableBuffer::default();
    for p in &parsed.points {
        t.push(p);
    }
    t
}

fn persist(c: &mut Criterion) {
    let rows = 100_000;
    let t = buffer(rows);
    let mut g = c.benchmark_group("persist");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(10);
    g.bench_function("sort and merge 100k rows", |b| {
        b.iter(|| {
            ingester::batch::sort_dedup(&t.to_batch().unwrap())
                .unwrap()
                .num_rows()
        })
    });
    let sorted = ingester::batch::sort_dedup(&t.to_batch().unwrap()).unwrap();
    g.bench_function("encode 100k rows as Parquet", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            let mut w = ArrowWriter::try_new(&mut out, sorted.schema(), None).unwrap();
            w.write(&sorted).unwrap();
            w.close().unwrap();
            out.len()
        })
    });
    g.finish();
}

/// Three sorted inputs of 100k rows each (the same series and times, so every output row merges
/// three), through compaction's merge.
fn merge(c: &mut Criterion) {
    let rows = 100_000;
    let sorted = ingester::batch::sort_dedup(&buffer(rows).to_batch().unwrap()).unwrap();
    let key = ingester::batch::sort_key_names(&sorted);
    let mut g = c.benchmark_group("compact");
    g.throughput(Throughput::Elements(3 * rows as u64));
    g.sample_size(10);
    g.bench_function("merge 3 x 100k sorted rows", |b| {
        b.iter(|| {
            let inputs = (0..3)
                .map(|_| ingester::merge::sliced(sorted.clone()))
                .collect();
            ingester::merge::Merge::new(sorted.schema(), &key, inputs)
                .unwrap()
                .map(|b| b.unwrap().num_rows())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, persist, merge);
criterion_main!(benches);
