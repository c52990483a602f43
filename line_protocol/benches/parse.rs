//! Line protocol parsing throughput on a TSBS-shaped batch (bytes/s and lines/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use line_protocol::{ParseOptions, parse_body};

fn batch(lines: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..lines {
        out.push_str(&format!(
            "cpu,hostname=host_{},region=us-west-2,datacenter=us-west-2a,rack=42,os=Ubuntu16.04LTS,arch=x64,team=SF,service=7,service_version=1,service_environment=production usage_user={}.5,usage_system=12.25,usage_idle=70.1,usage_nice=1.5,usage_iowait=2.25,usage_irq=0.5,usage_softirq=0.75,usage_steal=0.1,usage_guest=0,usage_guest_nice=0 {}\n",
            i % 100,
            i % 97,
            1_451_606_400_000_000_000i64 + i as i64 * 10_000_000_000
        ));
    }
    out.into_bytes()
}

fn parse(c: &mut Criterion) {
    let body = batch(5000);
    let mut g = c.benchmark_group("line_protocol");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse 5000 TSBS lines (bytes)", |b| {
        b.iter(|| parse_body(&body, &ParseOptions::default()).points.len())
    });
    g.throughput(Throughput::Elements(5000));
    g.bench_function("parse 5000 TSBS lines (lines)", |b| {
        b.iter(|| parse_body(&body, &ParseOptions::default()).points.len())
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
