//! `[[udp]]` listeners, as a sender uses them: raw datagrams of line protocol (good and bad
//! lines), and the Python `influxdb` client's `use_udp` writes, land in the listener's database
//! (created for it) in its precision. Waits are conditions polled against a deadline.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use fletch_tests::http::query;
use fletch_tests::{Fletchd, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

#[test]
fn udp_listeners_write_line_protocol_into_their_database() {
    let dir = tempfile::tempdir().unwrap();
    let (raw_port, py_port) = (free_udp_port(), free_udp_port());
    let config = dir.path().join("fletch.toml");
    std::fs::write(
        &config,
        format!(
            "[[udp]]\nenabled = true\nbind-address = \"127.0.0.1:{raw_port}\"\ndatabase = \"u\"\nprecision = \"s\"\nbatch-timeout = \"50ms\"\n\n\
             [[udp]]\nenabled = true\nbind-address = \"127.0.0.1:{py_port}\"\ndatabase = \"py\"\nbatch-size = 2\n\n\
             [[udp]]\nenabled = false\nbind-address = \"127.0.0.1:1\"\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let fletch = Fletchd::launch(
        dir.path(),
        &[
            "--config",
            &config,
            "--http-bind-address",
            "127.0.0.1:0",
            "--meta-http-bind-address",
            "127.0.0.1:0",
            "--meta-bind-address",
            "127.0.0.1:0",
        ],
        &[],
    );
    let base = fletch.url("").trim_end_matches('/').to_string();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in [
        "cpu,h=a v=1 10\ncpu,h=b v=2 20",
        "bad line",
        "cpu,h=c v=3 30\ncpu,h=c v=\"conflicting type\" 40",
    ] {
        sender
            .send_to(datagram.as_bytes(), ("127.0.0.1", raw_port))
            .unwrap();
    }
    let rows = |db: &str, q: &str| -> Option<Value> {
        let r = query(&base, q, &format!("?db={db}"));
        let v: Value = serde_json::from_str(&r.body).ok()?;
        let values = v["results"][0]["series"][0]["values"].clone();
        values.is_array().then_some(values)
    };
    let got = wait_for("the datagrams' points", DEADLINE, || {
        rows("u", "SELECT v FROM cpu").filter(|v| v.as_array().is_some_and(|a| a.len() == 3))
    });
    // Seconds, as the listener's precision says; the bad line and the refused point are gone.
    assert_eq!(
        got,
        serde_json::json!([
            ["1970-01-01T00:00:10Z", 1],
            ["1970-01-01T00:00:20Z", 2],
            ["1970-01-01T00:00:30Z", 3]
        ])
    );
    // The Python client's UDP writes (its own batching of lines into datagrams).
    let script = format!(
        "import influxdb\n\
         c = influxdb.InfluxDBClient(use_udp=True, udp_port={py_port})\n\
         c.write_points([{{'measurement': 'm', 'tags': {{'k': str(i)}}, 'time': i, 'fields': {{'f': float(i)}}}} for i in range(5)])\n\
         c.send_packet({{'points': [{{'measurement': 'm', 'tags': {{'k': 'p'}}, 'time': 9, 'fields': {{'f': 9.5}}}}]}})\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = wait_for("the Python client's points", DEADLINE, || {
        rows("py", "SELECT sum(f), count(f) FROM m").filter(|v| v[0][2] == 6)
    });
    assert_eq!(got[0][1], 19.5);
    let metrics = fletch_tests::http::send("GET", &format!("{base}/metrics"), &[], Vec::new())
        .expect("metrics")
        .body;
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fletch_udp_points_dropped_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(dropped, Some(2), "{metrics}");
}
