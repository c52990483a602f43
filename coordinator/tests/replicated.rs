//! Writes to shards with two owners: this node's ingester and a peer whose behaviour each test
//! chooses (answers, refuses the connection, hangs). What each consistency level answers, what
//! the peer receives, what goes to hinted handoff, and how drops are counted.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use catalog::{Command, MetaOptions, MetaService, Outcome, RetentionPolicySpec};
use coordinator::hinted::{HintedConfig, HintedHandoff};
use coordinator::peer::{PeerError, PeerWriter};
use coordinator::{Consistency, PointsWriter, WriteError};
use ingester::wal::WalEntry;
use ingester::{Ingester, IngesterConfig, WriteOutcome};
use line_protocol::{ParseOptions, Point, parse_body};

const UP: u8 = 0;
const DOWN: u8 = 1;
const HANGS: u8 = 2;

/// The other owner: its behaviour, and the entries it took.
#[derive(Debug, Default)]
struct Peer {
    mode: AtomicU8,
    got: Mutex<Vec<(u64, Vec<u8>)>>,
    /// Field types it holds per field name (a field type conflict drops the point).
    int_fields: Mutex<Vec<String>>,
}

#[async_trait]
impl PeerWriter for Peer {
    async fn write(&self, node: u64, index: u64, entry: Bytes) -> Result<WriteOutcome, PeerError> {
        match self.mode.load(Ordering::SeqCst) {
            DOWN => {
                return Err(PeerError::Unreachable {
                    node,
                    message: "connection refused".into(),
                });
            }
            HANGS => tokio::time::sleep(Duration::from_secs(3600)).await,
            _ => {}
        }
        let e = WalEntry::decode(&entry).unwrap();
        let mut out = WriteOutcome::default();
        let ints = self.int_fields.lock().unwrap().clone();
        for s in &e.shards {
            for p in &s.points {
                let time_tag = p.tags.iter().any(|(k, _)| k == "time");
                let conflict = p.fields.iter().any(|(k, v)| {
                    ints.iter().any(|f| f == k.as_ref())
                        && !matches!(v, line_protocol::FieldValue::Integer(_))
                });
                if time_tag || conflict {
                    out.dropped += 1;
                    out.reason = Some(
                        if time_tag {
                            "invalid tag key"
                        } else {
                            "field type conflict"
                        }
                        .into(),
                    );
                    out.dropped_in.push((s.shard_id, 1));
                } else {
                    out.written += 1;
                }
            }
        }
        self.got.lock().unwrap().push((index, entry.to_vec()));
        Ok(out)
    }
}

struct Node {
    meta: Arc<MetaService>,
    ingester: Arc<Ingester>,
    peer: Arc<Peer>,
    peer_id: u64,
}

async fn open(dir: &Path) -> Node {
    let meta = MetaService::open(MetaOptions::local(dir.join("meta")))
        .await
        .unwrap();
    let Outcome::NodeId(peer_id) = meta
        .execute(Command::RegisterDataNode {
            id: None,
            http_addr: "peer:8086".into(),
            tcp_addr: "peer:8088".into(),
        })
        .await
        .unwrap()
    else {
        panic!("no node id")
    };
    let rp = RetentionPolicySpec {
        name: "two".into(),
        duration: None,
        shard_group_duration: None,
        replica_n: Some(2),
    };
    meta.create_database("db", Some(rp)).await.unwrap();
    let cfg = IngesterConfig::with_dirs(dir.join("data"), dir.join("wal"));
    let node_id = meta.identity().data_id.unwrap();
    let ingester = Ingester::open(cfg, meta.clone(), node_id).await.unwrap();
    Node {
        meta,
        ingester,
        peer: Arc::default(),
        peer_id,
    }
}

impl Node {
    fn writer(&self, hinted: Option<Arc<HintedHandoff>>) -> PointsWriter {
        PointsWriter::with_ingester(self.meta.clone(), Some(self.ingester.clone()))
            .with_peers(self.peer.clone(), hinted)
            .with_timeout(Duration::from_millis(300))
    }

    async fn close(self) {
        self.ingester.shutdown().await.unwrap();
        self.meta.shutdown().await;
    }
}

fn points(body: &str) -> Vec<Point<'_>> {
    let parsed = parse_body(body.as_bytes(), &ParseOptions::default());
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed.points
}

async fn write(w: &PointsWriter, body: &str, c: Consistency) -> Result<WriteOutcome, WriteError> {
    w.write_with("db", "", points(body), 0, c).await
}

#[tokio::test]
async fn both_owners_get_every_point_as_a_wal_entry() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let w = n.writer(None);
    let out = write(&w, "m,h=a v=1 1\nm,h=b v=2 2", Consistency::All)
        .await
        .unwrap();
    assert_eq!((out.written, out.dropped), (2, 0));
    let group = n
        .meta
        .catalog()
        .database("db")
        .unwrap()
        .rp("")
        .unwrap()
        .shard_groups[0]
        .clone();
    assert_eq!(group.shards.len(), 1, "two data nodes, RF 2: one shard");
    assert_eq!(group.shards[0].owners.len(), 2);
    let got = n.peer.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].0 >= 1, "routed with the catalog's index");
    let e = WalEntry::decode(&got[0].1).unwrap();
    assert_eq!((e.database.as_ref(), e.rp.as_ref()), ("db", "two"));
    assert_eq!(e.shards.len(), 1);
    assert_eq!(e.shards[0].shard_id, group.shards[0].id);
    assert_eq!(e.shards[0].points.len(), 2);
    assert_eq!(n.ingester.measurements(&n.ingester.shard_ids()).len(), 1);
    n.close().await;
}

#[tokio::test]
async fn an_owner_down_fails_the_levels_that_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let w = n.writer(None);
    n.peer.mode.store(DOWN, Ordering::SeqCst);
    write(&w, "m v=1 1", Consistency::One).await.unwrap();
    for c in [Consistency::Quorum, Consistency::All] {
        let err = write(&w, "m v=1 2", c).await.unwrap_err();
        assert_eq!(err.to_string(), "partial write", "{c:?}");
    }
    // Without hinted handoff, `any` needs a real acknowledgement: this node's.
    write(&w, "m v=1 3", Consistency::Any).await.unwrap();

    // A node that owns nothing, whose writes to both owners fail: the first owner's error.
    let remote_only = PointsWriter::with_ingester(n.meta.clone(), None)
        .with_peers(n.peer.clone(), None)
        .with_timeout(Duration::from_millis(300));
    let err = write(&remote_only, "m v=1 4", Consistency::One)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("write failed: data node ") && text.ends_with(": connection refused"),
        "{text}"
    );
    n.close().await;
}

#[tokio::test]
async fn an_owner_that_hangs_makes_the_write_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let w = n.writer(None);
    n.peer.mode.store(HANGS, Ordering::SeqCst);
    write(&w, "m v=1 1", Consistency::One).await.unwrap();
    let started = std::time::Instant::now();
    let err = write(&w, "m v=1 2", Consistency::All).await.unwrap_err();
    assert_eq!(err.to_string(), "timeout");
    assert!(started.elapsed() >= Duration::from_millis(300));
    n.close().await;
}

#[tokio::test]
async fn queued_points_count_for_any_and_later_points_queue_behind_them() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let hh = HintedHandoff::open(HintedConfig::with_dir(dir.path().join("hh"))).unwrap();
    // A node that owns nothing: only the peer and its queue.
    let remote_only = PointsWriter::with_ingester(n.meta.clone(), None)
        .with_peers(n.peer.clone(), Some(hh.clone()))
        .with_timeout(Duration::from_millis(300));
    n.peer.mode.store(DOWN, Ordering::SeqCst);
    // The peer is one of two owners; this node is neither, so `any` is the queue's ack.
    write(&remote_only, "m v=1 1", Consistency::Any)
        .await
        .unwrap();
    assert!(!hh.is_empty(n.peer_id));
    // The peer is back, but older points wait for it: new ones queue behind them.
    n.peer.mode.store(UP, Ordering::SeqCst);
    let w = n.writer(Some(hh.clone()));
    let err = write(&w, "m v=1 2", Consistency::All).await.unwrap_err();
    assert_eq!(err.to_string(), "partial write");
    assert!(
        n.peer.got.lock().unwrap().is_empty(),
        "nothing went around the queue"
    );
    let err = write(&remote_only, "m v=1 3", Consistency::One)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "hinted handoff queue not empty");
    // Drained in order once it answers.
    let (_tx, stop) = tokio::sync::watch::channel(false);
    hh.drain(n.peer_id, n.peer.as_ref(), &stop).await;
    let times: Vec<i64> = n
        .peer
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, e)| WalEntry::decode(e).unwrap().shards[0].points[0].time)
        .collect();
    assert_eq!(times, vec![1, 2, 3]);
    assert!(hh.is_empty(n.peer_id));
    n.close().await;
}

#[tokio::test]
async fn a_point_both_owners_drop_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let w = n.writer(None);
    // A `time` tag: the coordinator leaves it to the owners, who both refuse it.
    let out = write(&w, "m,time=x v=1i 2\nm v=2i 3", Consistency::All)
        .await
        .unwrap();
    assert_eq!((out.dropped, out.written), (1, 1), "{out:?}");
    assert!(out.reason.unwrap().contains("invalid tag key"));
    n.close().await;
}

#[tokio::test]
async fn a_field_type_conflict_is_dropped_before_any_owner_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let w = n.writer(None);
    write(&w, "m v=1i 1", Consistency::All).await.unwrap();
    let out = write(&w, "m v=1.5 2\nm v=2i 3", Consistency::All)
        .await
        .unwrap();
    assert_eq!((out.dropped, out.written), (1, 1), "{out:?}");
    assert_eq!(
        out.reason.as_deref(),
        Some(
            "field type conflict: input field \"v\" on measurement \"m\" is type float, already exists as type integer"
        )
    );
    let got = n.peer.got.lock().unwrap().clone();
    let last = WalEntry::decode(&got[got.len() - 1].1).unwrap();
    assert_eq!(
        last.shards[0].points.len(),
        1,
        "the peer got the agreeing point only"
    );
    // Declared once in the catalog, for the shard.
    let cat = n.meta.catalog();
    let shard = n.ingester.shard_ids()[0];
    assert_eq!(
        cat.declared_columns(shard, "m").unwrap().get("v"),
        Some(&catalog::ColumnType::Integer)
    );
    // DROP MEASUREMENT lets the declaration go: the field may come back as another type.
    let forget = catalog::ForgetColumns {
        retention_policy: None,
        measurements: Some(vec!["m".into()]),
        min_time: i64::MIN,
        max_time: i64::MAX,
    };
    n.meta
        .execute(Command::RecordDelete {
            database: "db".into(),
            scope: "{}".into(),
            forget_columns: Some(forget),
        })
        .await
        .unwrap();
    assert!(n.meta.catalog().declared_columns(shard, "m").is_none());
    n.close().await;
}

/// The other owner as a real ingester on the same catalog; entries holding an integer field
/// reach it `delay` late, so two writes can reach the owners in opposite orders.
#[derive(Debug)]
struct SlowOwner {
    ingester: Arc<Ingester>,
    delay: Duration,
}

impl SlowOwner {
    /// The node's peer as a second ingester under `dir`, taking integer points `delay` late.
    async fn open(n: &Node, dir: &Path, delay: Duration) -> Arc<Self> {
        let cfg = IngesterConfig::with_dirs(dir.join("data2"), dir.join("wal2"));
        let ingester = Ingester::open(cfg, n.meta.clone(), n.peer_id)
            .await
            .unwrap();
        Arc::new(Self { ingester, delay })
    }
}

#[async_trait]
impl PeerWriter for SlowOwner {
    async fn write(&self, node: u64, index: u64, entry: Bytes) -> Result<WriteOutcome, PeerError> {
        let e = WalEntry::decode(&entry).map_err(|err| PeerError::Refused {
            node,
            message: err.to_string(),
        })?;
        let has_int = e.shards.iter().any(|s| {
            s.points.iter().any(|p| {
                p.fields
                    .iter()
                    .any(|(_, v)| matches!(v, line_protocol::FieldValue::Integer(_)))
            })
        });
        if has_int {
            tokio::time::sleep(self.delay).await;
        }
        let shards = e
            .shards
            .into_iter()
            .map(|s| (s.shard_id, s.points))
            .collect();
        self.ingester
            .write_shards_at(&e.database, &e.rp, shards, index)
            .await
            .map_err(|err| PeerError::Refused {
                node,
                message: err.to_string(),
            })
    }
}

#[tokio::test]
async fn racing_writes_of_a_new_field_leave_both_owners_with_one_type() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let owner = SlowOwner::open(&n, dir.path(), Duration::from_millis(150)).await;
    let other = owner.ingester.clone();
    // Two coordinators (as on two nodes), both writing to this node's ingester and the other.
    let coordinator = || {
        PointsWriter::with_ingester(n.meta.clone(), Some(n.ingester.clone()))
            .with_peers(owner.clone(), None)
            .with_timeout(Duration::from_secs(5))
    };
    let (a, b) = (coordinator(), coordinator());
    // `a`'s integer reaches this node at once and the other owner late; `b`'s float, sent
    // meanwhile, would reach the other owner first: each owner alone would keep its first
    // type. Agreed through the catalog, the float is refused before it goes anywhere.
    write(&a, "m,h=x f=1i 1", Consistency::One).await.unwrap();
    let out = write(&b, "m,h=y f=1.5 2", Consistency::One).await.unwrap();
    assert_eq!(out.dropped, 1, "{out:?}");
    assert!(out.reason.unwrap().contains("field type conflict"));
    // Racing writes of new fields, both at once, many times.
    for i in 0..20 {
        let (float, int) = (
            format!("m,h=x g{i}=1.5 {}", 10 + i),
            format!("m,h=y g{i}=1i {}", 10 + i),
        );
        let (ra, rb) = tokio::join!(
            write(&a, &float, Consistency::All),
            write(&b, &int, Consistency::All)
        );
        let dropped = ra.unwrap().dropped + rb.unwrap().dropped;
        assert_eq!(dropped, 1, "round {i}: exactly one of the two is refused");
    }
    let shard = n.ingester.shard_ids()[0];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (mine, theirs) = (
            n.ingester.table_schema(shard, "m"),
            other.table_schema(shard, "m"),
        );
        if mine.is_some() && mine == theirs {
            let fields = mine.unwrap().fields;
            assert_eq!(fields.len(), 21, "{fields:?}");
            assert_eq!(fields["f"], ingester::FieldType::Integer);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "owners disagree: {mine:?} / {theirs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    other.shutdown().await.unwrap();
    n.close().await;
}

#[tokio::test]
async fn a_full_queue_answers_queue_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let mut cfg = HintedConfig::with_dir(dir.path().join("hh"));
    cfg.max_size = 64;
    let hh = HintedHandoff::open(cfg).unwrap();
    let remote_only = PointsWriter::with_ingester(n.meta.clone(), None)
        .with_peers(n.peer.clone(), Some(hh.clone()))
        .with_timeout(Duration::from_millis(300));
    n.peer.mode.store(DOWN, Ordering::SeqCst);
    let body: String = (0..50).map(|i| format!("m,h=h{i} v={i} 1\n")).collect();
    let err = write(&remote_only, &body, Consistency::Any)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "queue is full");
    assert!(hh.is_empty(n.peer_id), "nothing was queued");
    n.close().await;
}

#[tokio::test]
async fn a_settled_write_answers_once_every_owner_has_the_points() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    // The other owner takes its integer points 300 ms late.
    let owner = SlowOwner::open(&n, dir.path(), Duration::from_millis(300)).await;
    let other = owner.ingester.clone();
    let w = PointsWriter::with_ingester(n.meta.clone(), Some(n.ingester.clone()))
        .with_peers(owner, None)
        .with_timeout(Duration::from_secs(5));
    // At consistency one this node's own copy answers the write; settled, the slow owner's too
    // (what `SELECT ... INTO` needs before its rows are read back through any owner).
    let out = w
        .write_settled("db", "", points("m,h=x v=1i 1"), 0)
        .await
        .unwrap();
    assert_eq!((out.written, out.dropped), (1, 0));
    let shard = n.ingester.shard_ids()[0];
    assert!(
        other.table_schema(shard, "m").is_some(),
        "the slow owner has the point when the settled write answers"
    );
    other.shutdown().await.unwrap();
    n.close().await;
}

#[tokio::test]
async fn points_go_out_with_the_index_of_the_last_change_to_shards_or_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let n = open(dir.path()).await;
    let w = n.writer(None);
    let sent = |n: &Node| n.peer.got.lock().unwrap().last().map(|g| g.0);
    write(&w, "m v=1 1", Consistency::All).await.unwrap();
    let first = sent(&n).unwrap();
    // The shard group's creation; the write's new column was declared after it, and no owner
    // consults declared columns.
    assert!(
        first >= 1 && first < n.meta.applied_index(),
        "{first} {}",
        n.meta.applied_index()
    );

    // Commands that change no shard (a user, a delete acknowledgement) move the log on; the
    // other owner is not asked to wait for them (while a new meta leader is elected, a lagging
    // owner could not apply them).
    n.meta
        .execute(Command::User(catalog::UserCommand::Create {
            name: "u".into(),
            hash: "h".into(),
            admin: false,
        }))
        .await
        .unwrap();
    n.meta
        .execute(Command::AckDeletes {
            node: n.peer_id,
            index: 0,
        })
        .await
        .unwrap();
    assert!(n.meta.applied_index() > first);
    write(&w, "m v=2 2", Consistency::All).await.unwrap();
    assert_eq!(sent(&n), Some(first));

    // A delete is a change the owner must have applied first: points routed after it are
    // not removed by it.
    let Outcome::Index(deleted) = n
        .meta
        .execute(Command::RecordDelete {
            database: "db".into(),
            scope: "{}".into(),
            forget_columns: None,
        })
        .await
        .unwrap()
    else {
        panic!("a delete is recorded at an index")
    };
    write(&w, "m v=3 3", Consistency::All).await.unwrap();
    assert_eq!(sent(&n), Some(deleted));
    assert!(deleted > first);
    n.close().await;
}
