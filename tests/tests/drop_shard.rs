//! `DROP SHARD <id>`: next to InfluxDB 1.6.7 on one node (what is left to read, what `SHOW
//! SHARDS` lists, a write to the dropped time afterwards), and in a three-node cluster with
//! replication 2, where every owner removes its copy.
//!
//! Every wait is a condition polled against a deadline.

use std::time::Duration;

use fletch_tests::cluster::{error_of, three_data_nodes};
use fletch_tests::http::{post, query};
use fletch_tests::{Both, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);
const WEEK: i64 = 7 * 24 * 3600 * 1_000_000_000;

fn q(base: &str, text: &str, params: &str) -> Value {
    let r = query(base, text, params);
    assert_eq!(r.status, 200, "{text}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{text}: {e}: {}", r.body))
}

/// `SHOW SHARDS` of database `db`: (id, start time) per shard.
fn shards(base: &str, db: &str) -> Vec<(u64, String)> {
    let v = q(base, "SHOW SHARDS", "");
    v["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == db)
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r[0].as_u64().unwrap_or_default(),
                r[4].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn drop_shard_answers_like_influxdb_1_6_7() {
    let Some(both) = Both::start() else { return };
    let servers = &both.urls;
    // Two weeks, so two shard groups.
    let body = format!(
        "m,h=a v=1 {}\nm,h=b v=2 {}\nm,h=a v=3 {}\n",
        10,
        20,
        WEEK + 10
    );
    let mut answers: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for (i, url) in servers.iter().enumerate() {
        assert_eq!(error_of(&q(url, "CREATE DATABASE ds", "")), None);
        assert_eq!(post(&format!("{url}/write?db=ds"), &body).status, 204);
        let before = shards(url, "ds");
        assert_eq!(before.len(), 2, "{before:?}");
        let first = before
            .iter()
            .find(|(_, start)| start.starts_with("1969"))
            .unwrap_or_else(|| panic!("{before:?}"))
            .0;
        let steps = [
            format!("DROP SHARD {first}"),
            "SELECT * FROM m".to_string(),
            // Gone: dropping it again, or one that never was, is no error.
            format!("DROP SHARD {first}"),
            "DROP SHARD 987654".to_string(),
            "DROP SHARD".to_string(),
            "DROP SHARD x".to_string(),
            "DROP SHARD -1".to_string(),
            "DROP SHARD 1.5".to_string(),
        ];
        for s in &steps {
            answers[i].push(format!("{s}: {}", query(url, s, "?db=ds").body));
        }
        let after = shards(url, "ds");
        assert_eq!(after.len(), 1, "{after:?}");
        assert!(after.iter().all(|(id, _)| *id != first));
        // The dropped time takes writes again, into a new shard group.
        assert_eq!(
            post(&format!("{url}/write?db=ds"), "m,h=c v=4 30").status,
            204
        );
        answers[i].push(format!(
            "after a new write: {}",
            query(url, "SELECT * FROM m", "?db=ds").body
        ));
        assert_eq!(shards(url, "ds").len(), 2);
    }
    assert_eq!(answers[1], answers[0], "left Fletch, right influxd");
}

#[test]
fn every_owner_drops_its_copy_of_a_dropped_shard() {
    let root = tempfile::tempdir().unwrap();
    // Persisted at once, so that each copy is a directory of files to look for.
    let nodes = three_data_nodes(
        root.path(),
        vec![("FLETCH_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION", "100ms")],
    );
    assert_eq!(
        error_of(&nodes[0].q("CREATE DATABASE c WITH REPLICATION 2")),
        None
    );
    let url = nodes[1].url();
    let r = post(&format!("{url}/write?db=c"), "m,h=a v=1 10\nm,h=b v=2 20");
    assert_eq!(r.status, 204, "{}", r.body);
    let ids = shards(&url, "c");
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids[0].0;
    let holders = || -> Vec<usize> {
        (0..3)
            .filter(|&i| {
                nodes[i]
                    .dir
                    .join("data/shards")
                    .join(id.to_string())
                    .exists()
            })
            .collect()
    };
    let before = wait_for("both owners hold the shard", DEADLINE, || {
        let h = holders();
        (h.len() == 2).then_some(h)
    });
    // Sent to a node that may own no copy; the owners drop theirs as they see the catalog.
    assert_eq!(error_of(&nodes[2].q(&format!("DROP SHARD {id}"))), None);
    wait_for("no owner holds the shard", DEADLINE, || {
        holders().is_empty().then_some(())
    });
    for n in &nodes {
        let v = n.q("SELECT count(v) FROM c..m");
        assert_eq!(v["results"][0].get("series"), None, "{v}");
        assert!(shards(&n.url(), "c").is_empty());
    }
    assert_eq!(before.len(), 2);
}
