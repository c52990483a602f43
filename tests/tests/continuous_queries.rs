//! Continuous queries on a real clock: what they compute next to InfluxDB 1.6.7, and, in a
//! three-node cluster, that each interval is computed by one node, none skipped, across a
//! leader that pauses and a leader that dies, with replication 2 of 3 so that the leader may
//! own no copy of the shard it reads and writes.
//!
//! Every wait is a condition polled against a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fletch_tests::cluster::{Node, error_of};
use fletch_tests::http::{post, query, send};
use fletch_tests::{Fletchd, Influxd, wait_for};
use serde_json::Value;

const S: i64 = 1_000_000_000;
const DEADLINE: Duration = Duration::from_secs(40);

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

fn q(base: &str, text: &str, params: &str) -> Value {
    let r = query(base, text, params);
    assert_eq!(r.status, 200, "{text}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{text}: {e}: {}", r.body))
}

/// The rows of the first series of the first result (empty when there is none).
fn rows(v: &Value) -> Vec<Value> {
    v["results"][0]["series"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn continuous_queries_compute_what_influxdb_1_6_7_computes() {
    if std::env::var_os("FLETCH_SKIP_INFLUXDB_COMPAT").is_some() {
        eprintln!("skipped: FLETCH_SKIP_INFLUXDB_COMPAT is set");
        return;
    }
    let influx = Influxd::start().expect("influxd (apt-get install influxdb)");
    let dir = tempfile::tempdir().unwrap();
    let fletch = Fletchd::start(dir.path(), &[]);
    let servers = [
        format!("http://{}", influx.http),
        fletch.url("").trim_end_matches('/').to_string(),
    ];
    // Points around now: one a second per host, from 5 s ago to 12 s ahead.
    let t0 = now_ns();
    let mut body = String::new();
    for i in -5..=12i64 {
        let t = (t0 / S + i) * S;
        body.push_str(&format!(
            "m,host=a v={i} {t}\nm,host=b v={} {}\n",
            2 * i,
            t + S / 2
        ));
    }
    let creates = [
        "CREATE CONTINUOUS QUERY per_s ON cq BEGIN SELECT count(v) AS n, sum(v) AS s, max(v) INTO agg FROM m GROUP BY time(1s), host END",
        "CREATE CONTINUOUS QUERY resampled ON cq RESAMPLE EVERY 2s FOR 4s BEGIN SELECT mean(v) INTO cq..agg2 FROM m WHERE host = 'b' GROUP BY time(1s) END",
    ];
    let base = t0 / S * S;
    for url in &servers {
        q(url, "CREATE DATABASE cq", "");
        let w = post(&format!("{url}/write?db=cq"), &body);
        assert_eq!(w.status, 204, "{}", w.body);
    }
    for url in &servers {
        for c in creates {
            assert_eq!(error_of(&q(url, c, "")), None, "{c}");
        }
    }
    // Both have computed the buckets up to base + 5 s.
    let last = base + 5 * S;
    for url in &servers {
        for m in ["agg", "agg2"] {
            wait_for(&format!("{m} at {last} on {url}"), DEADLINE, || {
                let v = q(
                    url,
                    &format!("SELECT * FROM {m} WHERE time = {last}"),
                    "?db=cq",
                );
                (!rows(&v).is_empty()).then_some(())
            });
        }
    }
    let texts = [
        format!(
            "SELECT * FROM agg WHERE time >= {} AND time <= {last} GROUP BY host",
            base + S
        ),
        format!(
            "SELECT * FROM agg2 WHERE time >= {} AND time <= {last}",
            base + S
        ),
        // Nothing before the queries were created: they do not go back.
        format!("SELECT * FROM agg WHERE time < {base}"),
        "SHOW CONTINUOUS QUERIES".to_string(),
        "SHOW MEASUREMENTS".to_string(),
    ];
    for text in &texts {
        let want = q(&servers[0], text, "?db=cq");
        let got = q(&servers[1], text, "?db=cq");
        assert_eq!(got, want, "{text}");
    }
    // The computed values are the source's.
    let direct = q(
        &servers[1],
        &format!(
            "SELECT count(v) AS n, sum(v) AS s, max(v) FROM m WHERE time >= {} AND time < {} GROUP BY time(1s), host",
            base + S,
            last + S
        ),
        "?db=cq",
    );
    let stored = q(
        &servers[1],
        &format!(
            "SELECT n, s, max FROM agg WHERE time >= {} AND time <= {last} GROUP BY host",
            base + S
        ),
        "?db=cq",
    );
    let values = |v: &Value| -> Vec<Value> {
        v["results"][0]["series"]
            .as_array()
            .map(|s| s.iter().map(|x| x["values"].clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(values(&direct).len(), 2, "{direct}");
    assert_eq!(values(&direct), values(&stored), "{direct}\n{stored}");
    for url in &servers {
        q(url, "DROP CONTINUOUS QUERY per_s ON cq", "");
    }
    assert_eq!(
        q(&servers[1], "SHOW CONTINUOUS QUERIES", ""),
        q(&servers[0], "SHOW CONTINUOUS QUERIES", "")
    );
}

/// The (start, end) of each run a node's log says finished, and of each run it took over.
fn runs_in(log: &str) -> (Vec<(i64, i64)>, Vec<(i64, i64)>) {
    let field = |line: &str, name: &str| -> Option<i64> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        line[at..]
            .split(|c: char| !c.is_ascii_digit() && c != '-')
            .next()?
            .parse()
            .ok()
    };
    let (mut finished, mut taken) = (Vec::new(), Vec::new());
    for line in log.lines() {
        let into = if line.contains("finished continuous query") {
            &mut finished
        } else if line.contains("taking over an unfinished continuous query run") {
            &mut taken
        } else {
            continue;
        };
        if let (Some(s), Some(e)) = (field(line, "start"), field(line, "end")) {
            into.push((s, e));
        }
    }
    (finished, taken)
}

/// The index of the node that leads, as the live nodes see it (a node other than `not`).
fn leader(nodes: &[Node], live: &[usize], not: Option<usize>) -> usize {
    wait_for("a meta leader", DEADLINE, || {
        let id = nodes[live[0]].status()["leader"].as_u64()?;
        let v = nodes[live[0]].q("SHOW SERVERS");
        let metas = v["results"][0]["series"][1]["values"].as_array()?.clone();
        let addr = metas.iter().find(|r| r[0].as_u64() == Some(id))?[1]
            .as_str()?
            .to_string();
        let i = nodes.iter().position(|n| n.meta_http == addr)?;
        if not == Some(i) {
            return None;
        }
        // Every live node agrees.
        live.iter()
            .all(|&j| nodes[j].status()["leader"].as_u64() == Some(id))
            .then_some(i)
    })
}

#[test]
fn a_continuous_query_runs_once_per_interval_across_leader_changes_and_node_loss() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            let mut n = Node::new(root.path(), &format!("n{i}"), true);
            n.env = vec![("FLETCH_CONTINUOUS_QUERIES_RUN_INTERVAL", "200ms")];
            n
        })
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    nodes[1].start(&[&first]);
    nodes[2].start(&[&first]);
    wait_for("three data nodes", DEADLINE, || {
        let v = nodes[0].q("SHOW SERVERS");
        (v["results"][0]["series"][0]["values"].as_array()?.len() == 3).then_some(())
    });
    assert_eq!(
        error_of(&nodes[0].q("CREATE DATABASE c WITH REPLICATION 2")),
        None
    );

    // Ten points a second, through whichever nodes are up.
    let urls: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(nodes.iter().map(Node::url).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    // Each write's start (ns), how long it took and how it ended: a second without points
    // is explained by the writes around it.
    let writer = {
        let (urls, stop) = (urls.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0usize;
            let mut log: Vec<(i64, u128, String, String)> = Vec::new();
            // Bounded: at most ten minutes of writes even if the test never says stop.
            while !stop.load(Ordering::Relaxed) && i < 6000 {
                // Held through the request: a node leaves the list, and is paused or
                // killed, only between requests (a request caught by a pause would hold
                // this writer until the node resumes).
                let live = urls.lock().unwrap();
                let url = live[i % live.len()].clone();
                let (t, began) = (now_ns(), std::time::Instant::now());
                let r = send("POST", &format!("{url}/write?db=c"), &[], b"m v=1".to_vec());
                drop(live);
                let outcome = match r {
                    Ok(r) => format!("{} {}", r.status, r.body.trim()),
                    Err(e) => e,
                };
                log.push((t, began.elapsed().as_millis(), url, outcome));
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            log
        })
    };
    wait_for("points in c", DEADLINE, || {
        (!rows(&nodes[0].q("SELECT count(v) FROM c..m")).is_empty()).then_some(())
    });
    assert_eq!(
        error_of(&nodes[0].q(
            "CREATE CONTINUOUS QUERY per_s ON c BEGIN SELECT count(v) INTO c.autogen.per_s FROM c.autogen.m GROUP BY time(1s) END"
        )),
        None
    );
    let start = (now_ns() / S + 2) * S;
    let mut live: Vec<usize> = vec![0, 1, 2];
    let mut events: Vec<(i64, String)> = Vec::new();
    let buckets_after = |nodes: &[Node], live: &[usize], t: i64| {
        wait_for(&format!("per_s computed past {t}"), DEADLINE, || {
            let v = nodes[live[0]].q(&format!("SELECT count FROM c..per_s WHERE time >= {t}"));
            (!rows(&v).is_empty()).then_some(())
        });
    };
    buckets_after(&nodes, &live, start + 2 * S);

    // The leader pauses (a leader change); it comes back as a follower.
    let paused = leader(&nodes, &live, None);
    {
        let mut urls = urls.lock().unwrap();
        urls.retain(|u| *u != nodes[paused].url());
        nodes[paused].proc.as_ref().unwrap().pause();
    }
    events.push((now_ns(), format!("paused n{}", paused + 1)));
    let others: Vec<usize> = live.iter().copied().filter(|&i| i != paused).collect();
    let second = leader(&nodes, &others, Some(paused));
    assert_ne!(second, paused);
    buckets_after(&nodes, &others, (now_ns() / S + 2) * S);
    nodes[paused].proc.as_ref().unwrap().resume();
    events.push((now_ns(), format!("resumed n{}", paused + 1)));
    urls.lock().unwrap().push(nodes[paused].url());
    buckets_after(&nodes, &live, (now_ns() / S + 2) * S);

    // The leader dies (node loss): its log is read first.
    let dead = leader(&nodes, &live, None);
    let dead_log = nodes[dead].log();
    {
        let mut urls = urls.lock().unwrap();
        urls.retain(|u| *u != nodes[dead].url());
        nodes[dead].kill();
    }
    events.push((now_ns(), format!("killed n{}", dead + 1)));
    live.retain(|&i| i != dead);
    let third = leader(&nodes, &live, Some(dead));
    assert_ne!(third, dead);
    let end = (now_ns() / S) * S;
    events.push((now_ns(), format!("n{} leads", third + 1)));
    buckets_after(&nodes, &live, end + 2 * S);
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();

    // No interval skipped: every second from start to end has its count, as the points have.
    let computed = rows(&nodes[live[0]].q(&format!(
        "SELECT count FROM c..per_s WHERE time >= {start} AND time < {end}"
    )));
    let seconds = (end - start) / S;
    let raw = rows(&nodes[live[0]].q(&format!(
        "SELECT count(v) FROM c..m WHERE time >= {start} AND time < {end} GROUP BY time(1s) fill(none)"
    )));
    let unusual: Vec<_> = writes
        .iter()
        .filter(|w| w.1 > 300 || !w.3.starts_with("204"))
        .collect();
    assert_eq!(
        raw.len() as i64,
        seconds,
        "every second has points: {raw:?}; writes that failed or took over 300 ms: {unusual:?}; events: {events:?}"
    );
    assert_eq!(
        computed.len() as i64,
        seconds,
        "a bucket per second from {start} to {end}: {computed:?}"
    );

    // No interval computed twice: the runs that finished, on every node, do not overlap, but
    // for a run taken over from a node that stopped in it.
    let mut finished = Vec::new();
    let mut taken = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let log = if i == dead { dead_log.clone() } else { n.log() };
        let (f, t) = runs_in(&log);
        finished.extend(f);
        taken.extend(t);
    }
    finished.sort();
    assert!(
        finished.len() as i64 >= seconds,
        "runs: {finished:?} over {seconds} s"
    );
    for pair in finished.windows(2) {
        let ((s1, e1), (s2, _)) = (pair[0], pair[1]);
        assert!(
            s2 >= e1 || (taken.contains(&pair[0]) && pair[0] == pair[1]),
            "runs overlap: {:?} and {:?} (taken over: {taken:?})",
            (s1, e1),
            pair[1]
        );
    }
}
