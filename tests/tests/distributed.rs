//! Distributed queries, as processes on loopback: three data nodes with a database of
//! replication factor 2, points written through all three, and every query sent to a fourth
//! node that holds no data (`[data] enabled = false`). Its answers must equal those of one node
//! holding every point; with one data node killed they still must (each shard has another
//! owner); with both owners of a shard killed, a query that needs the shard fails naming it
//! and its owners, and one that does not still answers.

use std::time::Duration;

use fletch_tests::cluster::{Node, error_of, three_data_nodes_and_a_querier};
use fletch_tests::http::{post, query, send};
use fletch_tests::{Fletchd, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

/// 2020-09-13T12:00:00Z, in seconds (on the hour): the first point.
const T0: u64 = 1_599_998_400;
/// Six hours of points, a minute apart: six shard groups of one hour.
const MINUTES: u64 = 360;

const CREATE: &str = "CREATE DATABASE dc WITH REPLICATION 2 SHARD DURATION 1h";

/// Points of ten hosts in two regions, in batches of an hour.
fn batches() -> Vec<String> {
    (0..MINUTES / 60)
        .map(|hour| {
            let mut out = String::new();
            for m in hour * 60..(hour + 1) * 60 {
                for h in 0..10u64 {
                    let region = if h % 2 == 0 { "east" } else { "west" };
                    let usage = ((h * 37 + m * 11) % 1000) as f64 / 10.0;
                    out += &format!(
                        "cpu,host=h{h},region={region} usage={usage},n={}i {}\n",
                        (h + m) % 17,
                        T0 + m * 60
                    );
                }
                if m % 5 == 0 {
                    out += &format!(
                        "mem,host=h{},rack=r{} free={}i {}\n",
                        m % 3,
                        m % 2,
                        1000 - m,
                        T0 + m * 60
                    );
                }
            }
            out
        })
        .collect()
}

fn range(from_min: u64, to_min: u64) -> String {
    format!(
        "time >= {}s AND time < {}s",
        T0 + from_min * 60,
        T0 + to_min * 60
    )
}

fn queries() -> Vec<String> {
    let all = range(0, MINUTES);
    let mut q: Vec<String> = [
        "SELECT count(usage), sum(n), mean(usage) FROM dc..cpu",
        "SELECT max(usage), min(n), spread(usage) FROM dc..cpu GROUP BY host",
        "SELECT percentile(usage, 95), median(n), mode(n), stddev(usage) FROM dc..cpu GROUP BY region",
        "SELECT last(usage), first(n) FROM dc..cpu GROUP BY host",
        "SELECT top(usage, 3), host FROM dc..cpu",
        "SELECT bottom(usage, host, 2) FROM dc..cpu",
        "SELECT count(*) FROM dc..mem GROUP BY *",
        "SELECT integral(usage, 1h) FROM dc..cpu WHERE host = 'h1'",
        "SHOW MEASUREMENTS ON dc",
        "SHOW TAG KEYS ON dc",
        "SHOW FIELD KEYS ON dc",
        "SHOW TAG VALUES ON dc WITH KEY = host",
        "SHOW SERIES ON dc FROM mem",
        "SELECT * FROM dc..mem",
        "SELECT usage FROM dc..cpu WHERE host = 'h1'",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    q.extend([
        format!("SELECT mean(usage), max(n) FROM dc..cpu WHERE {all} GROUP BY time(30m), region fill(none)"),
        format!("SELECT count(usage) FROM dc..cpu WHERE {all} GROUP BY time(1h) fill(0)"),
        format!("SELECT derivative(mean(usage), 1m) FROM dc..cpu WHERE {all} GROUP BY time(1h) fill(none)"),
        format!("SELECT usage, n FROM dc..cpu WHERE host = 'h3' AND {}", range(100, 130)),
        format!("SELECT * FROM dc..cpu WHERE usage > 90 AND {} ORDER BY time DESC LIMIT 5", range(0, 200)),
        format!("SELECT max(m) FROM (SELECT mean(usage) AS m FROM dc..cpu WHERE {all} GROUP BY time(1h), host)"),
    ]);
    q
}

/// Numbers equal within a relative 1e-9 (partial aggregates add in another order).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn ask(url: &str, q: &str) -> Value {
    let r = query(url, q, "");
    assert_eq!(r.status, 200, "{q}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{q}: {e}: {}", r.body))
}

/// The data node ids owning each shard group's shard of `dc`, in time order.
fn owners(node: &Node) -> Vec<Vec<u64>> {
    let v = node.q("SHOW SHARDS");
    let series = v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(dc) = series.iter().find(|s| s["name"] == "dc") else {
        return vec![];
    };
    let columns: Vec<&str> = dc["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let at = columns.iter().position(|c| *c == "owners").unwrap();
    let start = columns.iter().position(|c| *c == "start_time").unwrap();
    let mut rows: Vec<(String, Vec<u64>)> = dc["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let ids = r[at]
                .as_str()
                .unwrap()
                .split(',')
                .map(|s| s.trim().parse().unwrap())
                .collect();
            (r[start].as_str().unwrap_or_default().to_string(), ids)
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, o)| o).collect()
}

#[test]
fn a_node_without_data_answers_for_the_whole_cluster_and_through_failures() {
    let dir = tempfile::tempdir().unwrap();
    // One node holding every point: the answers to match.
    let single = Fletchd::start(&dir.path().join("single"), &[]);
    let r = post(&format!("{}/query", single.url("")), &format!("q={CREATE}"));
    assert_eq!(r.status, 200, "{}", r.body);

    // The tightest bound on reads set up at once on one data node: answers stay complete.
    let (mut nodes, q) = three_data_nodes_and_a_querier(
        dir.path(),
        vec![
            ("FLETCH_COORDINATOR_MAX_REMOTE_READS_PER_NODE", "1"),
            // A read of an owner that does not start answering within it goes to the next.
            ("FLETCH_COORDINATOR_WRITE_TIMEOUT", "2s"),
        ],
    );
    let r = post(&format!("{}/query", q.url()), &format!("q={CREATE}"));
    assert_eq!(r.status, 200, "{}", r.body);
    for n in &nodes {
        wait_for("dc on every data node", DEADLINE, || {
            n.q("SHOW DATABASES")
                .to_string()
                .contains("\"dc\"")
                .then_some(())
        });
    }

    // Each batch through another node; `all` so that both owners hold it when it is answered.
    for (i, body) in batches().iter().enumerate() {
        let node = &nodes[i % 3];
        let url = format!("{}/write?db=dc&precision=s&consistency=all", node.url());
        let r = send("POST", &url, &[], body.as_bytes().to_vec()).expect("write");
        assert_eq!(r.status, 204, "{}", r.body);
        let r = send(
            "POST",
            &format!("{}/write?db=dc&precision=s", single.url("")),
            &[],
            body.as_bytes().to_vec(),
        )
        .expect("write");
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let groups = owners(&q);
    assert_eq!(groups.len(), 6, "six shard groups: {groups:?}");
    assert!(
        groups.iter().all(|o| o.len() == 2),
        "two owners each: {groups:?}"
    );

    let queries = queries();
    let want: Vec<Value> = queries.iter().map(|s| ask(&single.url(""), s)).collect();
    for (s, w) in queries.iter().zip(&want) {
        assert!(error_of(w).is_none(), "{s}: the single node failed: {w}");
    }
    let compare = |what: &str| {
        for (s, w) in queries.iter().zip(&want) {
            let got = ask(&q.url(), s);
            assert!(
                same(&got, w),
                "{what}: {s}\n  cluster: {got}\n  single:  {w}"
            );
        }
    };
    compare("all nodes up");
    // Run twice: each statement asks another owner first.
    compare("all nodes up, other owners first");
    // The aggregates ran on the owners: EXPLAIN shows the fragments.
    let explained = ask(
        &q.url(),
        "EXPLAIN SELECT count(usage) FROM dc..cpu GROUP BY host",
    )
    .to_string();
    assert!(
        explained.contains("FragmentExec") && explained.contains("mode=Partial"),
        "{explained}"
    );
    // SQL over Flight on the node without data: the same numbers (pyarrow.flight, when there).
    if std::env::var("FLETCH_SKIP_PY_CLIENTS").is_err() {
        let sql =
            "SELECT host, count(usage) AS c, sum(n) AS s FROM cpu GROUP BY host ORDER BY host";
        let script = format!(
            "import json, pyarrow.flight as fl\n\
             t = {{'database': 'dc', 'sql_query': {sql:?}, 'query_type': 'sql'}}\n\
             r = fl.FlightClient('grpc://{}').do_get(fl.Ticket(json.dumps(t).encode())).read_all()\n\
             print(json.dumps([[str(h), int(c), int(s)] for h, c, s in zip(*[r.column(i).to_pylist() for i in range(3)])]))",
            q.http
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = ask(
            &single.url(""),
            "SELECT count(usage), sum(n) FROM dc..cpu GROUP BY host",
        );
        let want: Vec<Value> = want["results"][0]["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| serde_json::json!([s["tags"]["host"], s["values"][0][1], s["values"][0][2]]))
            .collect();
        assert_eq!(got, Value::Array(want));
    }
    // EXPLAIN ANALYZE: which owner ran each fragment, and the fragment with its metrics there.
    let analyzed = ask(
        &q.url(),
        "EXPLAIN ANALYZE SELECT count(usage) FROM dc..cpu GROUP BY host",
    )
    .to_string();
    // The rows are still buffered on their owners: each fragment read them through its
    // buffered-rows scan, whose metrics come back with it.
    assert!(
        analyzed.contains("node=")
            && analyzed.contains("ran=[AggregateExec: mode=Partial")
            && analyzed.contains("BufferScanExec: columns=[host, usage], metrics=[output_rows="),
        "{analyzed}"
    );

    let index = |id: u64| (id / 2 - 1) as usize;
    let pair = groups[0].clone();

    // A frozen owner: reads of it get no answer within the timeout and go to the other owner
    // (each statement asks another owner first: both orders, twice).
    nodes[index(pair[0])].proc.as_ref().unwrap().pause();
    let s = "SELECT count(usage), max(n), mean(usage) FROM dc..cpu GROUP BY host";
    let w = ask(&single.url(""), s);
    for _ in 0..2 {
        let got = ask(&q.url(), s);
        assert!(
            same(&got, &w),
            "owner frozen: {s}\n  cluster: {got}\n  single:  {w}"
        );
    }
    nodes[index(pair[0])].proc.as_ref().unwrap().resume();

    // Any one data node down: every shard still has an owner that answers. The first group's
    // owners go down one after the other.
    nodes[index(pair[0])].kill();
    compare("one owner of the first shard killed");
    compare("one owner of the first shard killed, other owners first");

    // Both owners of a shard down: a query over it fails, naming it and its owners; a query
    // over shards the live node owns still answers.
    nodes[index(pair[1])].kill();
    let v = ask(&q.url(), "SELECT count(usage) FROM dc..cpu");
    let e = error_of(&v).unwrap_or_default();
    let mut sorted = pair.clone();
    sorted.sort();
    assert!(
        e.contains("could not be read")
            && e.contains(&format!("none of their owners (data node(s) {sorted:?})")),
        "{v}"
    );
    let live = (0..3u64)
        .map(|i| 2 * (i + 1))
        .find(|id| !pair.contains(id))
        .unwrap();
    let kept = groups.iter().position(|o| o.contains(&live));
    if let Some(g) = kept {
        let s = format!(
            "SELECT count(usage), max(n) FROM dc..cpu WHERE {} GROUP BY host",
            range(g as u64 * 60, g as u64 * 60 + 60)
        );
        let got = ask(&q.url(), &s);
        let w = ask(&single.url(""), &s);
        assert!(
            error_of(&got).is_none() && same(&got, &w),
            "{s}\n  cluster: {got}\n  single:  {w}"
        );
    }
}

/// `SHOW QUERIES` on any node lists the cluster's running queries with Enterprise's `node_id`
/// and `tcp_host`, and `KILL QUERY <qid> ON "<tcp_host>"` stops one on another node.
#[test]
fn show_and_kill_queries_across_the_cluster() {
    let root = tempfile::tempdir().unwrap();
    let mut a = Node::new(root.path(), "a", true);
    let mut b = Node::new(root.path(), "b", true);
    a.start(&[]);
    b.start(&[&a.meta_http]);
    fletch_tests::wait_for("two data nodes", Duration::from_secs(30), || {
        let v = a.q("SHOW SERVERS");
        (v["results"][0]["series"][0]["values"].as_array()?.len() == 2).then_some(())
    });
    a.q("CREATE DATABASE db");
    // An answer of a few tens of MB, so that a client that does not read holds its query.
    for part in 0..4 {
        let mut lines = String::new();
        for i in 0..75_000u64 {
            let t = part * 75_000 + i;
            lines.push_str(&format!("m,h=h{} v={t} {t}\n", t % 7));
        }
        let w = fletch_tests::http::post(&format!("{}/write?db=db&precision=s", a.url()), &lines);
        assert_eq!(w.status, 204, "{}", w.body);
    }
    // A client of b that asks for everything, chunked, and reads nothing.
    let mut stalled = std::net::TcpStream::connect(&b.http).unwrap();
    let request = format!(
        "GET /query?db=db&chunked=true&q=SELECT%20*%20FROM%20m HTTP/1.1\r\nHost: {}\r\n\r\n",
        b.http
    );
    std::io::Write::write_all(&mut stalled, request.as_bytes()).unwrap();

    let running = |on: &Node| -> Vec<serde_json::Value> {
        let v = on.q("SHOW QUERIES");
        let s = &v["results"][0]["series"][0];
        assert_eq!(
            s["columns"],
            serde_json::json!([
                "qid", "node_id", "tcp_host", "query", "database", "duration", "status"
            ]),
            "{v}"
        );
        s["values"].as_array().cloned().unwrap_or_default()
    };
    let held = fletch_tests::wait_for("b's query listed on a", Duration::from_secs(30), || {
        running(&a).into_iter().find(|r| r[3] == "SELECT * FROM m")
    });
    assert_eq!(held[2], b.tcp.as_str(), "{held:?}");
    assert_eq!(held[4], "db");
    assert_eq!(held[6], "running");
    // a's own SHOW QUERIES is listed under a's address.
    assert!(
        running(&a)
            .iter()
            .any(|r| r[3] == "SHOW QUERIES" && r[2] == a.tcp.as_str()),
    );
    let qid = held[0].as_u64().unwrap();
    let kill = |q: &str| a.q(q)["results"][0].clone();
    assert_eq!(
        kill(&format!("KILL QUERY {qid} ON \"{}\"", b.tcp)),
        serde_json::json!({"statement_id": 0})
    );
    fletch_tests::wait_for("the query gone", Duration::from_secs(30), || {
        (!running(&b).iter().any(|r| r[3] == "SELECT * FROM m")).then_some(())
    });
    assert_eq!(
        kill(&format!("KILL QUERY {qid} ON \"{}\"", b.tcp))["error"],
        format!("no such query id: {qid}")
    );
    let unknown = kill("KILL QUERY 1 ON \"nowhere:8088\"");
    assert!(
        unknown["error"]
            .as_str()
            .is_some_and(|e| e.contains("no node of the cluster has that address")),
        "{unknown}"
    );
    drop(stalled);
    // A node that does not answer is left out; the others are still listed.
    b.kill();
    let left = running(&a);
    assert!(left.iter().all(|r| r[2] == a.tcp.as_str()), "{left:?}");
}
