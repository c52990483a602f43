//! `[meta] internal-shared-secret`: the internal port (Raft, shard writes, remote reads) and the
//! meta HTTP API answer the cluster's nodes only. A cluster whose nodes share the secret works
//! as before; a Flight client without it, a node with another secret, and an operator without
//! it are refused; a node listening beyond loopback refuses to start without one.

use std::process::Command;

use fletch_tests::cluster::Node;
use fletch_tests::http::{query, send};
use fletch_tests::{bin, wait_for};

const SECRET: &str = "the-cluster-secret";

fn node(root: &std::path::Path, name: &str, data: bool, secret: &'static str) -> Node {
    let mut n = Node::new(root, name, data);
    n.env = vec![("FLETCH_META_INTERNAL_SHARED_SECRET", secret)];
    n
}

/// What pyarrow's Flight client gets calling `action` on `addr`, with `header` (key, value)
/// if given: `ok` or the error's text.
fn flight_action(addr: &str, action: &str, header: Option<(&str, &str)>) -> String {
    let script = r#"
import sys, pyarrow.flight as fl
addr, action = sys.argv[1], sys.argv[2]
headers = [(sys.argv[3].encode(), sys.argv[4].encode())] if len(sys.argv) > 4 else []
client = fl.connect("grpc://" + addr)
try:
    list(client.do_action(fl.Action(action, b"{}"), fl.FlightCallOptions(headers=headers, timeout=10)))
    print("ok")
except Exception as e:
    print(type(e).__name__ + ": " + str(e).splitlines()[0])
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, addr, action]);
    if let Some((k, v)) = header {
        cmd.args([k, v]);
    }
    let out = cmd.output().expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn only_nodes_with_the_secret_get_in() {
    let root = tempfile::tempdir().unwrap();
    let mut a = node(root.path(), "a", true, SECRET);
    a.start(&[]);
    let mut b = node(root.path(), "b", true, SECRET);
    b.start(&[&a.meta_http.clone()]);
    // The cluster works: both data nodes listed, a write through one read through the other.
    wait_for("two data nodes", std::time::Duration::from_secs(30), || {
        let v = b.q("SHOW SERVERS");
        (v["results"][0]["series"][0]["values"].as_array()?.len() == 2).then_some(())
    });
    a.q("CREATE DATABASE db WITH REPLICATION 2");
    let w = send(
        "POST",
        &format!("{}/write?db=db&consistency=all", a.url()),
        &[],
        b"m,host=x v=1 1000000000\nm,host=y v=2 1000000000\n".to_vec(),
    )
    .unwrap();
    assert_eq!(w.status, 204, "{}", w.body);
    wait_for(
        "the points on node b",
        std::time::Duration::from_secs(10),
        || {
            let r = query(&b.url(), "SELECT count(v) FROM m", "?db=db");
            r.body
                .contains("[\"1970-01-01T00:00:00Z\",2]")
                .then_some(())
        },
    );

    // A Flight client without the secret is refused on the internal port, whatever it asks;
    // one with a wrong credential too.
    for action in ["raft.vote", "meta.execute", "data.write", "ctl.show"] {
        let answer = flight_action(&a.tcp, action, None);
        assert!(
            answer.contains("Unauthenticated") && answer.contains("internal-shared-secret"),
            "{action}: {answer}"
        );
    }
    let answer = flight_action(
        &a.tcp,
        "raft.vote",
        Some(("x-fletch-internal-auth", "guess")),
    );
    assert!(answer.contains("Unauthenticated"), "{answer}");

    // The meta HTTP API: /ping open, /status and /join closed.
    let meta = |path: &str, method: &str| {
        send(
            method,
            &format!("http://{}{path}", a.meta_http),
            &[],
            b"{}".to_vec(),
        )
        .unwrap()
    };
    assert_eq!(meta("/ping", "GET").status, 204);
    let s = meta("/status", "GET");
    assert_eq!(s.status, 401, "{}", s.body);
    assert!(s.body.contains("internal-shared-secret"), "{}", s.body);
    assert_eq!(meta("/join", "POST").status, 401);

    // An operator's `fletchd ctl` needs it too.
    let ctl = |secret: Option<&str>| {
        let mut cmd = Command::new(bin("fletchd"));
        cmd.args(["ctl", "--bind", &a.tcp, "show"])
            .env_remove("FLETCH_META_INTERNAL_SHARED_SECRET");
        if let Some(s) = secret {
            cmd.env("FLETCH_META_INTERNAL_SHARED_SECRET", s);
        }
        let out = cmd.output().expect("fletchd ctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = ctl(None);
    assert!(!ok && text.contains("internal-shared-secret"), "{text}");
    let (ok, text) = ctl(Some(SECRET));
    assert!(ok && text.contains("Data Nodes"), "{text}");

    // A node with another secret cannot join: it stops and says why.
    let stranger = Node::new(root.path(), "stranger", true);
    let out = Command::new(bin("fletchd"))
        .args([
            "--dir",
            &stranger.dir.display().to_string(),
            "--http-bind-address",
            &stranger.http,
            "--meta-http-bind-address",
            &stranger.meta_http,
            "--meta-bind-address",
            &stranger.tcp,
            "-join",
            &a.meta_http,
        ])
        .env("FLETCH_META_INTERNAL_SHARED_SECRET", "another-secret")
        .output()
        .expect("fletchd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot join the cluster") && err.contains("internal-shared-secret"),
        "{err}"
    );
    let v = a.q("SHOW SERVERS");
    assert_eq!(
        v["results"][0]["series"][0]["values"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "the stranger is not listed: {v}"
    );
}

#[test]
fn a_node_other_hosts_can_reach_needs_a_secret_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("fletchd"))
        .args(["--dir", &dir.path().display().to_string()])
        .args(["--http-bind-address", "127.0.0.1:0"])
        .args(["--meta-http-bind-address", "127.0.0.1:0"])
        .args(["--meta-bind-address", "0.0.0.0:0"])
        .output()
        .expect("fletchd");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[meta] internal-shared-secret: required when a listen address is not loopback ([meta] bind-address"),
        "{err}"
    );
    assert!(!dir.path().join("meta").exists(), "nothing was started");
}
