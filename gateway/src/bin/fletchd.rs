//! `fletchd`: the Fletch server. Everything happens in [`gateway::cli::main`].

/// jemalloc, as InfluxDB 3 uses: with glibc's malloc, a query spent a sixth of its CPU faulting
/// in fresh pages for the buffers it allocated (Parquet column chunks, decoded dictionaries),
/// which glibc had given back to the kernel after the previous query. Measured as server CPU
/// per query on 100 hosts x 12 h: `lastpoint` 14.1 → 11.1 ms; see `docs/benchmarks.md`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// jemalloc's options are built in (`.cargo/config.toml`: JEMALLOC_SYS_WITH_MALLOC_CONF;
// `_RJEM_MALLOC_CONF` in the environment overrides them): a background thread returns freed
// pages to the kernel as they age, also while the node is idle. Without it, what a load or a
// query freed stayed resident until later allocations happened to purge it: resident memory
// after loading 100 hosts x 12 h and persisting went from 138 to 107 MB.

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
