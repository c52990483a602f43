//! The meta-node cluster, as processes on loopback: nodes join with `-join`, list each other in
//! `SHOW SERVERS`, survive the loss of the leader, refuse catalog changes without a quorum
//! while writes to existing shards go on, grow by a standby, and shrink with `DROP ... SERVER`.
//!
//! Every wait is a condition polled against a deadline. Raft runs with short timeouts here
//! (heartbeat 100ms, election 500ms, commit 2s, standby promotion after 2s) so that deadlines of
//! a few election timeouts stay short.

use std::time::Duration;

use fletch_tests::cluster::{Node, error_of};
use fletch_tests::http::{post, query};
use fletch_tests::{fixed_port, wait_for};
use serde_json::{Value, json};

/// How long anything that needs an election and a commit may take here.
const DEADLINE: Duration = Duration::from_secs(30);

/// `SHOW SERVERS` as (data nodes, meta nodes) rows.
fn servers(node: &Node) -> (Value, Value) {
    let v = node.q("SHOW SERVERS");
    let series = &v["results"][0]["series"];
    assert_eq!(series[0]["name"], "data_nodes", "{v}");
    assert_eq!(series[1]["name"], "meta_nodes", "{v}");
    assert_eq!(series[0]["columns"], json!(["id", "http_addr", "tcp_addr"]));
    let rows = |s: &Value| s.get("values").cloned().unwrap_or(json!([]));
    (rows(&series[0]), rows(&series[1]))
}

/// `SHOW META STATUS` as `id -> role`.
fn roles(node: &Node) -> Vec<(u64, String)> {
    let v = node.q("SHOW META STATUS");
    assert_eq!(v["results"][0]["series"][0]["name"], "meta_status", "{v}");
    v["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[2].as_str().unwrap().to_string()))
        .collect()
}

fn leader_of(node: &Node) -> Option<u64> {
    node.status()["leader"].as_u64()
}

#[test]
fn three_nodes_join_list_each_other_and_survive_the_leader() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node::new(root.path(), &format!("n{i}"), true))
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    nodes[1].start(&[&first]);
    // A member that is down is skipped: the next listed one answers.
    let dead = format!("127.0.0.1:{}", fixed_port());
    nodes[2].start(&[&dead, &first]);

    // Ids as the 0.10 guide gives them: each node a meta id, then a data id.
    let want_data = json!([
        [2, nodes[0].http, nodes[0].tcp],
        [4, nodes[1].http, nodes[1].tcp],
        [6, nodes[2].http, nodes[2].tcp],
    ]);
    let want_meta = json!([
        [1, nodes[0].meta_http, nodes[0].tcp],
        [3, nodes[1].meta_http, nodes[1].tcp],
        [5, nodes[2].meta_http, nodes[2].tcp],
    ]);
    for n in &nodes {
        let got = wait_for("every node lists all three", DEADLINE, || {
            let s = servers(n);
            (s.0 == want_data && s.1 == want_meta).then_some(s)
        });
        assert_eq!(got, (want_data.clone(), want_meta.clone()));
        let st = n.status();
        assert_eq!(st["voters"], json!([1, 3, 5]), "{st}");
        assert_eq!(st["leader"], 1, "{st}");
    }
    assert_eq!(
        roles(&nodes[2]),
        vec![
            (1, "leader".to_string()),
            (3, "voter".to_string()),
            (5, "voter".to_string())
        ]
    );

    // A catalog change sent to a follower is forwarded to the leader, and the follower reads
    // its own write at once.
    assert_eq!(error_of(&nodes[2].q("CREATE DATABASE one")), None);
    let dbs = nodes[2].q("SHOW DATABASES");
    assert_eq!(dbs["results"][0]["series"][0]["values"], json!([["one"]]));

    // Kill the leader: a catalog change goes through the survivors after an election.
    nodes[0].kill();
    wait_for("a catalog change through the survivors", DEADLINE, || {
        let v = nodes[1].q("CREATE DATABASE two");
        error_of(&v).is_none().then_some(())
    });
    let new_leader = leader_of(&nodes[2]).expect("a new leader");
    assert!([3, 5].contains(&new_leader), "leader {new_leader}");

    // The old leader restarts without -join and comes back as itself, with the change.
    nodes[0].start(&[]);
    wait_for("the restarted node catches up", DEADLINE, || {
        let v = nodes[0].q("SHOW DATABASES");
        (v["results"][0]["series"][0]["values"] == json!([["one"], ["two"]])).then_some(())
    });
    assert_eq!(servers(&nodes[0]), (want_data.clone(), want_meta.clone()));
    assert_eq!(nodes[0].status()["node_id"], 1);
    assert_eq!(nodes[0].status()["voters"], json!([1, 3, 5]));

    // A follower restarted with -join again is still itself (joining is idempotent).
    let follower = if new_leader == 3 { 2 } else { 1 };
    nodes[follower].kill();
    nodes[follower].start(&[&first]);
    for n in &nodes {
        assert_eq!(servers(n), (want_data.clone(), want_meta.clone()));
    }
    assert!(
        nodes[follower]
            .log()
            .contains("already a member of the cluster"),
        "{}",
        nodes[follower].log()
    );
}

/// The recommended layout until data is forwarded between data nodes: one node with both
/// roles (meta 1, data 2) and two meta-only nodes (meta 3 and 4), joined through the first.
fn one_data_two_meta(root: &std::path::Path) -> (Node, Node, Node) {
    let mut data = Node::new(root, "n1", true);
    let mut m2 = Node::new(root, "n2", false);
    let mut m3 = Node::new(root, "n3", false);
    data.start(&[]);
    m2.start(&[&data.meta_http]);
    m3.start(&[&data.meta_http]);
    (data, m2, m3)
}

#[test]
fn without_a_quorum_catalog_changes_fail_but_writes_go_on() {
    let root = tempfile::tempdir().unwrap();
    let (data, mut m2, mut m3) = one_data_two_meta(root.path());
    wait_for("three voters", DEADLINE, || {
        (data.status()["voters"].as_array().map(Vec::len) == Some(3)).then_some(())
    });

    assert_eq!(error_of(&data.q("CREATE DATABASE db")), None);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = post(
        &format!("{}/write?db=db&precision=s", data.url()),
        &format!("cpu v=1 {now}"),
    );
    assert_eq!(r.status, 204, "{}", r.body);

    m2.kill();
    m3.kill();

    // A catalog change cannot commit: a clear error, within the commit timeout.
    let v = data.q("CREATE DATABASE other");
    let err = error_of(&v).unwrap_or_default();
    assert!(
        err.starts_with("meta service unavailable: no quorum"),
        "{v}"
    );
    // A write that needs a new shard group needs the catalog too: 503, nothing written.
    let r = post(
        &format!("{}/write?db=db&precision=s", data.url()),
        "cpu v=9 86400",
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("no quorum"), "{}", r.body);
    // Writes and reads on the existing shard go on from the local copy of the catalog.
    let r = post(
        &format!("{}/write?db=db&precision=s", data.url()),
        &format!("cpu v=2 {}", now + 1),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let v = data.q("SELECT count(v) FROM db..cpu WHERE time > now() - 1h");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 2, "{v}");
    let v = data.q("SHOW DATABASES");
    assert_eq!(v["results"][0]["series"][0]["values"], json!([["db"]]));

    // One meta node back: a quorum again, and changes succeed.
    m2.start(&[]);
    wait_for("catalog changes after the quorum returns", DEADLINE, || {
        error_of(&data.q("CREATE DATABASE other"))
            .is_none()
            .then_some(())
    });
}

#[test]
fn a_fourth_node_stands_by_and_servers_can_be_dropped() {
    let root = tempfile::tempdir().unwrap();
    let (n1, n2, mut n3) = one_data_two_meta(root.path());
    assert_eq!(error_of(&n1.q("CREATE DATABASE db")), None);
    let r = post(&format!("{}/write?db=db", n1.url()), "cpu v=1 1000000000");
    assert_eq!(r.status, 204, "{}", r.body);

    // A fourth node (meta and data) joins through a follower: listed everywhere, a standby.
    let mut n4 = Node::new(root.path(), "n4", true);
    n4.start(&[&n3.meta_http]);
    for n in [&n1, &n2, &n3, &n4] {
        let (data, meta) = wait_for("all list the fourth node", DEADLINE, || {
            let s = servers(n);
            (s.1.as_array().map(Vec::len) == Some(4)).then_some(s)
        });
        assert_eq!(
            data,
            json!([[2, n1.http, n1.tcp], [6, n4.http, n4.tcp]]),
            "data nodes"
        );
        assert_eq!(
            meta,
            json!([
                [1, n1.meta_http, n1.tcp],
                [3, n2.meta_http, n2.tcp],
                [4, n3.meta_http, n3.tcp],
                [5, n4.meta_http, n4.tcp],
            ])
        );
    }
    let r = roles(&n2);
    assert!(r.contains(&(5, "standby".to_string())), "{r:?}");
    assert_eq!(
        r.iter().filter(|(_, role)| role == "voter").count(),
        2,
        "{r:?}"
    );

    // The only copy of a shard is on data node 2: refused, unless forced.
    let err = error_of(&n2.q("DROP DATA SERVER 2")).unwrap_or_default();
    assert!(err.contains("holds the only copy of shard(s) [1]"), "{err}");
    assert!(err.contains("DROP DATA SERVER 2 FORCE"), "{err}");
    // Node 6 owns nothing: dropped.
    assert_eq!(error_of(&n2.q("DROP DATA SERVER 6")), None);
    assert_eq!(servers(&n1).0, json!([[2, n1.http, n1.tcp]]));
    let err = error_of(&n2.q("DROP DATA SERVER 42")).unwrap_or_default();
    assert_eq!(err, "data node not found: 42");

    // Dropping a voter: the standby takes its place, so three still vote.
    assert_eq!(error_of(&n1.q("DROP META SERVER 4")), None);
    n3.kill();
    let r = wait_for("the standby votes", DEADLINE, || {
        let r = roles(&n1);
        (r.iter().filter(|(_, role)| role != "standby").count() == 3).then_some(r)
    });
    assert!(!r.iter().any(|(id, _)| *id == 4), "{r:?}");
    assert!(
        r.contains(&(5, "voter".to_string())) || r.contains(&(5, "leader".to_string())),
        "{r:?}"
    );
    assert_eq!(
        servers(&n2)
            .1
            .as_array()
            .map(|m| m.iter().map(|r| r[0].clone()).collect::<Vec<_>>()),
        Some(vec![json!(1), json!(3), json!(5)])
    );

    // With node 5 down, dropping node 3 would leave {1, 5} with one voter answering: refused.
    n4.kill();
    let err = error_of(&n1.q("DROP META SERVER 3")).unwrap_or_default();
    assert!(
        err.starts_with("dropping meta node 3 would lose the quorum"),
        "{err}"
    );
    let err = error_of(&n1.q("DROP META SERVER 9")).unwrap_or_default();
    assert_eq!(err, "meta node not found: 9");

    // FORCE drops the last copy's owner, with a warning in the answer.
    let v = n1.q("DROP DATA SERVER 2 FORCE");
    assert_eq!(error_of(&v), None, "{v}");
    let warning = v["results"][0]["messages"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(warning.contains("only copy of shard(s) [1]"), "{v}");
}

#[test]
fn a_standby_replaces_a_voter_that_stops_answering() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..=4)
        .map(|i| Node::new(root.path(), &format!("n{i}"), i == 1))
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    for n in nodes.iter_mut().skip(1) {
        n.start(&[&first]);
    }
    // Ids: 1 (and data 2), 3, 4, 5; the fourth meta node is a standby.
    wait_for("a standby", DEADLINE, || {
        roles(&nodes[0])
            .contains(&(5, "standby".to_string()))
            .then_some(())
    });
    nodes[2].kill(); // meta node 4, a voter
    // (While the change is in its joint phase both old and new voters vote.)
    let r = wait_for("the standby is promoted", DEADLINE, || {
        let r = roles(&nodes[0]);
        (r.contains(&(5, "voter".to_string())) && r.contains(&(4, "standby".to_string())))
            .then_some(r)
    });
    assert_eq!(
        r.iter().filter(|(_, role)| role == "voter").count(),
        2,
        "{r:?}"
    );
    // The cluster keeps a quorum of live voters: a change commits with another voter down.
    nodes[1].kill(); // meta node 3
    let v = nodes[0].q("CREATE DATABASE still");
    assert_eq!(error_of(&v), None, "{v}");
}

#[test]
fn a_member_that_missed_compacted_log_catches_up_from_a_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            let mut n = Node::new(root.path(), &format!("n{i}"), i == 1);
            n.env.push(("FLETCH_META_SNAPSHOT_AFTER_ENTRIES", "5"));
            n
        })
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    nodes[1].start(&[&first]);
    nodes[2].start(&[&first]);
    nodes[2].kill();
    // Far more entries than the log keeps after a snapshot.
    for i in 0..20 {
        assert_eq!(
            error_of(&nodes[0].q(&format!("CREATE DATABASE d{i:02}"))),
            None
        );
    }
    nodes[2].start(&[]);
    wait_for("the snapshot arrives", DEADLINE, || {
        let v = nodes[2].q("SHOW DATABASES");
        (v["results"][0]["series"][0]["values"]
            .as_array()
            .map(Vec::len)
            == Some(20))
        .then_some(())
    });
    assert!(
        nodes[2]
            .log()
            .contains("installed a catalog snapshot from the leader"),
        "{}",
        nodes[2].log()
    );
    // And it keeps following the log after it.
    assert_eq!(error_of(&nodes[1].q("CREATE DATABASE after")), None);
    wait_for("the entry after the snapshot", DEADLINE, || {
        let v = nodes[2].q("SHOW DATABASES");
        (v["results"][0]["series"][0]["values"]
            .as_array()
            .map(Vec::len)
            == Some(21))
        .then_some(())
    });
}

#[test]
fn a_data_only_node_follows_the_catalog_without_voting() {
    let root = tempfile::tempdir().unwrap();
    let mut m1 = Node::new(root.path(), "m1", false);
    m1.start(&[]);
    assert_eq!(error_of(&m1.q("CREATE DATABASE db")), None);

    // Without the meta role and without -join, a new node has no cluster to belong to.
    let lone = root.path().join("lone");
    let out = std::process::Command::new(fletch_tests::bin("fletchd"))
        .arg("--dir")
        .arg(&lone)
        .args([
            "--http-bind-address",
            "127.0.0.1:0",
            "--meta-bind-address",
            "127.0.0.1:0",
        ])
        .env("FLETCH_META_ENABLED", "false")
        .output()
        .expect("run fletchd");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "a node without the meta role must join a cluster: start it with -join host:8091"
        ),
        "{stderr}"
    );

    let mut d = Node::new(root.path(), "d", true);
    d.meta = false;
    d.start(&[&m1.meta_http]);
    // Ids: meta node 1, data node 2 (its Raft id too).
    let want_data = json!([[2, d.http, d.tcp]]);
    let want_meta = json!([[1, m1.meta_http, m1.tcp]]);
    for n in [&m1, &d] {
        let s = wait_for("both list the data node", DEADLINE, || {
            let s = servers(n);
            (s.0 == want_data).then_some(s)
        });
        assert_eq!(s, (want_data.clone(), want_meta.clone()));
    }
    assert_eq!(
        roles(&d),
        vec![(1, "leader".to_string()), (2, "follower".to_string())]
    );
    // It has its own copy of the catalog, and serves writes to the shards it owns.
    let v = d.q("SHOW DATABASES");
    assert_eq!(v["results"][0]["series"][0]["values"], json!([["db"]]));
    let r = post(&format!("{}/write?db=db", d.url()), "cpu v=1 1000000000");
    assert_eq!(r.status, 204, "{}", r.body);
    let v = d.q("SELECT v FROM db..cpu");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 1, "{v}");
    // The meta-only node holds no shard: it reads the data node's over Flight, and answers
    // as the data node does.
    for q in [
        "SELECT v FROM db..cpu",
        "SHOW MEASUREMENTS ON db",
        "SHOW TAG KEYS ON db",
        "SHOW FIELD KEYS ON db",
        "SHOW SERIES ON db",
    ] {
        assert_eq!(m1.q(q), d.q(q), "{q}");
    }
    // A delete sent to the node without data reaches the data node's shards: recorded in the
    // catalog, applied by every owner. A read through the node that sent it sees it at once
    // (the owner applies the deletes of the reader's catalog before it answers).
    let r = post(
        &format!("{}/write?db=db", d.url()),
        "cpu,host=b v=2 2000000000",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = query(&m1.url(), "DELETE FROM cpu WHERE host = 'b'", "?db=db");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("error"), "{}", r.body);
    let v = m1.q("SELECT count(v) FROM db..cpu");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 1, "{v}");
    wait_for("the data node applies the delete", DEADLINE, || {
        let v = d.q("SELECT count(v) FROM db..cpu");
        (v["results"][0]["series"][0]["values"][0][1] == 1).then_some(())
    });
    let r = query(&m1.url(), "DROP SERIES FROM cpu WHERE host = 'b'", "?db=db");
    assert!(!r.body.contains("error"), "{}", r.body);

    // A restart brings it back as itself, without -join.
    d.kill();
    d.start(&[]);
    assert_eq!(servers(&m1), (want_data, want_meta));
    let v = d.q("SELECT v FROM db..cpu");
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 1, "{v}");
}

#[test]
fn advertised_addresses_are_what_peers_and_show_servers_use() {
    let root = tempfile::tempdir().unwrap();
    let mut n1 = Node::new(root.path(), "n1", true);
    let mut n2 = Node::new(root.path(), "n2", false);
    for n in [&mut n1, &mut n2] {
        n.env.push(("FLETCH_META_ADVERTISE_ADDRESS", "localhost"));
    }
    let port = |a: &str| a.rsplit(':').next().unwrap().to_string();
    let adv = |a: &str| format!("localhost:{}", port(a));
    n1.start(&[]);
    n2.start(&[&adv(&n1.meta_http)]);
    let want_data = json!([[2, adv(&n1.http), adv(&n1.tcp)]]);
    let want_meta = json!([
        [1, adv(&n1.meta_http), adv(&n1.tcp)],
        [3, adv(&n2.meta_http), adv(&n2.tcp)],
    ]);
    for n in [&n1, &n2] {
        let s = wait_for("both list the advertised addresses", DEADLINE, || {
            let s = servers(n);
            (s.1 == want_meta).then_some(s)
        });
        assert_eq!(s, (want_data.clone(), want_meta.clone()));
    }
    // Raft runs over the advertised addresses: a change through the follower commits.
    assert_eq!(error_of(&n2.q("CREATE DATABASE adv")), None);
    assert_eq!(
        roles(&n2)
            .iter()
            .map(|(id, r)| (*id, r.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "leader"), (3, "voter")]
    );
}

#[test]
fn nodes_that_join_at_the_same_time_all_get_in() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..=5)
        .map(|i| Node::new(root.path(), &format!("n{i}"), false))
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    // Raft takes one membership change at a time; the leader queues the joins.
    std::thread::scope(|s| {
        for n in nodes.iter_mut().skip(1) {
            let first = first.clone();
            s.spawn(move || n.start(&[&first]));
        }
    });
    let r = wait_for("three voters and two standbys", DEADLINE, || {
        let r = roles(&nodes[0]);
        let voters = r.iter().filter(|(_, role)| role != "standby").count();
        (r.len() == 5 && voters == 3).then_some(r)
    });
    let mut ids: Vec<u64> = r.iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4, 5], "{r:?}");
    for n in &nodes {
        let (_, meta) = wait_for("every node lists five meta nodes", DEADLINE, || {
            let s = servers(n);
            (s.1.as_array().map(Vec::len) == Some(5)).then_some(s)
        });
        let listed: Vec<u64> = meta
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m[0].as_u64().unwrap())
            .collect();
        assert_eq!(listed, vec![1, 2, 3, 4, 5]);
    }
}

#[test]
fn the_whole_cluster_restarts_one_node_at_a_time() {
    let root = tempfile::tempdir().unwrap();
    let (mut n1, mut n2, mut n3) = one_data_two_meta(root.path());
    assert_eq!(error_of(&n1.q("CREATE DATABASE before")), None);
    for n in [&mut n1, &mut n2, &mut n3] {
        n.stop();
    }
    // The first node back has no quorum: it serves its copy of the catalog and refuses changes.
    n2.start(&[]);
    let v = n2.q("SHOW DATABASES");
    assert_eq!(v["results"][0]["series"][0]["values"], json!([["before"]]));
    let err = error_of(&n2.q("CREATE DATABASE alone")).unwrap_or_default();
    assert!(
        err.starts_with("meta service unavailable: no quorum"),
        "{err}"
    );
    // With a second member the group elects a leader and takes changes again.
    n3.start(&[]);
    wait_for("a change with two of three back", DEADLINE, || {
        error_of(&n3.q("CREATE DATABASE after"))
            .is_none()
            .then_some(())
    });
    // The last one catches up, and the data node still has its data node id.
    n1.start(&[]);
    wait_for("the last node to catch up", DEADLINE, || {
        let v = n1.q("SHOW DATABASES");
        let names = v["results"][0]["series"][0]["values"].to_string();
        names.contains("after").then_some(())
    });
    assert_eq!(servers(&n1).0, json!([[2, n1.http, n1.tcp]]));
}
