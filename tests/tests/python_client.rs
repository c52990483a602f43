//! The `influxdb` Python client (PyPI, the 1.x API) against InfluxDB 1.6.7 and against Fletch:
//! every call of its API (databases, retention policies, users and privileges, writes in every
//! time precision, queries with epochs, chunks and bound parameters, series, measurements,
//! continuous queries) by `tests/clients/influxdb_v1.py`, whose step-by-step results must be
//! the same on both.
//!
//! Needs `influxd` and the `influxdb` package (`.ci/run` installs both). Set
//! `FLETCH_SKIP_INFLUXDB_COMPAT=1` to skip on a machine without them.

use fletch_tests::{Fletchd, Influxd, python_json};

#[test]
fn the_influxdb_python_client_gets_what_1_6_7_gives_it() {
    if std::env::var_os("FLETCH_SKIP_INFLUXDB_COMPAT").is_some() {
        eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT is set");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/influxdb_v1.py");
    let influx = Influxd::start().expect("influxd (apt-get install influxdb)");
    let dir = tempfile::tempdir().unwrap();
    let fletch = Fletchd::start(dir.path(), &[]);
    let run = |addr: &str| {
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        python_json(&[script, host, port])
    };
    let want = run(&influx.http);
    let got = run(&fletch.http);
    let (want, got) = (want.as_array().unwrap(), got.as_array().unwrap());
    assert!(want.len() > 80, "{want:?}");
    for (w, g) in want.iter().zip(got) {
        assert_eq!(g, w, "step {}", w[0]);
    }
    assert_eq!(got.len(), want.len());
}
