//! `fletchd`: the Fletch server. Everything happens in [`gateway::cli::main`].

/// jemalloc, as InfluxDB 3 uses: with glibc's malloc, a query spent a sixth of its CPU faulting
/// in fresh pages for the buffers it allocated (Parquet column chunks, decoded dictionaries),
/// which glibc had given back to the kernel after the previous query. Measured as server CPU
/// per query on 100 hosts x 12 h: `lastpoint` 14.1 → 11.1 ms; see `docs/benchmarks.md`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
