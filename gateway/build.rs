//! `fletchd` is linked as a position-dependent executable, as Go links InfluxDB's `influxd`.
//!
//! A position-independent `fletchd` carries 6 MB of dynamic relocations that the loader reads
//! and 4.5 MB of pointer tables (`.data.rel.ro`) that it rewrites at every start: 10 MB of a
//! node's resident memory at rest, half of it private copies, for the executable's address
//! randomization alone (shared libraries and the heap stay randomized). The objects are still
//! compiled position-independent; only the final link differs.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=fletchd=-no-pie");
    }
}
