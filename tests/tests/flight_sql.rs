//! Arrow Flight SQL and InfluxDB 3's Flight ticket on the HTTP API's port, with the clients
//! users run: `pyarrow.flight`, the ADBC Flight SQL driver and `influxdb3-python`
//! (`tests/clients/flight_sql.py`; `.ci/run` installs them). Set `FLETCH_SKIP_PY_CLIENTS=1` to
//! skip on a machine without them.

use fletch_tests::Fletchd;
use fletch_tests::http::{post, query};

#[test]
fn flight_sql_clients_query_the_same_data() {
    if std::env::var("FLETCH_SKIP_PY_CLIENTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: FLETCH_SKIP_PY_CLIENTS=1");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = Fletchd::start(dir.path(), &[]);
    let base = f.url("");
    for q in [
        "CREATE DATABASE fs",
        "CREATE RETENTION POLICY other ON fs DURATION INF REPLICATION 1",
        "CREATE DATABASE v3",
        "CREATE DATABASE w",
        "CREATE RETENTION POLICY wrp ON w DURATION INF REPLICATION 1",
    ] {
        let r = query(&base, q, "");
        assert_eq!(r.status, 200, "{q}: {}", r.body);
    }
    let r = post(
        &format!("{base}/write?db=fs&precision=s"),
        "cpu,host=a,region=w usage=1.5,n=3i 1\ncpu,host=b,region=e usage=2.5,n=4i 1\n\
         cpu,host=a,region=w usage=2.0,n=5i 2\ncpu,host=b,region=e usage=2.5,n=6i 2\n\
         cpu,host=a,region=w usage=2.5,n=2i 3\ncpu,host=b,region=e usage=2.5,n=1i 3\n\
         mem,host=a free=10i 1\nmem,host=a free=12i 2",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    // The other retention policy, through /write.
    let r = post(
        &format!("{base}/write?db=fs&rp=other&precision=s"),
        "mem,host=z free=1i 1",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    // InfluxDB 3's write endpoint, and bad input to it and to /api/v2/write.
    let r = post(
        &format!("{base}/api/v3/write_lp?db=v3&precision=second"),
        "net,host=a up=1i 7",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = query(&base, "SELECT up FROM v3..net", "");
    assert!(
        r.body.contains(r#"["1970-01-01T00:00:07Z",1]"#),
        "{}",
        r.body
    );
    for (url, status) in [
        ("/api/v3/write_lp?db=nope", 404),
        ("/api/v3/write_lp?db=v3&precision=fortnight", 400),
        ("/api/v2/write?org=x", 400),
    ] {
        let r = post(&format!("{base}{url}"), "net up=2i");
        assert_eq!(r.status, status, "{url}: {}", r.body);
        assert!(r.body.contains("\"error\""), "{url}: {}", r.body);
    }
    // The clients against the data as written (in the write buffer), then again once a
    // restart has persisted it to Parquet (the script's own writes rewrite the same points).
    let clients = |f: &Fletchd| {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/flight_sql.py");
        let out = std::process::Command::new("python3")
            .arg(&script)
            .arg(&f.http)
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}\n{}", f.log_text());
        assert!(
            text.contains("all Flight SQL clients answered as expected"),
            "{text}"
        );
    };
    clients(&f);
    assert!(f.terminate().success());
    let f = Fletchd::start(dir.path(), &[]);
    let parquet = walk(&dir.path().join("data"))
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "parquet"));
    assert!(parquet, "a clean stop persists the buffer");
    clients(&f);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
