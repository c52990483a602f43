//! The `fletch` shell prints what the `influx` 1.x shell prints, character for character, for
//! the same statements against the same server (Debian's `influxdb-client`; .ci/run installs it).

use std::process::Command;

use fletch_tests::Fletchd;
use fletch_tests::http::{post, query};

const STATEMENTS: &[&str] = &[
    "SHOW DATABASES",
    "SHOW RETENTION POLICIES",
    "SHOW MEASUREMENTS",
    "SHOW SERIES",
    "SHOW TAG VALUES WITH KEY = host",
    "SHOW FIELD KEYS",
    "SELECT * FROM cpu",
    "SELECT usage, host FROM cpu GROUP BY region",
    "SELECT mean(usage), max(usage) FROM cpu GROUP BY host",
    "SELECT msg FROM log",
    "SELECT top(usage, host, 2) FROM cpu",
    "SELECT usage FROM cpu; SELECT msg FROM log",
    "SELECT nothing FROM cpu",
    "SELEC 1",
    "SELECT * FROM nope.x.y",
];

fn run(program: &str, args: &[&str], port: &str, q: &str) -> (i32, String, String) {
    let out = Command::new(program)
        .args(["-host", "127.0.0.1", "-port", port, "-database", "shell"])
        .args(args)
        .args(["-execute", q])
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn fletch_prints_like_the_influx_shell() {
    if std::env::var("FLETCH_SKIP_INFLUXDB_COMPAT").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT=1");
        return;
    }
    assert!(std::path::Path::new("/usr/bin/influx").exists(), "the influx shell is not installed (apt-get install influxdb-client)");
    let dir = tempfile::tempdir().unwrap();
    let node = Fletchd::start(dir.path(), &[]);
    query(&node.url(""), "CREATE DATABASE shell", "");
    let r = post(
        &node.url("/write?db=shell&precision=s"),
        "cpu,host=a,region=w usage=1.5,cores=4i 0\ncpu,host=b,region=e usage=20 10\ncpu,host=a,region=w usage=3 70\nlog,host=a msg=\"a, \\\"quoted\\\" message\" 5",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let port = node.http.rsplit(':').next().unwrap().to_string();
    let fletch = fletch_tests::bin("fletch");
    let mut diffs = Vec::new();
    for q in STATEMENTS {
        for precision in [
            &[][..],
            &["-precision", "rfc3339"][..],
            &["-format", "json"][..],
            &["-format", "json", "-pretty"][..],
            &["-format", "csv"][..],
        ] {
            let expected = run("/usr/bin/influx", precision, &port, q);
            let actual = run(fletch.to_str().unwrap(), precision, &port, q);
            if expected != actual {
                diffs.push(format!("{q} {precision:?}\n--- influx ({}):\n{}{}\n--- fletch ({}):\n{}{}", expected.0, expected.1, expected.2, actual.0, actual.1, actual.2));
            }
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
