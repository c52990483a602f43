//! Subscriptions as a user sees them: what `influxd` 1.6.7 and Fletch send to the same kind of
//! destinations (UDP and HTTP, `ALL` and `ANY` with a destination that is down) for the same
//! writes, and, in a three-node cluster with replication 2, that each write leaves the cluster
//! once whichever node takes it.
//!
//! The destinations are listeners in this process on loopback. Every wait is a condition
//! polled against a deadline; the listeners stop when their sink is dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fletch_tests::cluster::{error_of, three_data_nodes};
use fletch_tests::http::{post, query};
use fletch_tests::{Both, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

/// A UDP and an HTTP destination; what they received, one entry per point:
/// `udp <line>` or `http <db>.<rp> precision=<p> <line>`.
struct Sink {
    udp: u16,
    http: u16,
    got: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    fn start() -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let udp_port = udp.local_addr().unwrap().port();
        {
            let (got, stop) = (got.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = udp.recv(&mut buf) {
                        for line in String::from_utf8_lossy(&buf[..n]).lines() {
                            got.lock().unwrap().push(format!("udp {line}"));
                        }
                    }
                }
            });
        }
        let http = TcpListener::bind("127.0.0.1:0").unwrap();
        http.set_nonblocking(true).unwrap();
        let http_port = http.local_addr().unwrap().port();
        {
            let (got, stop) = (got.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match http.accept() {
                        Ok((conn, _)) => {
                            let (got, stop) = (got.clone(), stop.clone());
                            std::thread::spawn(move || serve(conn, &got, &stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        Self {
            udp: udp_port,
            http: http_port,
            got,
            stop,
        }
    }

    fn got(&self) -> Vec<String> {
        let mut v = self.got.lock().unwrap().clone();
        v.sort();
        v
    }

    /// Waits until `n` points arrived; all of them, sorted.
    fn wait(&self, what: &str, n: usize) -> Vec<String> {
        wait_for(what, DEADLINE, || {
            let got = self.got();
            (got.len() >= n).then_some(got)
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One HTTP/1.1 connection: each request's body recorded, answered 204.
fn serve(conn: TcpStream, got: &Mutex<Vec<String>>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(conn);
    while !stop.load(Ordering::Relaxed) {
        let mut request_line = String::new();
        match r.read_line(&mut request_line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => continue,
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or_default();
        let (path, qs) = target.split_once('?').unwrap_or((target, ""));
        let params: BTreeMap<&str, &str> = qs
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let at = format!(
            "http {path} {}.{} precision={}",
            params.get("db").unwrap_or(&""),
            params.get("rp").unwrap_or(&""),
            params.get("precision").unwrap_or(&"")
        );
        for line in String::from_utf8_lossy(&body).lines() {
            got.lock().unwrap().push(format!("{at} {line}"));
        }
        let _ = out.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    }
}

fn q(base: &str, text: &str) -> Value {
    let r = query(base, text, "");
    assert_eq!(r.status, 200, "{text}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{text}: {e}: {}", r.body))
}

#[test]
fn subscriptions_forward_what_influxdb_1_6_7_forwards() {
    let Some(both) = Both::start() else { return };
    let servers = &both.urls;
    // A port nothing listens on: an ANY subscription goes on to the next destination.
    let down = fletch_tests::free_port();
    let mut sinks = Vec::new();
    for url in servers {
        let sink = Sink::start();
        for s in [
            "CREATE DATABASE s".to_string(),
            "CREATE DATABASE quiet".to_string(),
            "CREATE RETENTION POLICY forever ON s DURATION INF REPLICATION 1".to_string(),
            format!(
                "CREATE SUBSCRIPTION everything ON s.autogen DESTINATIONS ALL 'udp://127.0.0.1:{}', 'http://127.0.0.1:{}'",
                sink.udp, sink.http
            ),
            format!(
                "CREATE SUBSCRIPTION one ON s.forever DESTINATIONS ANY 'http://127.0.0.1:{down}', 'http://127.0.0.1:{}/base/'",
                sink.http
            ),
        ] {
            assert_eq!(error_of(&q(url, &s)), None, "{s}");
        }
        // influxd starts serving a new subscription when its subscriber service hears of the
        // change: a first point through each subscription says it has.
        for (params, body) in [("db=s", "warm v=1 1"), ("db=s&rp=forever", "warm v=2 2")] {
            let r = post(&format!("{url}/write?{params}"), body);
            assert_eq!(r.status, 204, "{}", r.body);
        }
        sink.wait("the subscriptions to start", 3);
        sinks.push(sink);
    }
    let writes: &[(&str, &str, u16)] = &[
        (
            "db=s",
            "m,host=a\\ b,t=x f=1,i=2i,s=\"q\\\"uote\",b=true 1000000000\nm,host=c f=1.5 2000000000\ncpu,host=a usage=0.25 3000000000",
            204,
        ),
        ("db=s&precision=s", "m,host=a f=-2.75,big=123456.789 4", 204),
        ("db=s&rp=forever", "n v=1i 5000000000", 204),
        ("db=s&rp=forever&precision=ms", "n v=2i 6000", 204),
        (
            "db=s&rp=forever",
            "n v=3i 7000000000\nn v=4i 8000000000",
            204,
        ),
        // No subscription there.
        ("db=quiet", "m f=1 9000000000", 204),
        ("db=s&rp=autogen", "m,host=c f=3 10000000000", 204),
    ];
    for url in servers {
        for (params, body, status) in writes {
            let r = post(&format!("{url}/write?{params}"), body);
            assert_eq!(r.status, *status, "{url} {params}: {}", r.body);
        }
    }
    // ALL: 5 points to each of two destinations; ANY: 4 points once; and the first three.
    let expected = 5 * 2 + 4 + 3;
    let influx_got = sinks[0].wait("influxd's subscriptions", expected);
    let fletch_got = sinks[1].wait("fletch's subscriptions", expected);
    let show = |v: &[String]| v.join("\n");
    assert_eq!(
        show(&fletch_got),
        show(&influx_got),
        "what the destinations got (left Fletch, right influxd)"
    );
    // Both listed as 1.x lists them.
    let listed: Vec<String> = servers
        .iter()
        .zip(&sinks)
        .map(|(u, sink)| {
            q(u, "SHOW SUBSCRIPTIONS")["results"]
                .to_string()
                .replace(&format!(":{}", sink.udp), ":UDP")
                .replace(&format!(":{}", sink.http), ":HTTP")
        })
        .collect();
    assert_eq!(listed[1], listed[0]);
    assert!(
        listed[0].contains(r#"["forever","one","ANY",["#),
        "{}",
        listed[0]
    );

    // Dropped: later writes go nowhere (a marker write to the other subscription arrives).
    for url in servers {
        assert_eq!(
            error_of(&q(url, "DROP SUBSCRIPTION everything ON s.autogen")),
            None
        );
        assert_eq!(
            error_of(&q(url, "DROP SUBSCRIPTION everything ON s.autogen")).as_deref(),
            Some("subscription not found")
        );
        let r = post(&format!("{url}/write?db=s"), "m f=9 11000000000");
        assert_eq!(r.status, 204, "{}", r.body);
        let r = post(
            &format!("{url}/write?db=s&rp=forever"),
            "n v=9i 12000000000",
        );
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let mut influx_got = sinks[0].wait("influxd's marker", expected + 1);
    let fletch_got = sinks[1].wait("fletch's marker", expected + 1);
    // influxd hears of the drop on its own time: what it sent after it is not compared.
    influx_got.retain(|l| !l.contains("f=9"));
    assert_eq!(show(&fletch_got), show(&influx_got));
    assert!(
        !fletch_got.iter().any(|l| l.contains("f=9")),
        "{fletch_got:?}"
    );
}

#[test]
fn each_write_leaves_a_cluster_once_whichever_node_takes_it() {
    let root = tempfile::tempdir().unwrap();
    let nodes = three_data_nodes(root.path(), Vec::new());
    let sink = Sink::start();
    assert_eq!(
        error_of(&nodes[0].q("CREATE DATABASE c WITH REPLICATION 2")),
        None
    );
    assert_eq!(
        error_of(&nodes[1].q(&format!(
            "CREATE SUBSCRIPTION s ON c.autogen DESTINATIONS ALL 'http://127.0.0.1:{}'",
            sink.http
        ))),
        None
    );
    // Every node knows it (the catalog is replicated) before the writes start.
    for n in &nodes {
        wait_for("the subscription on every node", DEADLINE, || {
            let v = n.q("SHOW SUBSCRIPTIONS");
            (v["results"][0]["series"][0]["values"][0][1] == "s").then_some(())
        });
    }
    let writes = 30;
    for i in 0..writes {
        let url = nodes[i % 3].url();
        let r = post(
            &format!("{url}/write?db=c"),
            &format!("m,host=h{} v={i}i {}", i % 4, (i + 1) * 1_000_000_000),
        );
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let got = sink.wait("every write forwarded", writes);
    // A last write through the first node: once it is there, any second copy of an earlier
    // write would have had as long to arrive.
    let r = post(
        &format!("{}/write?db=c", nodes[0].url()),
        "m,host=last v=-1i 99000000000",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let got_all = sink.wait("the last write", writes + 1);
    assert_eq!(got_all.len(), writes + 1, "{got_all:?}");
    let mut distinct = got.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), writes, "a write forwarded twice: {got:?}");
    assert!(
        got.iter()
            .all(|l| l.starts_with("http /write c.autogen precision=ns m,host=h"))
    );
}
