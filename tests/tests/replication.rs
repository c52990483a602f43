//! Replicated shards, as processes on loopback: three nodes with both roles and a database of
//! replication factor 2. Writes sent to any node, an owner of the shard or not, reach both
//! owners; with an owner down or frozen, each consistency level answers as 1.x clustering does
//! (`one` and `any` succeed, `quorum` and `all` answer `partial write` or `timeout`), the
//! points for the missing owner wait in the writing node's hinted handoff queue, and they reach
//! it once it is back, in order, after a restart of the queuing node too.
//!
//! Each replica is read directly: a query on an owner reads its own copy of the shard. The node
//! that owns nothing reads the shard from an owner over Arrow Flight, from the other one when
//! the first is down.

use std::time::Duration;

use fletch_tests::cluster::{Node, error_of};
use fletch_tests::http::{post, send};
use fletch_tests::wait_for;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

/// Short write timeout and hinted-handoff retries, so that the waits stay short.
const ENV: &[(&str, &str)] = &[
    ("FLETCH_COORDINATOR_WRITE_TIMEOUT", "2s"),
    ("FLETCH_HINTED_HANDOFF_RETRY_INTERVAL", "200ms"),
    ("FLETCH_HINTED_HANDOFF_RETRY_MAX_INTERVAL", "1s"),
];

fn three_nodes(root: &std::path::Path) -> Vec<Node> {
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            let mut n = Node::new(root, &format!("n{i}"), true);
            n.env = ENV.to_vec();
            n
        })
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    nodes[1].start(&[&first]);
    nodes[2].start(&[&first]);
    for n in &nodes {
        wait_for("three data nodes", DEADLINE, || {
            let v = n.q("SHOW SERVERS");
            (v["results"][0]["series"][0]["values"].as_array()?.len() == 3).then_some(())
        });
    }
    nodes
}

/// `CREATE DATABASE dc WITH REPLICATION 2` through `node`.
fn create_dc(node: &Node) {
    let r = post(
        &format!("{}/query", node.url()),
        "q=CREATE DATABASE dc WITH REPLICATION 2",
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// `POST /write` to `node` with `consistency`: status and body.
fn write(node: &Node, consistency: &str, body: &str) -> (u16, String) {
    let url = format!(
        "{}/write?db=dc&consistency={consistency}&precision=s",
        node.url()
    );
    let r = send("POST", &url, &[], body.as_bytes().to_vec()).expect("write");
    (r.status, r.body)
}

/// Lines `m,w=<tag> v=<i>` for `i` in `range`, one second apart from second 1000.
fn lines(tag: &str, range: std::ops::Range<u32>) -> String {
    range
        .map(|i| format!("m,w={tag} v={i} {}\n", 1000 + i))
        .collect()
}

/// The number of points of `m` a query on this node counts (on an owner: its own copy).
fn count_here(node: &Node) -> Option<u64> {
    let v = node.q("SELECT count(v) FROM dc..m");
    if let Some(e) = error_of(&v) {
        panic!("count on {}: {e}", node.http);
    }
    Some(
        v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0),
    )
}

/// `queueDepth` of this node's hinted handoff queue for data node `id` (`SHOW STATS`), 0 when
/// it has none.
fn hh_depth(node: &Node, id: &str) -> u64 {
    let v = node.q("SHOW STATS FOR 'hh_processor'");
    let Some(series) = v["results"][0]["series"].as_array() else {
        return 0;
    };
    let Some(s) = series.iter().find(|s| s["tags"]["node"] == id) else {
        return 0;
    };
    assert_eq!(s["name"], "hh_processor", "{v}");
    let at = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "queueDepth")
        .unwrap();
    s["values"][0][at].as_u64().unwrap()
}

/// The nodes (by index, from their data node ids 2, 4, 6) owning the (only) shard of `dc`,
/// and the one node that does not.
fn owners(nodes: &[Node]) -> (Vec<usize>, usize) {
    owners_via(&nodes[0])
}

/// [`owners`], as `node` sees them.
fn owners_via(node: &Node) -> (Vec<usize>, usize) {
    let v = node.q("SHOW SHARDS");
    let series = v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let dc = series
        .iter()
        .find(|s| s["name"] == "dc")
        .unwrap_or_else(|| panic!("no shard of dc: {v}"));
    let columns: Vec<&str> = dc["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let at = columns.iter().position(|c| *c == "owners").unwrap();
    let rows = dc["values"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one shard: {v}");
    let ids: Vec<u64> = rows[0][at]
        .as_str()
        .unwrap()
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    // Data node ids by join order: 2, 4, 6 (each node a meta id, then a data id).
    let owning: Vec<usize> = ids.iter().map(|id| (*id as usize / 2) - 1).collect();
    let other = (0..3).find(|i| !owning.contains(i)).unwrap_or(usize::MAX);
    (owning, other)
}

#[test]
fn writes_to_any_node_reach_both_owners_and_consistency_levels_hold() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(root.path());
    create_dc(&nodes[0]);

    // 100 points through each node; the first creates the shard group.
    for (i, n) in nodes.iter().enumerate() {
        let (status, body) = write(n, "one", &lines(&format!("n{i}"), 0..100));
        assert_eq!(status, 204, "write to node {i}: {body}");
    }
    let (owning, other) = owners(&nodes);
    assert_eq!(owning.len(), 2);
    // With `one`, the second owner may get its points a moment after the answer.
    for &o in &owning {
        wait_for("both owners hold every point", DEADLINE, || {
            (count_here(&nodes[o]) == Some(300)).then_some(())
        });
    }
    // The node without a copy reads an owner's, also for the `influx` shell (a chunked answer).
    assert_eq!(count_here(&nodes[other]), Some(300));
    if let Ok(out) = std::process::Command::new("influx")
        .args(["-host", "127.0.0.1", "-port"])
        .arg(nodes[other].http.rsplit(':').next().unwrap())
        .args(["-format", "csv", "-execute", "SELECT count(v) FROM dc..m"])
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(",300"),
            "influx shell through the non-owner: {text}"
        );
    }
    // A field type conflict sent through it keeps 1.x's 400, counted once for both owners.
    let (status, body) = write(&nodes[other], "all", "m,w=n0 v=\"text\" 1000\n");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("field type conflict") && body.contains("dropped=1"),
        "{body}"
    );
    let all = "SELECT * FROM dc..m WHERE w = 'n1' ORDER BY time DESC LIMIT 3";
    assert_eq!(nodes[other].q(all), nodes[owning[0]].q(all));

    // Every level, with both owners up, through the node that owns nothing.
    for (k, level) in ["any", "one", "quorum", "all"].iter().enumerate() {
        let (status, body) = write(&nodes[other], level, &lines(&format!("c{k}"), 0..10));
        assert_eq!(status, 204, "{level}: {body}");
    }
    for &o in &owning {
        wait_for("both owners hold the consistency writes", DEADLINE, || {
            (count_here(&nodes[o]) == Some(340)).then_some(())
        });
    }

    // One owner frozen: `one` succeeds, `all` times out after write-timeout.
    let (up, down) = (owning[0], owning[1]);
    nodes[down].proc.as_ref().unwrap().pause();
    let (status, body) = write(&nodes[other], "one", &lines("p1", 0..10));
    assert_eq!(status, 204, "one with an owner frozen: {body}");
    let (status, body) = write(&nodes[other], "all", &lines("p2", 0..10));
    assert_eq!((status, body.trim()), (500, r#"{"error":"timeout"}"#));
    nodes[down].proc.as_ref().unwrap().resume();

    // One owner killed: `one` and `any` succeed, `quorum` and `all` are partial writes, and
    // the missing owner's points wait in the writing node's queue.
    nodes[down].kill();
    let (status, body) = write(&nodes[other], "one", &lines("k1", 0..10));
    assert_eq!(status, 204, "one with an owner down: {body}");
    let (status, body) = write(&nodes[other], "any", &lines("k2", 0..10));
    assert_eq!(status, 204, "any with an owner down: {body}");
    for level in ["quorum", "all"] {
        let (status, body) = write(&nodes[other], level, &lines(level, 0..10));
        assert_eq!(
            (status, body.trim()),
            (500, r#"{"error":"partial write"}"#),
            "{level} with an owner down"
        );
    }
    // Through the surviving owner too: its own copy acknowledges, the other is queued.
    let (status, body) = write(&nodes[up], "one", &lines("k3", 0..10));
    assert_eq!(status, 204, "{body}");
    let (status, body) = write(&nodes[up], "all", &lines("k4", 0..10));
    assert_eq!((status, body.trim()), (500, r#"{"error":"partial write"}"#));
    // Every point written since the freeze is on the surviving owner: 340 + 8 x 10; the node
    // without a copy reads it from there, whichever owner it asks first.
    assert_eq!(count_here(&nodes[up]), Some(420));
    assert_eq!(count_here(&nodes[other]), Some(420));

    // What an operator sees of the queue for the owner that is down, on the node that holds it.
    let down_id = ((down + 1) * 2).to_string();
    let queued = hh_depth(&nodes[other], &down_id);
    assert!(queued > 0, "points wait for data node {down_id}");
    let status = nodes[other].status();
    let q = status["hinted_handoff"]
        .as_array()
        .and_then(|a| a.iter().find(|q| q["node"].to_string() == down_id).cloned())
        .unwrap_or_else(|| panic!("no queue for {down_id} in /status: {status}"));
    assert_eq!(q["frames"].as_u64(), Some(queued), "{q}");
    assert!(
        q["bytes"].as_u64() > Some(0) && q["last_error"].is_string(),
        "{q}"
    );

    // The writing node restarts with its queue on disk; then the owner comes back and the
    // queues drain into it, until both copies agree.
    nodes[other].stop();
    nodes[other].start(&[]);
    // A database created while the owner is down is there from its first answer.
    assert_eq!(error_of(&nodes[up].q("CREATE DATABASE later")), None);
    nodes[down].start(&[]);
    let dbs = nodes[down].q("SHOW DATABASES");
    assert!(
        dbs["results"][0]["series"][0]["values"]
            .as_array()
            .is_some_and(|v| v.iter().any(|r| r[0] == "later")),
        "{dbs}"
    );
    wait_for(
        "the queues drain into the owner that was down",
        DEADLINE,
        || (count_here(&nodes[down]) == Some(420)).then_some(()),
    );
    assert_eq!(count_here(&nodes[up]), Some(420));
    wait_for("the queues are empty", DEADLINE, || {
        (hh_depth(&nodes[other], &down_id) == 0 && hh_depth(&nodes[up], &down_id) == 0)
            .then_some(())
    });
    for n in &mut nodes {
        n.stop();
    }
}

#[test]
fn anti_entropy_restores_an_owner_that_lost_its_data() {
    let root = tempfile::tempdir().unwrap();
    // No hinted handoff: what a node misses while down only anti-entropy brings back.
    let env = [
        ("FLETCH_HINTED_HANDOFF_ENABLED", "false"),
        ("FLETCH_ANTI_ENTROPY_CHECK_INTERVAL", "1s"),
        ("FLETCH_COORDINATOR_WRITE_TIMEOUT", "2s"),
    ];
    let mut nodes: Vec<Node> = (1..=2)
        .map(|i| {
            let mut n = Node::new(root.path(), &format!("n{i}"), true);
            n.env = env.to_vec();
            n
        })
        .collect();
    nodes[0].start(&[]);
    let first = nodes[0].meta_http.clone();
    nodes[1].start(&[&first]);
    wait_for("two data nodes", DEADLINE, || {
        let v = nodes[0].q("SHOW SERVERS");
        (v["results"][0]["series"][0]["values"].as_array()?.len() == 2).then_some(())
    });
    create_dc(&nodes[0]);
    // Points of 1970: a shard group long ended, which anti-entropy checks.
    let (status, body) = write(&nodes[0], "all", &lines("a", 0..200));
    assert_eq!(status, 204, "{body}");
    for n in &nodes {
        assert_eq!(count_here(n), Some(200));
    }

    // The second node goes down and misses writes; then its disk is lost.
    nodes[1].kill();
    let (status, body) = write(&nodes[0], "one", &lines("b", 0..50));
    assert_eq!(status, 204, "{body}");
    for d in ["data", "wal"] {
        std::fs::remove_dir_all(nodes[1].dir.join(d)).unwrap();
    }
    nodes[1].start(&[]);
    wait_for("anti-entropy restores every point", DEADLINE, || {
        (count_here(&nodes[1]) == Some(250)).then_some(())
    });
    // Every point is there, not only the count: the same answer from both copies.
    let q = "SELECT * FROM dc..m WHERE time >= 1000s ORDER BY time DESC LIMIT 20";
    assert_eq!(nodes[1].q(q), nodes[0].q(q));
    let checks = nodes
        .iter()
        .flat_map(|n| {
            n.status()["anti_entropy"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect::<Vec<_>>();
    assert!(
        checks
            .iter()
            .any(|c| c["state"] == "repaired" && c["points_copied"].as_u64() >= Some(250)),
        "{checks:?}"
    );
    for n in &mut nodes {
        n.stop();
    }
}

#[test]
fn dropping_a_dead_data_node_restores_the_replication_factor() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(root.path());
    create_dc(&nodes[0]);
    let (status, body) = write(&nodes[0], "all", &lines("a", 0..100));
    assert_eq!(status, 204, "{body}");
    let (owning, spare) = owners_via(&nodes[0]);
    let (keep, dead) = (owning[0], owning[1]);
    nodes[dead].kill();
    let dead_id = (dead + 1) * 2;
    let v = nodes[keep].q(&format!("DROP DATA SERVER {dead_id}"));
    assert_eq!(error_of(&v), None, "{v}");
    // The spare node takes the dead one's place, and the survivor copies the shard onto it.
    wait_for("the spare node owns the shard", DEADLINE, || {
        (owners_via(&nodes[keep]).0 == vec![keep, spare]).then_some(())
    });
    wait_for("the new owner holds every point", DEADLINE, || {
        (count_here(&nodes[spare]) == Some(100)).then_some(())
    });
    // New writes reach both live owners.
    let (status, body) = write(&nodes[spare], "all", &lines("b", 0..10));
    assert_eq!(status, 204, "{body}");
    for n in [keep, spare] {
        assert_eq!(count_here(&nodes[n]), Some(110));
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != dead {
            n.stop();
        }
    }
}

/// `fletchd ctl ...` against a node's internal port: (success, stdout + stderr).
fn ctl(node: &Node, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(fletch_tests::bin("fletchd"))
        .args(["ctl", "--bind", &node.tcp])
        .args(args)
        .output()
        .expect("fletchd ctl");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn shards_are_copied_removed_compared_and_truncated_with_ctl() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(root.path());
    create_dc(&nodes[0]);
    let (status, body) = write(&nodes[0], "all", &lines("a", 0..100));
    assert_eq!(status, 204, "{body}");
    let (owning, spare) = owners(&nodes);
    let shard = {
        let v = nodes[0].q("SHOW SHARDS");
        let s = v["results"][0]["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "dc")
            .cloned()
            .unwrap();
        s["values"][0][0].as_u64().unwrap()
    };
    let id = |i: usize| ((i + 1) * 2).to_string();

    let (ok, out) = ctl(&nodes[spare], &["show"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Data Nodes") && out.contains(&format!("{shard}\tdc\tautogen")),
        "{out}"
    );

    // The spare node gets a copy and becomes an owner.
    let (ok, out) = ctl(
        &nodes[spare],
        &["copy-shard", &id(owning[0]), &id(spare), &shard.to_string()],
    );
    assert!(ok, "{out}");
    assert!(out.contains("\"points\":100"), "{out}");
    assert_eq!(count_here(&nodes[spare]), Some(100));
    // Every owner agrees.
    let (ok, out) = ctl(&nodes[owning[0]], &["entropy", "show"]);
    assert!(
        ok && out.contains("consistent") && !out.contains("diverged"),
        "{out}"
    );

    // An owner is removed: the shard keeps its other two, and that node reads it remotely.
    let (ok, out) = ctl(
        &nodes[0],
        &["remove-shard", &id(owning[1]), &shard.to_string()],
    );
    assert!(ok, "{out}");
    wait_for("the removed owner is gone", DEADLINE, || {
        let (now, _) = owners_via(&nodes[owning[1]]);
        (now.len() == 2 && !now.contains(&owning[1])).then_some(())
    });
    assert_eq!(count_here(&nodes[owning[1]]), Some(100));
    let (ok, out) = ctl(
        &nodes[0],
        &["remove-shard", &id(owning[1]), &shard.to_string()],
    );
    assert!(!ok && out.contains("does not own shard"), "{out}");

    // Divergence is found, and repaired on demand.
    let (ok, out) = ctl(&nodes[0], &["entropy", "repair", &shard.to_string()]);
    assert!(ok && out.contains("\"state\":\"consistent\""), "{out}");

    // Open shard groups end now; the next write makes a new group.
    let (status, body) = write(&nodes[0], "one", "m,w=now v=1\n");
    assert_eq!(status, 204, "{body}");
    let groups = |n: &Node| {
        n.q("SHOW SHARD GROUPS")["results"][0]["series"][0]["values"]
            .as_array()
            .map_or(0, |v| v.iter().filter(|g| g[1] == "dc").count())
    };
    let before = groups(&nodes[0]);
    let (ok, out) = ctl(&nodes[0], &["truncate-shards"]);
    assert!(ok, "{out}");
    // A second past the truncation (these writes are in seconds).
    let next = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let (status, body) = write(&nodes[0], "one", &format!("m,w=now v=2 {next}\n"));
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        groups(&nodes[0]),
        before + 1,
        "{}",
        nodes[0].q("SHOW SHARD GROUPS")
    );
    for n in &mut nodes {
        n.stop();
    }
}

/// `q` on `node` with `?db=dc`: no statement error.
fn exec_dc(node: &Node, q: &str) {
    let r = fletch_tests::http::query(&node.url(), q, "?db=dc");
    assert_eq!(r.status, 200, "{q}: {}", r.body);
    assert!(!r.body.contains("\"error\""), "{q}: {}", r.body);
}

#[test]
fn deletes_reach_every_owner_and_queued_writes_do_not_bring_points_back() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(root.path());
    create_dc(&nodes[0]);
    let (status, body) = write(&nodes[0], "all", &lines("a", 0..10));
    assert_eq!(status, 204, "{body}");
    let (owning, other) = owners(&nodes);
    let (up, down) = (owning[0], owning[1]);
    let down_id = ((down + 1) * 2).to_string();

    // Sent to the node that owns nothing, a delete reaches both owners.
    exec_dc(&nodes[other], "DELETE FROM m WHERE time < 1002s");
    assert_eq!(count_here(&nodes[other]), Some(8));
    for &o in &owning {
        wait_for("both owners apply the delete", DEADLINE, || {
            (count_here(&nodes[o]) == Some(8)).then_some(())
        });
    }

    // One owner down: points written meanwhile wait in the writing node's queue for it.
    nodes[down].kill();
    let (status, body) = write(&nodes[other], "one", &lines("b", 0..5));
    assert_eq!(status, 204, "{body}");
    assert!(hh_depth(&nodes[other], &down_id) > 0);
    assert_eq!(count_here(&nodes[up]), Some(13));
    // Deletes while it is down: of the queued points, and of older ones.
    exec_dc(&nodes[other], "DELETE FROM m WHERE w = 'b'");
    exec_dc(&nodes[up], "DELETE FROM m WHERE w = 'a' AND time < 1004s");
    assert_eq!(count_here(&nodes[up]), Some(6));

    // Back, the owner applies the deletes recorded while it was down, and the queued points
    // they remove stay removed when the queue drains into it.
    nodes[down].start(&[]);
    wait_for(
        "the queue drains into the owner that was down",
        DEADLINE,
        || (hh_depth(&nodes[other], &down_id) == 0).then_some(()),
    );
    let agreed = std::time::Instant::now();
    while count_here(&nodes[down]) != Some(6) && agreed.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        count_here(&nodes[down]),
        Some(6),
        "{}\n{}",
        nodes[down].q("SELECT * FROM dc..m"),
        nodes[down].log()
    );
    assert_eq!(count_here(&nodes[up]), Some(6));
    let rows = "SELECT v FROM dc..m ORDER BY time";
    assert_eq!(nodes[down].q(rows), nodes[up].q(rows));
    // Every node has applied them: the catalog lets them go.
    wait_for("the recorded deletes are let go", DEADLINE, || {
        (nodes[other].status()["deletes_pending"] == 0).then_some(())
    });
    let (ok, out) = ctl(&nodes[other], &["entropy", "show"]);
    assert!(ok && !out.contains("diverged"), "{out}");
    // DROP MEASUREMENT through a node, the whole measurement gone on both owners.
    exec_dc(&nodes[other], "DROP MEASUREMENT m");
    for &o in &owning {
        wait_for("both owners drop the measurement", DEADLINE, || {
            let v = nodes[o].q("SHOW MEASUREMENTS ON dc");
            v["results"][0]["series"].is_null().then_some(())
        });
    }
    for n in &mut nodes {
        n.stop();
    }
}
